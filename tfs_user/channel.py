"""gRPC channels to the model server: TLS credentials, message limits, reconnection, readiness.

One channel per user, made in ``on_start`` (after Locust's ``--processes`` fork) from the
``Transport`` of its Settings (``tfs_user.settings``).
"""

import functools

from tfs_user.gevent_grpc import grpc
from tfs_user.settings import read_pem

COMPRESSION = {"none": grpc.Compression.NoCompression, "gzip": grpc.Compression.Gzip,
               "deflate": grpc.Compression.Deflate}


@functools.lru_cache(maxsize=8)
def _credentials(ca, cert, key):
    """Channel credentials, read once per process."""
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem("--grpc-tls-ca", ca) if ca else None,
        private_key=read_pem("--grpc-tls-key", key) if key else None,
        certificate_chain=read_pem("--grpc-tls-cert", cert) if cert else None,
    )


def open_channel(target, transport):
    """A ``grpc.Channel`` to ``target`` (``HOST:PORT``) made as ``transport`` (a ``Transport``) says.

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


def wait_until_reachable(target, timeout_s, transport):
    """Block until a channel to ``target`` is READY; raise ConnectionError (one line) after ``timeout_s`` seconds."""
    channel = open_channel(target, transport)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
        raise ConnectionError(f"no gRPC server answered at {target} within {timeout_s:g} s; start the model server or give its address with --host HOST:PORT") from None
    finally:
        channel.close()
