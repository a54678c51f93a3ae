"""gRPC channels to the model server: TLS credentials, message limits, reconnection, readiness.

One channel per user, made in ``on_start`` (after Locust's ``--processes`` fork) from the
``Transport`` of its Settings (``tfs_user.settings``). ``wait_until_reachable`` explains a
channel that does not get READY with a raw probe of the port (``tfs_user.transport.tls_probe``).
"""

import functools
import logging
import time

from tfs_user.transport import tls_probe
from tfs_user.transport.gevent_grpc import grpc
from tfs_user.transport.config import read_pem
from tfs_user.transport.channel_args import channel_arguments
from tfs_user.transport.target import DNS_SCHEME, is_dns

logger = logging.getLogger("tfs_user")

POLL_S = 1.0
"""Seconds between probes of a port whose channel is not READY."""
PROGRESS_S = 3.0
"""Seconds between progress lines while waiting for a server."""
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

    Channel arguments: ``tfs_user.transport.channel_args.channel_arguments`` (limits, reconnect
    backoff, ``round_robin`` for ``dns:///``, then ``--grpc-option``).
    """
    options = channel_arguments(target, transport)
    compression = COMPRESSION[transport.compression]
    if not transport.tls:
        return grpc.insecure_channel(target, options=options, compression=compression)
    if transport.server_name:
        options.append(("grpc.ssl_target_name_override", transport.server_name))
    credentials = _credentials(transport.ca, transport.cert, transport.key)
    return grpc.secure_channel(target, credentials, options=options, compression=compression)


def wait_until_reachable(target, timeout_s, transport, progress_s=PROGRESS_S):
    """Block until a channel to ``target`` is READY, for at most ``timeout_s`` seconds.

    While it is not READY, the port is probed once a second (``tfs_user.transport.tls_probe``): a
    fault that waiting cannot fix (TLS against a plaintext port, plaintext against TLS, an
    unknown CA, a certificate for other names) raises ConnectionError (one line) at once;
    a port where nothing listens yet, or a name that does not resolve yet, is waited for, with a
    progress line every ``progress_s`` seconds. Raises ConnectionError (one line) after ``timeout_s``,
    saying that the name did not resolve when it did not.
    """
    probed = target[len(DNS_SCHEME):] if is_dns(target) else target  # the raw probe resolves NAME itself
    started = time.monotonic()
    deadline = started + timeout_s
    next_progress = started + progress_s
    channel = open_channel(target, transport)
    ready = grpc.channel_ready_future(channel)
    try:
        while True:
            try:
                ready.result(timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
                return
            except grpc.FutureTimeoutError:
                pass
            fault = tls_probe.diagnose(probed, transport, timeout_s=POLL_S)
            if fault is not None and fault.final:
                raise ConnectionError(fault.message)
            now = time.monotonic()
            if now >= deadline:
                unresolved = fault is not None and fault.kind == "unresolved"
                raise ConnectionError(fault.message if unresolved else tls_probe.not_answering(target, timeout_s))
            if now >= next_progress:
                logger.info("waiting for a gRPC server at %s: %.0f s of %g s", target, now - started, timeout_s)
                next_progress += progress_s
    finally:
        ready.cancel()
        channel.close()
