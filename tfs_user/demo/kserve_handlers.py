"""The demo server's Open Inference Protocol handlers: ModelReady, ModelMetadata, ModelInfer, as Triton answers them.

Stateless, like ``tfs_user.demo.handlers`` (TF Serving's): each takes the served models
(``{name: ModelConfig}``) and the request message, returns the response message or raises
``Abort`` with the gRPC status code and details. Inputs may come raw (``raw_input_contents``)
or typed (``contents``); the answer is one FP32 output ``[batch, output_size]`` in
``raw_output_contents`` (typed ``fp32_contents`` with ``typed_outputs``). What both protocols share
(``Abort``, ``ReceivedRequest``, shape checks, running the model) is ``tfs_user.demo.inference``.
"""

import grpc

from tfs_user.demo.inference import Abort, ReceivedRequest, find_model, run_model, shape_fits, shape_text
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import pb2

PLATFORM = "tfs-locust-demo"


def datatype(dtype_name):
    """The datatype of a ModelConfig dtype name ("string" -> BYTES)."""
    return "BYTES" if dtype_name == "string" else tensors.datatype_of(dtype_name)


def version_number(text):
    """The version a request's version string names: an int for ASCII decimal digits, else None ("" included)."""
    return int(text) if text.isascii() and text.isdigit() else None


def resolve(models, name, version):
    """(ModelConfig, served version) for a model name and version string ("" = the latest); Abort NOT_FOUND
    for an unknown model, or a version that is not a decimal number of a served version."""
    number = version_number(version)
    model, served = find_model(models, name, number)
    if model is None:
        raise Abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}' is not found")
    if served is None or (version and number is None):
        raise Abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}' version {version} is not found")
    return model, served


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
    return ReceivedRequest(index=index, time=arrival, model_name=request.model_name,
                           version=version_number(request.model_version), version_label="",
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
    data = []
    for name, dtype, model_shape in model.inputs:
        index = position[name]
        tensor = request.inputs[index]
        expected = datatype(dtype)
        if tensor.datatype != expected:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"inference input '{name}' data-type is '{tensor.datatype}', but model '{model.name}' expects "
                        f"'{expected}'")
        if any(d < 0 for d in tensor.shape):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"input '{name}' has shape {shape_text(tensor.shape)}; expected sizes >= 0 (-1 is for model shapes)")
        if not shape_fits(model_shape, tensor.shape):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"unexpected shape for input '{name}' for model '{model.name}'. Expected {shape_text(model_shape)}, "
                        f"got {shape_text(tensor.shape)}")
        try:
            data.append(_tensor(request, index))
        except ValueError as e:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"input '{name}': {e}") from None
    scores, batch = run_model(model, data, bad_output_batch)
    response = pb2.ModelInferResponse(model_name=model.name, model_version=str(version), id=request.id)
    output = response.outputs.add(name=model.output_name, datatype="FP32", shape=scores.shape)
    if typed_outputs:
        output.contents.fp32_contents.extend(scores.ravel().tolist())
    else:
        response.raw_output_contents.append(tensors.to_raw(scores))
    return response, batch
