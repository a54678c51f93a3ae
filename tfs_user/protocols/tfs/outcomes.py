"""Whether a Predict response answers the request: the outputs asked for present, first dimension = batch
size, contents that hold the elements each shape declares.

The failure kinds themselves (``RpcFailure``, ``BadResponse``) are protocol-neutral:
``tfs_user.transport.failures``. Imports neither gRPC nor Locust.
"""

from google.protobuf.message import DecodeError

from tfs_user.protocols.outcomes import missing_outputs
from tfs_user.protocols.tfs.messages import predict_pb2
from tfs_user.protocols.tfs.tensors import content_problem
from tfs_user.transport.failures import BadResponse


def check_response(body, batch_size, endpoint="", outputs=()):
    """Parse a ``PredictResponse`` and check it answers a batch of ``batch_size``.

    Every output tensor must have a first dimension equal to ``batch_size`` and contents that hold
    the elements its shape declares; each name in ``outputs`` (``--output-names``) must be among them.
    Returns None when it does, else a BadResponse saying what was wrong (naming
    ``endpoint`` when there are several).
    """
    problem = _response_problem(body, batch_size, outputs)
    if problem is None:
        return None
    return BadResponse(f"{problem} (endpoint {endpoint})" if endpoint else problem)


def _response_problem(body, batch_size, outputs=()):
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
        problem = content_problem(tensor)
        if problem:
            return f"output {name!r}: {problem}"
    return missing_outputs(outputs, response.outputs)
