"""A master port of its own for every ``--processes`` run.

With ``--processes N`` Locust's master binds ``--master-bind-port`` (default 5557, all
interfaces) and its forked workers connect to ``--master-port`` (default 5557). Two such runs on
one host (parallel CI jobs) then share a port: one run's workers took spawn jobs from the other's
master and polluted both results. Here, when ``--processes`` is given and neither port was set,
master and workers get a free loopback port picked for this run; a port given on the command
line, in ``LOCUST_MASTER_BIND_PORT``/``LOCUST_MASTER_PORT`` or a non-default value is honoured.
"""

import os
import socket
import sys

LOCUST_DEFAULT_PORT = 5557
PORT_FLAGS = ("--master-bind-port", "--master-port")
PORT_ENV = ("LOCUST_MASTER_BIND_PORT", "LOCUST_MASTER_PORT")


def free_loopback_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_given(options, args):
    if options.master_bind_port != LOCUST_DEFAULT_PORT or options.master_port != LOCUST_DEFAULT_PORT:
        return True
    given = [a.split("=", 1)[0] for a in args if isinstance(a, str)]
    return any(f in given for f in PORT_FLAGS) or any(os.environ.get(v) for v in PORT_ENV)


def apply(options, args=()):
    """Give a ``--processes`` run (not ``--worker``) its own loopback master port unless one was given.

    ``options`` is Locust's parsed namespace (changed in place); ``args`` the command-line
    arguments. Returns the port picked, or None when nothing changed.
    """
    if not getattr(options, "processes", None) or getattr(options, "worker", False):
        return None
    if not hasattr(options, "master_bind_port") or _port_given(options, args):
        return None
    port = free_loopback_port()
    options.master_bind_host = "127.0.0.1"
    options.master_host = "127.0.0.1"
    options.master_bind_port = options.master_port = port
    return port


def on_parse(parser):
    """Wrap ``parser.parse_known_args`` so that every namespace it returns goes through ``apply``
    (Locust forks ``--processes`` workers right after parsing, before any other event)."""
    parse_known_args = parser.parse_known_args

    def parse_and_apply(args=None, *more, **kwargs):
        options, rest = parse_known_args(args, *more, **kwargs)
        apply(options, sys.argv[1:] if args is None else args)
        return options, rest

    parser.parse_known_args = parse_and_apply
