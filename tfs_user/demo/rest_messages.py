"""The demo server's REST APIs as its gRPC messages: JSON (and binary tensors) in, protobuf requests out, and back.

Each REST inference call becomes the gRPC request it stands for (``PredictRequest``, ``ModelInferRequest``), so
it goes through the same ``DemoServer.serve_inference`` (counts, delays, failures, recording, metrics) and the
same validation as over gRPC; the answer goes back as TF Serving's or the Open Inference Protocol's JSON.
Bad JSON raises ``Abort(INVALID_ARGUMENT)``.
"""

import base64
import json

import grpc
import numpy as np
from google.protobuf import json_format

from tfs_user.demo.inference import Abort
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import pb2
from tfs_user.protocols.kserve.outcomes import read_outputs
from tfs_user.protocols.tfs.messages import predict_pb2
from tfs_user.protocols.tfs.tensors import bytes_to_tensor_proto, ndarray_to_tensor_proto, tensor_proto_to_ndarray

HEADER_LENGTH = "inference-header-content-length"


def bad(message):
    return Abort(grpc.StatusCode.INVALID_ARGUMENT, message)


def to_dict(message):
    """A protobuf message as TF Serving's / the protocol's REST JSON (field names as in the .proto)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _tfs_value(value, dtype):
    if dtype == "string":
        items = np.array(value if isinstance(value, list) else [value], dtype=object)  # nested as sent: [b], [b,1]
        try:
            return bytes_to_tensor_proto([base64.b64decode(v["b64"]) if isinstance(v, dict) else str(v).encode()
                                          for v in items.ravel()], items.shape)
        except (KeyError, TypeError, ValueError) as e:
            raise bad(f"cannot read a DT_STRING value: {e}") from None
    try:
        return ndarray_to_tensor_proto(np.asarray(value, dtype=dtype))
    except (TypeError, ValueError) as e:
        raise bad(f"cannot read the values as {dtype}: {e}") from None


def predict_request(model, name, version, label, body):
    """A ``PredictRequest`` from a ``:predict`` JSON body (row ``instances`` or columnar ``inputs``) for ``model``
    (its ModelConfig, or None when not served: the request then names the model and fails as over gRPC)."""
    try:
        data = json.loads(body)
    except ValueError as e:
        raise bad(f"JSON Parse error: {e}") from None
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version:
        request.model_spec.version.value = version
    elif label:
        request.model_spec.version_label = label
    request.model_spec.signature_name = data.get("signature_name", "")
    dtypes = {n: d for n, d, _ in model.inputs} if model else {}
    names = [n for n, _, _ in model.inputs] if model else ["input"]
    if "instances" in data:
        rows = data["instances"]
        if rows and isinstance(rows[0], dict) and "b64" not in rows[0]:
            columns = {key: [row[key] for row in rows] for key in rows[0]}
        else:
            columns = {names[0]: rows}
    elif "inputs" in data:
        columns = data["inputs"] if isinstance(data["inputs"], dict) else {names[0]: data["inputs"]}
    else:
        raise bad("Missing 'inputs' or 'instances' key")
    for key, value in columns.items():
        request.inputs[key].CopyFrom(_tfs_value(value, dtypes.get(key, "float32")))
    return request


def predict_answer(response):
    """``{"predictions": ...}`` (one row per frame; rows of ``{output: value}`` with several outputs) as bytes."""
    outputs = {k: tensor_proto_to_ndarray(v) for k, v in response.outputs.items()}
    if len(outputs) == 1:
        rows = next(iter(outputs.values())).tolist()
    else:
        rows = [dict(zip(outputs, row)) for row in zip(*(v.tolist() for v in outputs.values()))]
    return json.dumps({"predictions": rows}).encode()


def infer_request(name, version, body, header_length):
    """A ``ModelInferRequest`` from an ``/infer`` body (JSON, or JSON header + binary tensors) and
    ``(request, binary outputs wanted: set of names or True for all)``."""
    header_bytes = body[:header_length] if header_length is not None else body
    try:
        data = json.loads(header_bytes)
    except ValueError as e:
        raise bad(f"failed to parse the request JSON: {e}") from None
    request = pb2.ModelInferRequest(model_name=name, model_version=version)
    at = header_length or 0
    raws = []
    for entry in data.get("inputs") or ():
        datatype, shape = entry.get("datatype", ""), [int(d) for d in entry.get("shape") or ()]
        request.inputs.add(name=entry.get("name", ""), datatype=datatype, shape=shape)
        size = (entry.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            raws.append(body[at:at + size])
            at += size
        elif datatype == "BYTES":
            raws.append(tensors.to_raw([str(v).encode() for v in np.ravel(entry.get("data", []))]))
        else:
            try:
                raws.append(tensors.to_raw(np.asarray(entry.get("data", []), tensors.numpy_dtype(datatype)), datatype))
            except (KeyError, TypeError, ValueError) as e:
                raise bad(f"input {entry.get('name')!r}: cannot read its data as {datatype}: {e}") from None
    request.raw_input_contents.extend(raws)
    everything = bool((data.get("parameters") or {}).get("binary_data_output"))
    wanted = set()
    for entry in data.get("outputs") or ():
        request.outputs.add(name=entry.get("name", ""))
        if (entry.get("parameters") or {}).get("binary_data"):
            wanted.add(entry.get("name"))
    return request, (True if everything else wanted)


def infer_answer(response, binary):
    """The infer answer as ``(bytes, header length or None)``: outputs named in ``binary`` (or all, True) as binary data."""
    outputs = read_outputs(response)
    entries, raws = [], []
    for tensor in response.outputs:
        entry = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        value = outputs[tensor.name]
        if binary is True or tensor.name in binary:
            raws.append(tensors.to_raw(value, tensor.datatype))
            entry["parameters"] = {"binary_data_size": len(raws[-1])}
        else:
            entry["data"] = [v.decode() for v in value] if tensor.datatype == "BYTES" else np.ravel(value).tolist()
        entries.append(entry)
    header = json.dumps({"model_name": response.model_name, "model_version": response.model_version,
                         "outputs": entries}).encode()
    return (header + b"".join(raws), len(header)) if raws else (header, None)


def triton_config(models, name):
    """Triton's model configuration of a served model (``max_batch_size`` 0: shapes carry the batch dimension),
    the part perf_analyzer reads; Abort NOT_FOUND for another name."""
    model = models.get(name)
    if model is None:
        raise Abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}' is not found")
    def kind(dtype):
        return "TYPE_STRING" if dtype == "string" else "TYPE_" + tensors.datatype_of(dtype)
    inputs = [{"name": n, "data_type": kind(d), "dims": list(shape)} for n, d, shape in model.inputs]
    return {"name": name, "platform": "tfs-locust-demo", "max_batch_size": 0, "input": inputs,
            "output": [{"name": model.output_name, "data_type": "TYPE_FP32", "dims": [-1, model.output_size]}]}
