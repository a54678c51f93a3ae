"""HTTP connections to a model server's REST API: one keep-alive connection per user, failures by kind.

geventhttpclient (the client of Locust's FastHttpUser, installed with Locust) on one connection
(``concurrency=1``): HTTP/1.1 keep-alive, gevent sockets, TLS from the same certificate options
as gRPC (``Transport``: CA, client certificate and key for mutual TLS, server name). A call
returns the status, the headers it needs and the body; anything that is not a 2xx answer becomes
an ``HttpFailure`` saying what happened (``HTTP 400: <the server's error text>``, a timeout, a
refused or reset connection), which the user stores in its request event. Measured against the
alternatives in ``benchmarks/http_cost.py``.
"""

import errno
import functools
import json
import re
import socket
import ssl

import gevent
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError

from tfs_user.transport.config import header_pairs, read_pem

BLOCK_BYTES = 64 << 10
"""Bytes per socket read (geventhttpclient's default 4 KiB would take 150 reads for a 600 KB answer)."""
RETRY_PAUSE_S = 0.1
"""Pause after a refused or reset connection or a 503 (server down or restarting), seconds."""
TEXT_CHARS = 300
"""The most characters of a server's error text kept in a failure (Locust's failure table keys on it)."""
_TAG = re.compile(r"<[^>]*>")


class HttpFailure(Exception):
    """A REST call that did not get a 2xx answer: ``kind`` (``status``, ``timeout``, ``refused``, ``reset``,
    ``closed``), the HTTP ``status`` (0 without one), the server's ``text``; its str reads
    ``HTTP 404: model not found`` and ends with ``(endpoint HOST:PORT)`` when given one."""

    def __init__(self, kind, text, status=0, endpoint=""):
        super().__init__(kind, text, status)
        self.kind, self.text, self.status, self.endpoint = kind, text, status, endpoint

    @property
    def pause_s(self):
        """Seconds the user pauses before its next call: the server is down or restarting, not answering wrong."""
        return RETRY_PAUSE_S if self.kind in ("refused", "reset", "closed") or self.status == 503 else 0.0

    def at(self, endpoint):
        """This failure naming ``endpoint`` ("" = one endpoint only: named nowhere)."""
        return HttpFailure(self.kind, self.text, self.status, endpoint) if endpoint else self

    def __str__(self):
        text = f"HTTP {self.status}: {self.text}" if self.status else f"HTTP {self.text}"
        return f"{text} (endpoint {self.endpoint})" if self.endpoint else text

    __repr__ = __str__


def error_text(body, content_type=""):
    """The server's error text in an error answer: the JSON ``error``/``detail``/``message`` (TF Serving, Triton,
    KServe, MLServer), the first line of an HTML page's text (a proxy's 502 page), else the first line."""
    text = body.decode("utf-8", "replace").strip() if isinstance(body, (bytes, bytearray)) else str(body)
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, dict):
            for key in ("error", "detail", "message"):
                if value.get(key):
                    text = value[key] if isinstance(value[key], str) else json.dumps(value[key])
                    break
    elif "html" in content_type or text.lower().startswith(("<!doctype", "<html")):
        text = "\n".join(line.strip() for line in _TAG.sub("\n", text).splitlines() if line.strip())
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line[:TEXT_CHARS] or "(no text)"


