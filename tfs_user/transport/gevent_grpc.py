"""gRPC under gevent, set up once per Locust process: import this module before ``grpc``.

- ``import locust`` first: Locust monkey-patches the standard library with gevent on import,
  and that must happen before ``grpc`` imports ``ssl`` (patching ``ssl`` afterwards ends in a
  ``RecursionError`` inside ``ssl.py`` on the first TLS context).
- ``grpc.experimental.gevent.init_gevent()`` before any channel exists: without it every
  blocking gRPC call blocks the whole process (measured: 42 instead of 392 req/s with 10 users
  on a 20 ms server).

- ``GRPC_VERBOSITY=ERROR`` unless set: gRPC's C core otherwise prints INFO lines such as
  ``I1129 ... Handshake failed with error SSL_ERROR_SSL ...`` on the console, which the
  pre-flight explains in one line of its own. It is read once, when ``grpc`` initializes,
  so it is set here, before the first ``import grpc`` of a Locust process; set
  ``GRPC_VERBOSITY=INFO`` (or ``DEBUG``) in the environment to see them.

Only Locust-side modules (channel, pre-flight, users, run) import it; the demo server and the
image converter do not, so they keep plain threads.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import locust  # noqa: E402,F401  (gevent monkey-patching, see above)

import grpc  # noqa: E402
import grpc.experimental.gevent  # noqa: E402

grpc.experimental.gevent.init_gevent()

__all__ = ["grpc"]
