"""``--host`` values: ``[grpc://|grpcs://|http://|https://]HOST[:PORT]`` to a target ``HOST:PORT``.

The scheme picks the transport, as in Locust: ``http://`` and ``https://`` mean HTTP (the server's
REST API, ``is_http``); bare ``HOST:PORT``, ``grpc://`` and ``grpcs://`` mean gRPC. ``grpcs://`` and
``https://`` mean TLS (``is_tls``).

Several endpoints: ``a:8500,b:8500`` (comma-separated, one scheme for all) -> one target each;
users are spread over them round-robin (``tfs_user.transport.endpoints``). ``dns:///NAME[:PORT]`` is one
target that gRPC resolves to every address of NAME and balances with its ``round_robin`` policy
(a headless Kubernetes service); it is plaintext.

Plain string work: this module imports neither gRPC nor Locust, so options and
settings can be imported first in any process.
"""

import re

DEFAULT_PORT = 9000
"""Port used when ``--host`` gives none (the old scripts' default)."""
DEFAULT_HOST = f"localhost:{DEFAULT_PORT}"
SCHEMES = ("grpc", "grpcs", "http", "https")
"""The schemes ``--host`` accepts (none = grpc)."""


class TargetError(ValueError):
    """A ``--host`` value that is not ``[grpc://]HOST[:PORT]``."""


def parse_target(host):
    """Turn ``--host`` into a gRPC target ``'HOST:PORT'``.

    Accepts ``HOST:PORT``, ``grpc://HOST:PORT``, ``grpcs://HOST:PORT`` (TLS, see
    ``is_tls``), ``http://HOST:PORT``, ``https://HOST:PORT`` (``is_http``), ``[::1]:PORT``; a missing
    port means 9000 (the old scripts' default; 80 for http://, 443 for https://). Raises TargetError for any other
    scheme, a path, query or fragment after HOST:PORT (a trailing ``/`` is fine: the API's paths are the tool's),
    text after an IPv6 address's ``]`` that is not ``:PORT``, or a port that is not a number in 1..65535.
    """
    value = host.strip()
    default_port, scheme = DEFAULT_PORT, ""
    if "://" in value:
        scheme, value = value.split("://", 1)
        if scheme not in SCHEMES:
            raise TargetError(f"host {host!r} uses scheme {scheme!r}; expected HOST:PORT, grpc://HOST:PORT, grpcs://HOST:PORT "
                              "(TLS), http://HOST:PORT or https://HOST:PORT (the REST API)")
        default_port = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT)
    value, path = _split_path(value)
    if path.strip("/"):
        raise TargetError(_path_message(host, path, scheme))
    if value.startswith("["):  # [v6]:port
        address, _, port = value[1:].partition("]")
        if port and not port.startswith(":"):
            raise TargetError(f"host {host!r} has {port!r} after the IPv6 address; expected [ADDRESS]:PORT, e.g. [::1]:9000")
        port = port[1:]
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
        port = str(default_port)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise TargetError(f"host {host!r} has port {port!r}; expected a number in 1..65535")
    return f"{address}:{port}"


def _split_path(value):
    """'h:8501/v1/models' -> ('h:8501', '/v1/models'): the address, and what follows it from its first '/', '?' or '#'."""
    cut = min((i for i in (value.find(c) for c in "/?#") if i >= 0), default=len(value))
    return value[:cut], value[cut:]


def _path_message(host, path, scheme):
    """The one line for a ``--host`` with a path: the address to give instead, and where the path comes from."""
    address = host.strip()[:len(host.strip()) - len(path)]
    model = re.search(r"/models/([^/:?#]+)", path)
    named = f", here {model.group(1)}" if model else ""
    if scheme in ("http", "https"):
        where = (f"the tool adds the REST paths itself (/v1/models/NAME:predict for --protocol tfs, "
                 f"/v2/models/NAME/infer for kserve; NAME = --model-name{named})")
    else:
        where = f"gRPC names the service and the model (--model-name{named}) in each call, not in the address"
    what = f"a path {path!r}" if path.startswith("/") else f"{path!r} after its address"
    return f"host {host!r} has {what}; expected the server's address alone, --host {address}: {where}"


DNS_SCHEME = "dns:///"


def parse_targets(host):
    """Turn ``--host`` (one endpoint or several, comma-separated) into a tuple of gRPC targets.

    ``a:8500,grpc://b:8500`` -> ``('a:8500', 'b:8500')``; ``dns:///name:8500`` -> ``('dns:///name:8500',)``
    (a missing port means 9000). Raises TargetError for an empty entry, a repeated endpoint,
    a mix of TLS and plaintext, or any entry ``parse_target`` refuses.
    """
    entries = [entry.strip() for entry in host.split(",")]
    if len(entries) > 1 and not all(entries):
        raise TargetError(f"host {host!r} has an empty entry; expected HOST:PORT,HOST:PORT")
    is_tls(host)  # one scheme for all
    targets = []
    for entry in entries:
        if entry.startswith("dns:"):
            targets.append(_dns_target(entry))
        else:
            targets.append(parse_target(entry))
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if repeated:
        raise TargetError(f"host {host!r} names {repeated[0]} more than once; expected distinct endpoints")
    return tuple(targets)


def _dns_target(entry):
    """``dns:///NAME[:PORT]`` -> ``dns:///NAME:PORT``; TargetError for another dns form."""
    if not entry.startswith(DNS_SCHEME) or entry.startswith(DNS_SCHEME + "/"):
        raise TargetError(f"host {entry!r} is not dns:///NAME:PORT; expected e.g. dns:///tfs-headless.default.svc:8500")
    path = _split_path(entry[len(DNS_SCHEME):])[1]
    if path.strip("/"):
        raise TargetError(_path_message(entry, path, "dns"))
    return DNS_SCHEME + parse_target(entry[len(DNS_SCHEME):])


def is_dns(target):
    """Whether a gRPC target (from ``parse_targets``) is resolved by gRPC's DNS resolver (``dns:///``)."""
    return target.startswith(DNS_SCHEME)


def is_tls(host):
    """Whether ``--host`` asks for TLS (``grpcs://``, ``https://``); TargetError when some entries do and some do not."""
    flags = {entry.strip().startswith(("grpcs://", "https://")) for entry in host.split(",") if entry.strip()}
    if len(flags) > 1:
        raise TargetError(f"host {host!r} mixes grpcs:// or https:// (TLS) and plaintext endpoints; expected one scheme for all")
    return flags == {True}


def is_http(host):
    """Whether ``--host`` names HTTP endpoints (``http://``, ``https://``: the server's REST API); TargetError
    when some entries do and some do not."""
    flags = {entry.strip().startswith(("http://", "https://")) for entry in host.split(",") if entry.strip()}
    if len(flags) > 1:
        raise TargetError(f"host {host!r} mixes HTTP (http://, https://) and gRPC endpoints; expected one transport for all")
    return flags == {True}


def resolve_host(host, grpc_address="", grpc_port=0):
    """The ``--host`` to use: ``host`` (first), else ``--grpc-address``/``--grpc-port`` (an IPv6 address
    bracketed: ``::1`` -> ``[::1]:PORT``), else localhost:9000."""
    if not host and (grpc_address or grpc_port):
        address = grpc_address or "localhost"
        if ":" in address and not address.startswith("["):  # an IPv6 address: [::1]:PORT, never ::1:PORT
            address = f"[{address}]"
        host = f"{address}:{grpc_port or DEFAULT_PORT}"
    return host or DEFAULT_HOST