@functools.lru_cache(maxsize=8)
def _ssl_context(ca, cert, key):
    """A client TLS context, made once per process: the CA's (or the system's) roots, a client pair for mutual TLS."""
    for option, path in (("--grpc-tls-ca", ca), ("--grpc-tls-cert", cert), ("--grpc-tls-key", key)):
        if path:
            read_pem(option, path)  # one line for an unreadable file, as over gRPC
    context = ssl.create_default_context(cafile=ca or None)
    if cert and key:
        context.load_cert_chain(cert, key)
    return context


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to ``target`` (``HOST:PORT``), made as ``transport`` (a ``Transport``)
    says; ``timeout_s`` is each request's deadline, connecting included, as over gRPC (not only each wait for
    the server: one that trickles its answer would never time out). ``headers``: ((key, value), ...) sent
    with every request (``--grpc-metadata``). Reconnects by itself after the server closed the connection
    and after a deadline (the answer was not read whole)."""

    def __init__(self, target, transport, timeout_s, headers=()):
        host, _, port = target.rpartition(":")
        self.target = target
        self.timeout_s = timeout_s
        self.url = f"{'https' if transport.tls else 'http'}://{target}"
        options = {}
        if transport.tls:
            options = dict(ssl=True, ssl_context_factory=lambda **_: _ssl_context(transport.ca, transport.cert,
                                                                                   transport.key))
            if transport.server_name:
                options["ssl_options"] = {"server_hostname": transport.server_name}
        self._new_client = functools.partial(HTTPClient, host.strip("[]"), int(port), concurrency=1,
                                             connection_timeout=timeout_s, network_timeout=timeout_s,
                                             block_size=BLOCK_BYTES, headers=dict(headers), **options)
        self._client = self._new_client()

    def request(self, method, path, body=b"", headers=None):
        """Send one request -> ``(status, headers, body bytes)``; HttpFailure for a timeout, a refused, reset
        or closed connection (any status is returned: ``post`` makes a non-2xx status a failure)."""
        deadline = gevent.Timeout(self.timeout_s)  # the whole call, not only each wait (the socket timeouts)
        deadline.start()
        try:
            response = self._client.request(method, path, body=body, headers=headers)
            data = response.read()  # a deadline inside it closes the socket: the answer was not read whole
            return response.status_code, response, data  # the response answers .get(header)
        except gevent.Timeout as e:
            if e is not deadline:
                raise
            # cut off anywhere (sending, connecting, reading): a socket held out of the pool would block the next call
            self._client.close()
            self._client = self._new_client()
            raise HttpFailure("timeout", f"timeout: no answer within {self.timeout_s:g} s (raise --timeout)") from None
        except (socket.timeout, TimeoutError):
            raise HttpFailure("timeout", f"timeout: no answer within {self.timeout_s:g} s (raise --timeout)") from None
        except ConnectionRefusedError:
            raise HttpFailure("refused", f"connection refused by {self.target} (is the server up?)") from None
        except (HTTPConnectionClosed, HTTPParseError) as e:
            raise HttpFailure("closed", f"connection closed or reset by the server before its answer ({e})") from None
        except ssl.SSLError as e:
            raise HttpFailure("tls", f"TLS error: {e.reason or e}") from None
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE):
                raise HttpFailure("reset", "connection reset by the server") from None
            raise HttpFailure("error", f"{type(e).__name__}: {e.strerror or e}") from None
        finally:
            deadline.close()

    def post(self, path, body, headers=None):
        """POST ``body`` to ``path`` -> ``(headers, answer bytes)``; HttpFailure for anything but a 2xx answer."""
        status, answer_headers, data = self.request("POST", path, body, headers)
        if not 200 <= status < 300:
            raise HttpFailure("status", error_text(data, answer_headers.get("content-type", "")), status)
        return answer_headers, data

    def get_json(self, path):
        """GET ``path`` -> ``(status, JSON value or None)``; HttpFailure for a timeout or a broken connection."""
        status, headers, data = self.request("GET", path)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, error_text(data, headers.get("content-type", ""))

    def close(self):
        self._client.close()


def open_connection(target, settings):
    """The user's connection to ``target`` for ``settings`` (its ``transport``, ``timeout_s``, ``grpc_metadata``).

    HTTP headers are text: a ``-bin`` key's value (bytes for gRPC's binary metadata) goes as the base64 text
    it was given in."""
    return HttpConnection(target, settings.transport, settings.timeout_s, header_pairs(settings.grpc_metadata))
