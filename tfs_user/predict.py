"""The Predict call and what its outcome means: raw-bytes call, gRPC failures, wrong answers.

``predict_call(channel)`` sends a request body prepared once (``tfs_user.requests``) and
returns the response bytes; ``RpcFailure`` and ``BadResponse`` are the exceptions a user
stores in its Locust request event (never raised).
"""

import re

from google.protobuf.message import DecodeError

from tfs_user import engine
from tfs_user.gevent_grpc import grpc
from tfs_user.protos import PREDICT_METHOD, predict_pb2


def predict_call(channel):
    """``PredictionService/Predict`` on ``channel`` taking and returning raw message bytes.

    Called as ``call(body, timeout=s, metadata=pairs)`` -> response ``bytes``; raises
    ``grpc.RpcError``; it blocks only the calling greenlet. No (de)serializer is set, so a
    request body prepared once is sent as is and the response length is the exact number of
    bytes received. Its waits go through this process's completion engine
    (``tfs_user.engine``, installed here, i.e. in ``on_start`` after Locust's fork).
    """
    engine.install()
    return channel.unary_unary(PREDICT_METHOD)


_TOO_LARGE = re.compile(r"larger than max \((\d+) vs\. (\d+)\)")
_GOAWAY = re.compile(r"goaway|too.many.pings|enhance.your.calm", re.IGNORECASE)
GOAWAY_DETAILS = ("the server closed the connection with HTTP/2 GOAWAY{why}; the user reconnects. "
                  "If this repeats, check --grpc-option keepalive settings against the server's keepalive policy")
"""Details of a failure caused by a server's GOAWAY: one stable text, so Locust's failure table shows one row."""


class RpcFailure(Exception):
    """A Predict call that ended with a gRPC status other than OK.

    ``code`` is the ``grpc.StatusCode``, ``details`` the server's message. Its
    repr, which Locust uses as the key of its failure table, reads
    ``NOT_FOUND: Servable not found ...``; with several endpoints it ends with
    ``(endpoint HOST:PORT)``.
    """

    def __init__(self, code, details, endpoint=""):
        super().__init__(code, details)
        self.code = code
        self.details = details or ""
        self.endpoint = endpoint

    @classmethod
    def from_rpc_error(cls, error, endpoint=""):
        """The RpcFailure of a ``grpc.RpcError`` at ``endpoint`` ("" when there is one endpoint).

        A message-size error names --max-message-mb; a connection the server closed with GOAWAY
        (e.g. ``too_many_pings``) gets GOAWAY_DETAILS, one text whatever gRPC's wording.
        """
        code, details = error.code(), error.details() or ""
        too_large = _TOO_LARGE.search(details) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
        if too_large:
            details = f"got {too_large[1]} bytes, limit {too_large[2]} (raise --max-message-mb)"
        elif _GOAWAY.search(details) or _GOAWAY.search(_debug_text(error)):
            pings = "too_many_pings" in (details + _debug_text(error)).lower().replace(" ", "_")
            details = GOAWAY_DETAILS.format(why=" too_many_pings (keepalive pings too frequent for it)" if pings else "")
        return cls(code, details, endpoint)

    def __str__(self):
        name = self.code.name if self.code is not None else "UNKNOWN"
        text = f"{name}: {self.details}" if self.details else name
        return f"{text} (endpoint {self.endpoint})" if self.endpoint else text

    __repr__ = __str__


def _debug_text(error):
    """gRPC's debug string of ``error`` ("" when it has none)."""
    try:
        return error.debug_error_string() or ""
    except Exception:  # not every RpcError has one
        return ""


class BadResponse(Exception):
    """A Predict call that returned OK but not what was asked (no outputs, wrong batch dimension)."""

    __repr__ = Exception.__str__


def check_response(body, batch_size, endpoint=""):
    """Parse a ``PredictResponse`` and check it answers a batch of ``batch_size``.

    Every output tensor must have a first dimension equal to ``batch_size``.
    Returns None when it does, else a BadResponse saying what was wrong (naming
    ``endpoint`` when there are several).
    """
    problem = _response_problem(body, batch_size)
    if problem is None:
        return None
    return BadResponse(f"{problem} (endpoint {endpoint})" if endpoint else problem)


def _response_problem(body, batch_size):
    """What is wrong with a Predict response body, or None."""
    try:
        response = predict_pb2.PredictResponse.FromString(body)
    except DecodeError:
        return f"response of {len(body)} bytes is not a PredictResponse"
    if not response.outputs:
        return "response has no output tensors; expected at least one"
    for name, tensor in response.outputs.items():
        dims = tensor.tensor_shape.dim
        if not dims or dims[0].size != batch_size:
            shape = [d.size for d in dims]
            return f"output {name!r} has shape {shape}; expected first dimension {batch_size} (the batch size)"
    return None
