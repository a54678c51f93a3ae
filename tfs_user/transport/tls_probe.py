"""Why a gRPC channel does not become READY: a short raw probe of the server's port.

gRPC reports every connection fault the same way (the channel never gets READY). When it
does not, ``diagnose`` opens a plain TCP connection to the port and tries a TLS handshake
with Python's ``ssl`` module (each step bounded by ``timeout_s``), to tell apart:

- nothing listening (connection refused): the server may still be starting;
- ``grpcs://`` against a plaintext port: the TLS handshake fails and the port answers an
  HTTP/2 preface with a SETTINGS frame;
- plaintext against a TLS port: the TLS handshake succeeds;
- a certificate not signed by a CA in ``--grpc-tls-ca`` (or the system's): verification fails;
- a certificate for other names than the host (or ``--grpc-tls-server-name``): the hostname
  check fails; the message names the certificate's names;
- a server that wants a client certificate (mutual TLS) and got none: the handshake succeeds,
  then the server closes the connection instead of answering the HTTP/2 preface.

Standard library only (no gRPC, no Locust): under Locust, gevent has patched ``socket`` and
``ssl`` and the probe yields like any other I/O. Never used on a channel that works.
"""

import socket
import ssl
from dataclasses import dataclass

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
HTTP2_SETTINGS_TYPE = 4
HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
IP_MISMATCH = 64  # X509_V_ERR_IP_ADDRESS_MISMATCH


@dataclass(frozen=True)
class Fault:
    """What the probe found: ``kind`` and a one-line ``message`` naming the fix.

    kind: ``closed`` (nothing listening; may be a server still starting, so not ``final``),
    ``unresolved`` (the host name does not resolve; DNS may still be catching up, so not ``final``),
    ``plaintext-port`` (TLS asked, the port speaks plaintext HTTP/2), ``tls-port`` (plaintext
    asked, the port speaks TLS), ``unknown-ca``, ``hostname``, ``client-cert``. ``final``:
    waiting longer will not help.
    """

    kind: str
    message: str

    @property
    def final(self):
        return self.kind not in ("closed", "unresolved")


def not_answering(target, timeout_s):
    """The message for a port where no gRPC server answered within ``timeout_s`` seconds."""
    return (f"no gRPC server answered at {target} within {timeout_s:g} s; "
            "start the model server or give its address with --host HOST:PORT")


def split_target(target):
    """'HOST:PORT' or '[v6]:PORT' -> (host, port int)."""
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def _connect(host, port, timeout_s):
    return socket.create_connection((host, port), timeout=timeout_s)


def _handshake(host, port, context, server_hostname, timeout_s, then_http2=False):
    """One TLS handshake; returns the peer certificate (dict, empty when not verified), or with
    ``then_http2`` whether the server answered an HTTP/2 preface over it. Raises OSError/ssl errors."""
    with _connect(host, port, timeout_s) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname, do_handshake_on_connect=False) as tls:
            tls.settimeout(timeout_s)
            tls.do_handshake()
            if then_http2:
                return _answers_http2(tls)
            return tls.getpeercert() or {}


def _answers_http2(sock):
    """Send an HTTP/2 preface on ``sock``; True when a SETTINGS frame comes back, False when the peer closes."""
    sock.sendall(HTTP2_PREFACE + EMPTY_SETTINGS_FRAME)
    header = b""
    while len(header) < 9:
        chunk = sock.recv(9 - len(header))
        if not chunk:
            return False
        header += chunk
    return header[3] == HTTP2_SETTINGS_TYPE


def _context(verify, ca="", cert="", key="", check_hostname=False):
    if verify:
        context = ssl.create_default_context(cafile=ca or None)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.check_hostname = check_hostname and verify
    if cert and key:
        context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    return context


def speaks_tls(host, port, timeout_s):
    """True when the port completes a TLS handshake (no verification), False when it does not, None when it is silent."""
    try:
        _handshake(host, port, _context(False), None, timeout_s)
        return True
    except ssl.SSLError:
        return False
    except socket.timeout:
        return None
    except ConnectionError:  # reset / closed while handshaking: not TLS
        return False


def speaks_http2(host, port, timeout_s):
    """True when the port answers an HTTP/2 preface with a SETTINGS frame (a plaintext gRPC server)."""
    try:
        with _connect(host, port, timeout_s) as raw:
            return _answers_http2(raw)
    except OSError:
        return False


