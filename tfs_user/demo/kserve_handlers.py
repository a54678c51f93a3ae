"""The demo server's Open Inference Protocol handlers: ModelReady, ModelMetadata, ModelInfer, as Triton answers them.

Stateless, like ``tfs_user.demo.handlers`` (TF Serving's): each takes the served models
(``{name: ModelConfig}``) and the request message, returns the response message or raises
``Abort`` with the gRPC status code and details. Inputs may come raw (``raw_input_contents``)
or typed (``contents``); the answer is one FP32 output ``[batch, output_size]`` in
``raw_output_contents`` (typed ``fp32_contents`` with ``typed_outputs``).
"""

import grpc
import numpy as np

from tfs_user.demo.handlers import Abort, ReceivedRequest, decode_images, shape_text
from tfs_user.demo.model import model_function
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import pb2

PLATFORM = "tfs-locust-demo"


def datatype(dtype_name):
    """The datatype of a ModelConfig dtype name ("string" -> BYTES)."""
    return "BYTES" if dtype_name == "string" else tensors.datatype_of(dtype_name)


def resolve(models, name, version):
    """(ModelConfig, served version) for a model name and version string ("" = the latest); Abort NOT_FOUND."""
    model = models.get(name)
    if model is None:
        raise Abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}' is not found")
    if not version:
        return model, model.versions[-1]
    if not version.isdigit() or int(version) not in model.versions:
        raise Abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}' version {version} is not found")
    return model, int(version)


def ready(models, request, loading=False):
    """ModelReadyResponse: ready unless the versions are loading; Abort NOT_FOUND for an unknown model/version."""
    resolve(models, request.name, request.version)
    return pb2.ModelReadyResponse(ready=not loading)


def metadata(models, request):
    """ModelMetadataResponse: versions, inputs (datatype, shape with -1) and the FP32 output; Abort NOT_FOUND."""
    model, _ = resolve(models, request.name, request.version)
    response = pb2.ModelMetadataResponse(name=model.name, versions=[str(v) for v in model.versions], platform=PLATFORM)
    for name, dtype, shape in model.inputs:
        response.inputs.add(name=name, datatype=datatype(dtype), shape=shape)
    response.outputs.add(name=model.output_name, datatype="FP32", shape=(-1, model.output_size))
    return response


def model_name(request):
    """The model a ModelInferRequest names."""
    return request.model_name


def _tensor(request, index):
    """Input ``index`` of a request as sent: an array, a list of bytes (BYTES); ValueError when it cannot be read."""
    tensor = request.inputs[index]
    shape = tuple(tensor.shape)
    if request.raw_input_contents:
        if tensor.HasField("contents"):
            raise ValueError(f"input '{tensor.name}' has contents and raw_input_contents; expected one of them")
        return tensors.from_raw(request.raw_input_contents[index], tensor.datatype, shape)
    return tensors.from_contents(tensor.contents, tensor.datatype, shape)


def decode_inputs(request):
    """The inputs of a ModelInferRequest by name as received (None for one that cannot be read)."""
    inputs = {}
    for index, tensor in enumerate(request.inputs):
        try:
            inputs[tensor.name] = _tensor(request, index)
        except (ValueError, IndexError):
            inputs[tensor.name] = None
    return inputs


def receipt(index, arrival, request, context):
    """The ReceivedRequest of a ModelInfer call (version None when the request names none)."""
    version = int(request.model_version) if request.model_version.isdigit() else None
    return ReceivedRequest(index=index, time=arrival, model_name=request.model_name, version=version, version_label="",
                           signature_name="", inputs=decode_inputs(request),
                           metadata=dict(context.invocation_metadata()), peer=context.peer())


def _check_inputs(model, request):
    """Names, count and raw contents of a request's inputs; Abort INVALID_ARGUMENT."""
    names = [t.name for t in request.inputs]
    expected = [name for name, _, _ in model.inputs]
    unknown = sorted(set(names) - set(expected))
    if unknown:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f"unexpected inference input '{unknown[0]}' for model '{model.name}'; expected {', '.join(expected)}")
    missing = sorted(set(expected) - set(names))
    if missing or len(names) != len(set(names)):
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f"expected {len(expected)} inputs ({', '.join(expected)}) but got {len(names)} inputs for model "
                    f"'{model.name}'")
    raw = len(request.raw_input_contents)
    if raw and raw != len(names):
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f"expected {len(names)} raw_input_contents (one per input) but got {raw}")
    for output in request.outputs:
        if output.name != model.output_name:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"unexpected inference output '{output.name}' for model '{model.name}'; expected {model.output_name}")


def predict(models, request, bad_output_batch=False, typed_outputs=False):
    """Validate a ModelInferRequest, run the demo model on its first input, build the ModelInferResponse.

    Returns ``(response, batch)``: one FP32 output ``[batch, output_size]`` (``batch + 1`` rows with
    ``bad_output_batch``), raw unless ``typed_outputs``. Raises Abort on request errors.
    """
    model, version = resolve(models, request.model_name, request.model_version)
    _check_inputs(model, request)
    position = {t.name: i for i, t in enumerate(request.inputs)}
    batches, scores = set(), None
    for order, (name, dtype, model_shape) in enumerate(model.inputs):
        index = position[name]
        tensor = request.inputs[index]
        expected = datatype(dtype)
        if tensor.datatype != expected:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"inference input '{name}' data-type is '{tensor.datatype}', but model '{model.name}' expects "
                        f"'{expected}'")
        shape = list(tensor.shape)
        if len(shape) != len(model_shape) or any(e != -1 and e != d for e, d in zip(model_shape, shape)):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"unexpected shape for input '{name}' for model '{model.name}'. Expected {shape_text(model_shape)}, "
                        f"got {shape_text(shape)}")
        try:
            data = _tensor(request, index)
        except ValueError as e:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"input '{name}': {e}") from None
        if dtype == "string":
            frames = decode_images(data)
            batches.add(len(frames))
            if order == 0:
                scores = np.concatenate([model_function(f[None], model.output_size) for f in frames]) \
                    if frames else np.zeros((0, model.output_size), np.float32)
            continue
        batches.add(data.shape[0] if data.ndim else 1)
        if order == 0:
            scores = model_function(data, model.output_size)
    if len(batches) != 1:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"inputs have different batch sizes {sorted(batches)}")
    if bad_output_batch:
        scores = np.concatenate([scores, np.full((1, model.output_size), 1.0 / model.output_size, np.float32)])
    response = pb2.ModelInferResponse(model_name=model.name, model_version=str(version), id=request.id)
    output = response.outputs.add(name=model.output_name, datatype="FP32", shape=scores.shape)
    if typed_outputs:
        output.contents.fp32_contents.extend(scores.ravel().tolist())
    else:
        response.raw_output_contents.append(tensors.to_raw(scores))
    return response, batches.pop()
