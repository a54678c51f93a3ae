"""Whether a ModelInfer response answers the request: outputs present, first dimension = batch size.

Outputs may come in ``raw_output_contents`` (one entry per output) or in typed ``contents``;
either way each must hold the elements its shape declares. The failure kinds are
``tfs_user.transport.failures``. Imports neither gRPC's channel layer nor Locust.
"""

from google.protobuf.message import DecodeError

from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.outcomes import missing_outputs
from tfs_user.protocols.kserve.messages import pb2
from tfs_user.transport.failures import BadResponse


def check_response(body, batch_size, endpoint="", outputs=()):
    """Parse a ``ModelInferResponse`` and check it answers a batch of ``batch_size``.

    Returns None when every output has first dimension ``batch_size`` and contents that match
    its shape, and each name in ``outputs`` (the requested outputs, ``--output-names``) is among
    them; else a BadResponse saying what was wrong (naming ``endpoint`` when given).
    """
    problem = _response_problem(body, batch_size, outputs)
    if problem is None:
        return None
    return BadResponse(f"{problem} (endpoint {endpoint})" if endpoint else problem)


def read_outputs(response):
    """``{name: array or list of bytes}`` of a ``ModelInferResponse`` (raw contents first); ValueError when
    the contents do not match the declared shapes."""
    raw = response.raw_output_contents
    if raw and len(raw) != len(response.outputs):
        raise ValueError(f"response has {len(raw)} raw_output_contents for {len(response.outputs)} outputs; "
                         "expected one per output")
    out = {}
    for i, tensor in enumerate(response.outputs):
        shape = tuple(tensor.shape)
        out[tensor.name] = (tensors.from_raw(raw[i], tensor.datatype, shape) if raw
                            else tensors.from_contents(tensor.contents, tensor.datatype, shape))
    return out


def _response_problem(body, batch_size, outputs=()):
    try:
        response = pb2.ModelInferResponse.FromString(body)
    except DecodeError:
        return f"response of {len(body)} bytes is not a ModelInferResponse"
    if not response.outputs:
        return "response has no output tensors; expected at least one"
    raw = response.raw_output_contents
    if raw and len(raw) != len(response.outputs):
        return f"response has {len(raw)} raw_output_contents for {len(response.outputs)} outputs; expected one per output"
    for i, tensor in enumerate(response.outputs):
        if not tensor.shape or tensor.shape[0] != batch_size:
            return (f"output {tensor.name!r} has shape {list(tensor.shape)}; expected first dimension {batch_size} "
                    "(the batch size)")
        problem = tensors.contents_problem(tensor, raw[i] if raw else None)
        if problem:
            return problem
    return missing_outputs(outputs, [tensor.name for tensor in response.outputs])
