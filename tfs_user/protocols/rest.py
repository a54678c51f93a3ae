"""What both protocols' REST APIs share: serialized bodies with their headers, JSON values, the call, GETs.

A body is built and serialized once (``RestBody``: the bytes, and the headers that go with them,
e.g. ``Inference-Header-Content-Length``); the call posts it on the user's keep-alive connection
(``tfs_user.transport.http_client``). Pre-flight GETs turn transport failures into PreflightError.
"""

import base64
import json

from tfs_user.protocols.preflight import PreflightError

JSON_HEADERS = {"Content-Type": "application/json"}


class RestBody(bytes):
    """A serialized request body (``bytes``) and the request headers it needs (``headers``, a dict)."""

    headers = JSON_HEADERS

    @classmethod
    def of(cls, data, headers=None):
        body = cls(data)
        if headers is not None:
            body.headers = {**JSON_HEADERS, **headers}
        return body


def dumps(value):
    """Compact JSON text of ``value`` as UTF-8 bytes (no spaces: what a server parses, not what a person reads)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def json_values(batch):
    """A batch as JSON values: a numpy array as nested lists (float32 values keep every bit: the decimal text
    of each float32 reads back as the same float32), a list of ``bytes`` as ``{"b64": ...}`` objects."""
    if isinstance(batch, list):  # an encoded-image batch [b, 1, ...] nests each item to the input's rank
        depth = len(getattr(batch, "shape", ())) - 1
        values = []
        for item in batch:
            value = {"b64": base64.b64encode(item).decode()}
            for _ in range(max(0, depth)):
                value = [value]
            values.append(value)
        return values
    return batch.tolist()


def open_post(connection, path):
    """``call(body, timeout=, metadata=) -> (headers, answer bytes)``: POST a ``RestBody`` to ``path`` on
    ``connection`` (timeout and headers are the connection's: set once per user); raises HttpFailure."""
    post = connection.post

    def call(body, timeout=None, metadata=None):
        return post(path, body, body.headers)

    return call


def get(connection, path, what):
    """GET ``path`` -> ``(status, JSON value or text)``; PreflightError naming ``what`` and the URL when the
    connection fails."""
    from tfs_user.transport.http_client import HttpFailure  # geventhttpclient: only where a connection exists

    try:
        return connection.get_json(path)
    except HttpFailure as e:
        raise PreflightError(f"{what} at {connection.url}{path} failed: {e}") from None


def error_of(value):
    """The server's error text in an answer's JSON (``error``, ``detail``), or the answer itself."""
    if isinstance(value, dict):
        for key in ("error", "detail", "message"):
            if value.get(key):
                return str(value[key])
    return str(value)[:300]


def not_found(model, connection, path, value):
    """The PreflightError for a model the server does not have (HTTP 404 on ``path``)."""
    return PreflightError(f"model {model!r} not found at {connection.url}{path} (HTTP 404: {error_of(value)})")
