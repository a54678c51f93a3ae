"""The demo server's request handlers: Predict, GetModelMetadata, GetModelStatus, as TF Serving answers them.

Each handler takes the served models (``{name: ModelConfig}``) and the request
message, and returns the response message or raises ``Abort`` with the gRPC
status code and details text TF Serving would give (model not found, unknown
version label, signature name, input alias, dtype, shape). They hold no state:
``tfs_user.demo.server.DemoServer`` counts, delays, injects failures and
records around them; ``receipt`` makes its record of one Predict
(``ReceivedRequest``: decoded inputs, model spec, gRPC metadata).
"""

import grpc
import numpy as np

from tfs_user.demo.inference import Abort, ReceivedRequest, find_model, run_model, shape_fits, shape_text
from tfs_user.demo.model import dt_of
from tfs_user.protocols.tfs.messages import get_model_metadata_pb2, get_model_status_pb2, meta_graph_pb2, predict_pb2, tensor_shape_pb2, types_pb2
from tfs_user.protocols.tfs.tensors import DT_NAMES, dtype_to_dt, ndarray_to_tensor_proto, tensor_proto_to_ndarray

PREDICT_METHOD_NAME = "tensorflow/serving/predict"
STABLE_LABEL = "stable"


def _dt_text(dt):
    """TensorFlow's short name of a DataType, e.g. DT_FLOAT -> 'float' (as in TF error messages)."""
    name = DT_NAMES.get(dt)
    return name[3:].lower() if name else f"type {dt}"


def resolve(models, model_spec):
    """(ModelConfig, served version) for a ModelSpec, or Abort NOT_FOUND like TF Serving."""
    name = model_spec.name
    choice = model_spec.WhichOneof("version_choice")
    model, version = find_model(models, name, model_spec.version.value if choice == "version" else None)
    if choice == "version" and version is None:
        raise Abort(grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Specific({name}, {model_spec.version.value})")
    if model is None:
        raise Abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
    if choice == "version_label" and model_spec.version_label != STABLE_LABEL:
        raise Abort(grpc.StatusCode.NOT_FOUND, f"Unrecognized servable version label: {model_spec.version_label}")
    return model, version


def _check_names(model, request):
    """Signature name, input aliases and output filter of a PredictRequest; Abort INVALID_ARGUMENT."""
    signature_name = request.model_spec.signature_name
    if signature_name and signature_name != model.signature_name:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f'Serving signature key "{signature_name}" not found.')
    names = set(request.inputs)
    expected = [name for name, _, _ in model.inputs]
    if len(names) != len(expected):
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f"input size does not match signature: {len(names)}!={len(expected)} len({{{','.join(sorted(names))}}}) "
                    f"!= len({{{','.join(sorted(expected))}}}). Missing but required: {{{','.join(sorted(set(expected) - names))}}}.")
    unknown = sorted(names - set(expected))
    if unknown:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                    f"input tensor alias not found in signature: {unknown[0]}. "
                    f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.")
    for alias in request.output_filter:
        if alias != model.output_name:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"output tensor alias not found in signature: {alias} "
                        f"Outputs expected to be in the set {{{model.output_name}}}.")


def model_name(request):
    """The model a PredictRequest names (``model_spec.name``)."""
    return request.model_spec.name


def predict(models, request, bad_output_batch=False):
    """Validate a PredictRequest, run the demo model on its first input, build the PredictResponse.

    Returns ``(response, batch)``: the output is float32 ``[batch, output_size]``
    (``[batch + 1, output_size]`` with ``bad_output_batch``, a server answering
    the wrong number of rows). Raises Abort on request errors.
    """
    model, version = resolve(models, request.model_spec)
    _check_names(model, request)
    data = []
    for index, (name, dtype, model_shape) in enumerate(model.inputs):
        proto = request.inputs[name]
        expected_dt = dt_of(dtype)
        if proto.dtype != expected_dt:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"Expects arg[{index}] to be {_dt_text(expected_dt)} but {_dt_text(proto.dtype)} is provided")
        shape = [d.size for d in proto.tensor_shape.dim]
        if not shape_fits(model_shape, shape):
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"input tensor {name} has shape {shape_text(shape)} "
                        f"but the signature expects {shape_text(model_shape)}")
        if dtype == "string":
            data.append(list(proto.string_val))
            continue
        try:
            data.append(tensor_proto_to_ndarray(proto))
        except ValueError as e:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
    scores, batch = run_model(model, data, bad_output_batch)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = model.name
    response.model_spec.version.value = version
    response.model_spec.signature_name = model.signature_name
    response.outputs[model.output_name].CopyFrom(ndarray_to_tensor_proto(scores))
    return response, batch


def decode_inputs(request):
    """The input tensors of a PredictRequest by alias, as received: a numpy array decoded from each
    numeric TensorProto (its declared dtype and shape), the list of ``bytes`` of a DT_STRING one, or
    None for a tensor that cannot be decoded (wrong element count, unknown DataType)."""
    inputs = {}
    for name, proto in request.inputs.items():
        if proto.dtype == types_pb2.DT_STRING:
            inputs[name] = list(proto.string_val)
            continue
        try:
            inputs[name] = tensor_proto_to_ndarray(proto)
        except ValueError:
            inputs[name] = None
    return inputs


def receipt(index, arrival, request, context):
    """The ReceivedRequest of a Predict call: request number ``index``, ``arrival`` (``time.time()``),
    the model spec, the decoded inputs, the call's gRPC metadata and peer."""
    spec = request.model_spec
    choice = spec.WhichOneof("version_choice")
    return ReceivedRequest(
        index=index, time=arrival, model_name=spec.name,
        version=spec.version.value if choice == "version" else None,
        version_label=spec.version_label if choice == "version_label" else "",
        signature_name=spec.signature_name, inputs=decode_inputs(request),
        metadata=dict(context.invocation_metadata()), peer=context.peer())


def _tensor_info(name, dt, shape):
    """A TensorInfo like TF Serving's: name "NAME:0", dtype, shape with -1 for dynamic dims."""
    info = meta_graph_pb2.TensorInfo(name=f"{name}:0", dtype=dt)
    info.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape)
    return info


def metadata(models, request):
    """The GetModelMetadataResponse (``signature_def`` only) of a model; Abort NOT_FOUND / INVALID_ARGUMENT."""
    model, version = resolve(models, request.model_spec)
    if not request.metadata_field:
        raise Abort(grpc.StatusCode.INVALID_ARGUMENT, "GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != "signature_def":
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
    signature = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD_NAME)
    for name, dtype, shape in model.inputs:
        signature.inputs[name].CopyFrom(_tensor_info(name, dt_of(dtype), shape))
    signature.outputs[model.output_name].CopyFrom(
        _tensor_info(model.output_name, dtype_to_dt(np.float32), (-1, model.output_size)))
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    signature_map.signature_def[model.signature_name].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model.name
    response.model_spec.version.value = version
    response.metadata["signature_def"].Pack(signature_map)
    return response


def status(models, request, loading=False):
    """The GetModelStatusResponse of a model: the asked version, or every loaded one, AVAILABLE (LOADING
    with ``loading``); Abort NOT_FOUND."""
    model, version = resolve(models, request.model_spec)
    has_version = request.model_spec.WhichOneof("version_choice") is not None
    response = get_model_status_pb2.GetModelStatusResponse()
    for v in ([version] if has_version else model.versions):
        state = response.model_version_status.add(
            version=v, state=get_model_status_pb2.ModelVersionStatus.LOADING if loading
            else get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        state.status.SetInParent()  # error_code OK, empty message
    return response
