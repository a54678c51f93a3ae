"""gRPC under gevent, set up once per Locust process: import this module before ``grpc``.

- ``import locust`` first: Locust monkey-patches the standard library with gevent on import,
  and that must happen before ``grpc`` imports ``ssl`` (patching ``ssl`` afterwards ends in a
  ``RecursionError`` inside ``ssl.py`` on the first TLS context).
- ``grpc.experimental.gevent.init_gevent()`` before any channel exists: without it every
  blocking gRPC call blocks the whole process (measured: 42 instead of 392 req/s with 10 users
  on a 20 ms server).

Only Locust-side modules (channel, pre-flight, users, run) import it; the demo server and the
image converter do not, so they keep plain threads.
"""

import locust  # noqa: F401  (gevent monkey-patching, see above)

import grpc  # noqa: E402
import grpc.experimental.gevent  # noqa: E402

grpc.experimental.gevent.init_gevent()

__all__ = ["grpc"]
