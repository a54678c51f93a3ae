"""The Predict call and what its outcome means: raw-bytes call, gRPC failures, wrong answers.

``predict_call(channel)`` sends a request body prepared once (``tfs_user.requests``) and
returns the response bytes; ``RpcFailure`` and ``BadResponse`` are the exceptions a user
stores in its Locust request event (never raised).
"""

import re

from google.protobuf.message import DecodeError

from tfs_user.gevent_grpc import grpc
from tfs_user.protos import PREDICT_METHOD, predict_pb2


def predict_call(channel):
    """``PredictionService/Predict`` on ``channel`` taking and returning raw message bytes.

    Called as ``call(body, timeout=s, metadata=pairs)`` -> response ``bytes``; raises
    ``grpc.RpcError``. No (de)serializer is set, so a request body prepared once is sent as
    is and the response length is the exact number of bytes received.
    """
    return channel.unary_unary(PREDICT_METHOD)


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
        """The RpcFailure of a ``grpc.RpcError``; a message-size error names --max-message-mb."""
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
