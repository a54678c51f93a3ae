"""How gRPC channels are made: TLS files, server name override, message limits, compression, channel arguments.

Plain data (no gRPC): ``Transport`` is checked once when the settings are made; the channel
factory (``tfs_user.transport.channel``) turns it into credentials and channel arguments.
"""

import base64
from dataclasses import dataclass

from tfs_user.option_values import OptionError

COMPRESSIONS = ("none", "gzip", "deflate")


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
    max_message_bytes: int = 256 << 20
    compression: str = "none"
    options: tuple = ()
    """((key, value), ...) gRPC channel arguments from ``--grpc-option``; they override ours."""

    def check(self):
        """Raise OptionError (one line) for unreadable or broken TLS files, a key that is not the certificate's,
        or an incomplete cert/key pair (gRPC would only say that no server answered)."""
        if bool(self.cert) != bool(self.key):
            raise OptionError("--grpc-tls-cert and --grpc-tls-key go together (mutual TLS); give both or neither")
        if (self.ca or self.cert) and not self.tls:
            raise OptionError("--grpc-tls-ca/--grpc-tls-cert are set but the host is not grpcs://HOST:PORT; use grpcs:// for TLS")
        for option, path in (("--grpc-tls-ca", self.ca), ("--grpc-tls-cert", self.cert), ("--grpc-tls-key", self.key)):
            if path:
                read_pem(option, path)
        check_pem_files(self.ca, self.cert, self.key)
        if self.compression not in COMPRESSIONS:
            raise OptionError(f"--grpc-compression {self.compression!r} is not known; expected one of {', '.join(COMPRESSIONS)}")


def read_pem(option, path):
    """The bytes of the PEM file ``path`` given by ``option``; OptionError (one line) when unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise OptionError(f"{option} {path!r} cannot be read ({e.strerror}); expected a PEM file") from None


def _reason(error):
    """The words of an ``ssl.SSLError``: its OpenSSL reason ("KEY_VALUES_MISMATCH"), else its text."""
    return getattr(error, "reason", None) or str(error)


def check_pem_files(ca="", cert="", key=""):
    """OptionError (one line, naming the file and why) unless ``ca`` holds PEM certificates and ``cert``/``key``
    a certificate and the private key that matches it, as Python's ``ssl`` (OpenSSL, as gRPC) reads them.
    An encrypted key is refused: gRPC takes no password."""
    if not (ca or cert):
        return
    import ssl  # here, and only with files to check: gevent patches ssl first in a Locust process

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for option, path in (("--grpc-tls-ca", ca), ("--grpc-tls-cert", cert)):
        if path:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
            except (ssl.SSLError, ValueError) as e:
                raise OptionError(f"{option} {path!r} holds no PEM certificate ssl can read ({_reason(e)}); expected "
                                  "a file of '-----BEGIN CERTIFICATE-----' blocks") from None
    if cert and key:
        try:
            context.load_cert_chain(cert, key, password=lambda: b"")  # never a password prompt
        except ssl.SSLError as e:
            reason = _reason(e)
            if "MISMATCH" in reason:
                raise OptionError(f"--grpc-tls-key {key!r} is not the private key of --grpc-tls-cert {cert!r} "
                                  f"({reason}); expected the key that certificate was made for") from None
            raise OptionError(f"--grpc-tls-key {key!r} holds no private key ssl can read ({reason}); expected an "
                              "unencrypted PEM private key (gRPC takes no password)") from None


def header_pairs(metadata):
    """``--grpc-metadata`` pairs as HTTP headers: text values as they are, a ``-bin`` key's bytes (gRPC binary
    metadata) as the base64 text they were given in."""
    return tuple((k, base64.b64encode(v).decode() if isinstance(v, bytes) else v) for k, v in metadata)
