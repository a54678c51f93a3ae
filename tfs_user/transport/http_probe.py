"""Before any user starts: does an ``http://`` / ``https://`` endpoint answer HTTP/1.1 as its scheme says?

A short raw probe of the port (standard library; under Locust, gevent has patched ``socket`` and ``ssl``),
to turn the faults a scheme can hide into one line naming the fix:

- nothing listening (refused) or a name that does not resolve: waited for, as over gRPC;
- ``http://`` at a gRPC port: the port answers an HTTP/2 preface, not HTTP/1.1 -> use ``HOST:PORT``;
- ``http://`` at a TLS port -> use ``https://``; ``https://`` at a plain port -> use ``http://``
  (or ``HOST:PORT`` when it is a plaintext gRPC port);
- ``https://`` with a certificate the CA (``--grpc-tls-ca``) or the name does not verify, or a server
  that wants a client certificate.
"""

import logging
import ssl
import time

from tfs_user.transport.tls_probe import Fault, _connect, connect_fault, speaks_http2, speaks_tls, split_target

logger = logging.getLogger("tfs_user")

POLL_S = 1.0
PROGRESS_S = 3.0
_REQUEST = "GET /v2/health/live HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"


def _answers_http1(sock, host):
    """Send a GET on ``sock``; True when an HTTP/1.x status line comes back."""
    sock.sendall(_REQUEST.format(host=host).encode())
    head = b""
    while len(head) < 8:
        chunk = sock.recv(64)
        if not chunk:
            break
        head += chunk
    return head.startswith(b"HTTP/1.")


def speaks_http1(host, port, timeout_s):
    """True when the plain port answers an HTTP/1.1 request (a REST API)."""
    try:
        with _connect(host, port, timeout_s) as sock:
            sock.settimeout(timeout_s)
            return _answers_http1(sock, host)
    except OSError:
        return False


def _https_fault(target, host, port, transport, timeout_s):
    """An HTTPS port: verify as the client will (CA, name, client certificate), then ask HTTP/1.1."""
    name = transport.server_name or host
    context = ssl.create_default_context(cafile=transport.ca or None)
    if transport.cert and transport.key:
        context.load_cert_chain(transport.cert, transport.key)
    try:
        with _connect(host, port, timeout_s) as raw:
            with context.wrap_socket(raw, server_hostname=name) as sock:
                sock.settimeout(timeout_s)
                if _answers_http1(sock, name):
                    return None
        return Fault("not-http", f"the server at {target} speaks TLS but does not answer HTTP/1.1 (a gRPC server?); "
                                 f"use --host grpcs://{target}, or the server's REST port")
    except ssl.SSLCertVerificationError as e:
        trusted = f"--grpc-tls-ca {transport.ca}" if transport.ca else "the system's root certificates"
        return Fault("unknown-ca", f"the TLS certificate of the server at {target} does not verify against {trusted} "
                                   f"and the name {name!r} ({e.verify_message}); give --grpc-tls-ca FILE with its CA, "
                                   "or --grpc-tls-server-name NAME")
    except (ssl.SSLError, ConnectionError) as e:
        if not transport.cert:
            return Fault("client-cert", f"the server at {target} closed the TLS connection ({e}): it may ask for a "
                                        "client certificate (mutual TLS); give --grpc-tls-cert FILE and --grpc-tls-key FILE")
        return Fault("tls", f"the TLS connection to {target} failed: {e}")
    except OSError:
        return None


def diagnose(target, transport, timeout_s=1.0):
    """Why ``target`` (``HOST:PORT``) does not answer HTTP as ``transport`` (TLS or not) says: a ``Fault``, or None."""
    host, port = split_target(target)
    fault = connect_fault(target, timeout_s)
    if fault is not None:
        return fault
    tls = speaks_tls(host, port, timeout_s)
    if transport.tls:
        if tls is False:
            if speaks_http1(host, port, timeout_s):
                return Fault("plaintext-port", f"https:// asks for TLS but the server at {target} answers plain HTTP; "
                                               f"use --host http://{target}")
            if speaks_http2(host, port, timeout_s):
                return Fault("grpc-port", f"https:// asks for TLS and HTTP/1.1 but the server at {target} answers "
                                          f"plaintext gRPC (HTTP/2); use --host {target} (gRPC), or its REST port")
            return Fault("plaintext-port", f"https:// asks for TLS but the server at {target} does not speak TLS; "
                                           f"use --host http://{target}")
        return _https_fault(target, host, port, transport, timeout_s) if tls else None
    if tls:
        return Fault("tls-port", f"the server at {target} speaks TLS but the host is http://; use --host "
                                 f"https://{target} (with --grpc-tls-ca for a private CA)")
    if speaks_http1(host, port, timeout_s):
        return None
    if speaks_http2(host, port, timeout_s):
        return Fault("grpc-port", f"the server at {target} speaks gRPC (HTTP/2), not HTTP/1.1; use --host {target} "
                                  "(gRPC), or give the server's REST port with http://")
    return Fault("not-http", f"the server at {target} does not answer HTTP/1.1; check the port in --host")


def wait_until_reachable(target, timeout_s, transport, progress_s=PROGRESS_S):
    """Block until ``target`` answers HTTP/1.1 as ``transport`` says, for at most ``timeout_s`` seconds;
    ConnectionError (one line) at once for a fault waiting cannot fix, or after ``timeout_s``."""
    started = time.monotonic()
    next_progress = started + progress_s
    while True:
        fault = diagnose(target, transport, timeout_s=POLL_S)
        if fault is None:
            return
        if fault.final:
            raise ConnectionError(fault.message)
        now = time.monotonic()
        if now - started >= timeout_s:
            raise ConnectionError(fault.message if fault.kind == "unresolved" else
                                  f"no HTTP server answered at {target} within {timeout_s:g} s; start the model "
                                  "server or give its REST address with --host http://HOST:PORT")
        if now >= next_progress:
            logger.info("waiting for an HTTP server at %s: %.0f s of %g s", target, now - started, timeout_s)
            next_progress += progress_s
        time.sleep(min(POLL_S, max(0.0, timeout_s - (now - started))))