def certificate_names(peer):
    """The names a certificate (``getpeercert()`` dict) is valid for: its DNS/IP subjectAltNames, else its CN."""
    names = [value for kind, value in peer.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
    if not names:
        names = [value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"]
    return names


def connect_fault(target, timeout_s):
    """A ``Fault`` when a plain TCP connection to ``target`` cannot be made (``unresolved`` or ``closed``), else None."""
    host, port = split_target(target)
    try:
        _connect(host, port, timeout_s).close()
    except socket.gaierror as e:  # before OSError: a name that does not resolve is not a server that is down
        return Fault("unresolved", f"the host name {host!r} of {target} did not resolve ({e.strerror}); "
                                   "check the name in --host, or give an IP address")
    except OSError:
        return Fault("closed", "")
    return None


def diagnose(target, transport, timeout_s=1.0):
    """Why a channel to ``target`` (``HOST:PORT``) made as ``transport`` (``tfs_user.settings.Transport``)
    is not READY: a ``Fault``, or None when the port looks right (a server busy starting, or a fault
    the probe cannot see). Each connection attempt takes at most ``timeout_s`` seconds."""
    host, port = split_target(target)
    fault = connect_fault(target, timeout_s)
    if fault is not None:
        return fault
    tls = speaks_tls(host, port, timeout_s)
    if not transport.tls:
        if tls:
            return Fault("tls-port", f"the server at {target} speaks TLS but the host is plaintext; use --host "
                                     f"grpcs://{target} (with --grpc-tls-ca for a private CA)")
        if tls is False and not speaks_http2(host, port, timeout_s):
            from tfs_user.transport.http_probe import speaks_http1  # an HTTP/1.1 port: a REST API, not gRPC

            if speaks_http1(host, port, timeout_s):
                return Fault("http-port", f"the server at {target} answers HTTP/1.1 (a REST API), not gRPC; use "
                                          f"--host http://{target}, or give the server's gRPC port")
        return None
    if tls is False:
        what = "plaintext gRPC (HTTP/2 without TLS)" if speaks_http2(host, port, timeout_s) else "no TLS"
        return Fault("plaintext-port", f"grpcs:// asks for TLS but the server at {target} answers {what}; "
                                       f"use --host grpc://{target}")
    if tls is None:
        return None
    return _verify(target, host, port, transport, timeout_s)


def _verify(target, host, port, transport, timeout_s):
    """A TLS port: check the certificate chain, then the name, as gRPC does."""
    name = transport.server_name or host
    try:
        peer = _handshake(host, port, _context(True, transport.ca, transport.cert, transport.key), name, timeout_s)
    except ssl.SSLCertVerificationError as e:
        trusted = f"--grpc-tls-ca {transport.ca}" if transport.ca else "the system's root certificates"
        return Fault("unknown-ca", f"the TLS certificate of the server at {target} is not signed by a CA in {trusted} "
                                   f"({e.verify_message}); give --grpc-tls-ca FILE with the CA that signed it")
    except (OSError, ValueError):
        return None
    try:
        _handshake(host, port, _context(True, transport.ca, transport.cert, transport.key, check_hostname=True),
                   name, timeout_s)
    except ssl.SSLCertVerificationError as e:
        if e.verify_code not in (HOSTNAME_MISMATCH, IP_MISMATCH):
            return None
        names = certificate_names(peer)
        listed = ", ".join(names) or "no names"
        given = f"{name!r} (--grpc-tls-server-name)" if transport.server_name else repr(name)
        fix = f"give --grpc-tls-server-name {names[0]}" if names else "give --grpc-tls-server-name NAME"
        return Fault("hostname", f"the TLS certificate of the server at {target} is for {listed}, not {given}; "
                                 f"{fix} (or connect by a name it holds)")
    except (OSError, ValueError):
        return None
    if not transport.cert:
        try:
            context = _context(True, transport.ca, check_hostname=True)
            answered = _handshake(host, port, context, name, timeout_s, then_http2=True)
        except ssl.SSLError:
            answered = False
        except OSError:
            return None
        if not answered:
            return Fault("client-cert", f"the server at {target} closed the TLS connection without a gRPC answer: it "
                                        "asks for a client certificate (mutual TLS); give --grpc-tls-cert FILE and "
                                        "--grpc-tls-key FILE")
    return None
