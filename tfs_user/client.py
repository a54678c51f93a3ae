"""gRPC transport: target parsing, channel creation, the Predict call, error mapping.

gRPC's Python client blocks the whole process under gevent unless
``grpc.experimental.gevent.init_gevent()`` runs before any channel exists
(measured: 42 instead of 392 req/s with 10 users on a 20 ms server), so this
module does it at import. Importing it is meant for processes that run Locust.
"""

import functools
import re
from dataclasses import dataclass

import grpc
import grpc.experimental.gevent
from google.protobuf.message import DecodeError

from tfs_user.protos import PREDICT_METHOD, predict_pb2

grpc.experimental.gevent.init_gevent()

from tfs_user import engine  # noqa: E402  (after init_gevent: the engine replaces its thread pool)

DEFAULT_PORT = 9000
DEFAULT_MAX_MESSAGE_BYTES = 256 << 20
"""Send and receive limit set on every channel: 256 MiB (gRPC's default receive limit is 4 MB)."""


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


COMPRESSION = {"none": grpc.Compression.NoCompression, "gzip": grpc.Compression.Gzip,
               "deflate": grpc.Compression.Deflate}


@dataclass(frozen=True)
class Transport:
    """How channels are made: TLS files (PEM paths), server name override, limits, compression.

    Precedence for TLS: ``tls=False`` -> insecure channel; else root
    certificates from ``ca`` (or the system's when empty), plus a client
    certificate/key pair for mutual TLS when both are given.
    """

    tls: bool = False
    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    compression: str = "none"

    def check(self):
        """Raise ValueError (one line) for unreadable TLS files or an incomplete cert/key pair."""
        if bool(self.cert) != bool(self.key):
            raise ValueError("--grpc-tls-cert and --grpc-tls-key go together (mutual TLS); give both or neither")
        if (self.ca or self.cert) and not self.tls:
            raise ValueError("--grpc-tls-ca/--grpc-tls-cert are set but the host is not grpcs://HOST:PORT; use grpcs:// for TLS")
        for option, path in (("--grpc-tls-ca", self.ca), ("--grpc-tls-cert", self.cert), ("--grpc-tls-key", self.key)):
            if path:
                _read(option, path)
        if self.compression not in COMPRESSION:
            raise ValueError(f"--grpc-compression {self.compression!r} is not known; expected one of {', '.join(COMPRESSION)}")


def _read(option, path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"{option} {path!r} cannot be read ({e.strerror}); expected a PEM file") from None


@functools.lru_cache(maxsize=8)
def _credentials(ca, cert, key):
    """Channel credentials, read once per process."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read("--grpc-tls-ca", ca) if ca else None,
        private_key=_read("--grpc-tls-key", key) if key else None,
        certificate_chain=_read("--grpc-tls-cert", cert) if cert else None,
    )


def open_channel(target, transport=Transport()):
    """A ``grpc.Channel`` to ``target`` made as ``transport`` says.

    Message-size limits are raised on both directions (default 256 MiB), and
    reconnection backs off from 100 ms to at most 1 s, so users recover within
    a second of a restarted server instead of gRPC's default of up to 120 s.
    """
    options = [
        ("grpc.max_send_message_length", transport.max_message_bytes),
        ("grpc.max_receive_message_length", transport.max_message_bytes),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    compression = COMPRESSION[transport.compression]
    if not transport.tls:
        return grpc.insecure_channel(target, options=options, compression=compression)
    if transport.server_name:
        options.append(("grpc.ssl_target_name_override", transport.server_name))
    credentials = _credentials(transport.ca, transport.cert, transport.key)
    return grpc.secure_channel(target, credentials, options=options, compression=compression)


def predict_call(channel):
    """``PredictionService/Predict`` on ``channel`` taking and returning raw message bytes.

    No (de)serializer is set, so a request body prepared once is sent as is and
    the response length is the exact number of bytes received. Called as
    ``predict(body, timeout=s, metadata=...)``: returns the response bytes or
    raises ``grpc.RpcError``; it blocks only the calling greenlet. Its waits go
    through this process's completion engine (``tfs_user.engine``, installed
    here, i.e. in ``on_start`` after Locust's fork).
    """
    engine.install()
    return channel.unary_unary(PREDICT_METHOD)


def wait_until_reachable(target, timeout_s, transport=Transport()):
    """Block until a channel to ``target`` is READY; raise ConnectionError (one line) after ``timeout_s`` seconds."""
    channel = open_channel(target, transport)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
        raise ConnectionError(f"no gRPC server answered at {target} within {timeout_s:g} s; start the model server or give its address with --host HOST:PORT") from None
    finally:
        channel.close()


_TOO_LARGE = re.compile(r"larger than max \((\d+) vs\. (\d+)\)")


class RpcFailure(Exception):
    """A Predict call that ended with a gRPC status other than OK.

    ``code`` is the ``grpc.StatusCode``, ``details`` the server's message. Its
    repr, which Locust uses as the key of its failure table, reads
    ``NOT_FOUND: Servable not found ...``.
    """

    def __init__(self, code, details):
        super().__init__(code, details)
        self.code = code
        self.details = details or ""

    @classmethod
    def from_rpc_error(cls, error):
        code, details = error.code(), error.details() or ""
        too_large = _TOO_LARGE.search(details) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
        if too_large:
            details = f"got {too_large[1]} bytes, limit {too_large[2]} (raise --max-message-mb)"
        return cls(code, details)

    def __str__(self):
        name = self.code.name if self.code is not None else "UNKNOWN"
        return f"{name}: {self.details}" if self.details else name

    __repr__ = __str__


class BadResponse(Exception):
    """A Predict call that returned OK but not what was asked (no outputs, wrong batch dimension)."""

    __repr__ = Exception.__str__


def check_response(body, batch_size):
    """Parse a ``PredictResponse`` and check it answers a batch of ``batch_size``.

    Every output tensor must have a first dimension equal to ``batch_size``.
    Returns None when it does, else a BadResponse saying what was wrong.
    """
    try:
        response = predict_pb2.PredictResponse.FromString(body)
    except DecodeError:
        return BadResponse(f"response of {len(body)} bytes is not a PredictResponse")
    if not response.outputs:
        return BadResponse("response has no output tensors; expected at least one")
    for name, tensor in response.outputs.items():
        dims = tensor.tensor_shape.dim
        if not dims or dims[0].size != batch_size:
            shape = [d.size for d in dims]
            return BadResponse(f"output {name!r} has shape {shape}; expected first dimension {batch_size} (the batch size)")
    return None
