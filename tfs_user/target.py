"""``--host`` values: ``[grpc://|grpcs://]HOST[:PORT]`` to a gRPC target ``HOST:PORT``.

Plain string work: this module imports neither gRPC nor Locust, so options and
settings can be imported first in any process.
"""

DEFAULT_PORT = 9000
"""Port used when ``--host`` gives none (the old scripts' default)."""
DEFAULT_HOST = f"localhost:{DEFAULT_PORT}"


class TargetError(ValueError):
    """A ``--host`` value that is not ``[grpc://]HOST[:PORT]``."""


def parse_target(host):
    """Turn ``--host`` into a gRPC target ``'HOST:PORT'``.

    Accepts ``HOST:PORT``, ``grpc://HOST:PORT``, ``grpcs://HOST:PORT`` (TLS, see
    ``is_tls``), ``[::1]:PORT``; a missing port means 9000 (the old scripts'
    default). Raises TargetError for any other scheme or a port that is not a
    number in 1..65535.
    """
    value = host.strip()
    if "://" in value:
        scheme, value = value.split("://", 1)
        if scheme not in ("grpc", "grpcs"):
            raise TargetError(f"host {host!r} uses scheme {scheme!r}; expected HOST:PORT, grpc://HOST:PORT or grpcs://HOST:PORT (TLS)")
    value = value.rstrip("/")
    if value.startswith("["):  # [v6]:port
        address, _, port = value[1:].partition("]")
        port = port[1:] if port.startswith(":") else ""
        address = f"[{address}]"
    elif value.count(":") > 1:
        raise TargetError(f"host {host!r} is ambiguous; write an IPv6 address in brackets, e.g. [::1]:9000")
    elif value.count(":") == 1:
        address, port = value.split(":")
    else:
        address, port = value, ""
    if not address or "/" in address:
        raise TargetError(f"host {host!r} is not HOST:PORT; expected e.g. localhost:9000")
    if not port:
        port = str(DEFAULT_PORT)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise TargetError(f"host {host!r} has port {port!r}; expected a number in 1..65535")
    return f"{address}:{port}"


def is_tls(host):
    """Whether ``--host`` asks for TLS (``grpcs://``)."""
    return host.strip().startswith("grpcs://")


def resolve_host(host, grpc_address="", grpc_port=0):
    """The ``--host`` to use: ``host`` (first), else ``--grpc-address``/``--grpc-port``, else localhost:9000."""
    if not host and (grpc_address or grpc_port):
        host = f"{grpc_address or 'localhost'}:{grpc_port or DEFAULT_PORT}"
    return host or DEFAULT_HOST
