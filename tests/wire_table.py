"""The wire-bytes table of tests/test_lean_messages.py, run in its own process for one message set.

    python tests/wire_table.py build                -> JSON: source, requests and responses (hex)
    python tests/wire_table.py parse FILE           -> JSON: source, what each response in FILE holds
    python tests/wire_table.py descriptors SET_FILE -> JSON: files whose descriptor differs from the wheels'

With tests/no_tensorflow on PYTHONPATH, ``tensorflow`` cannot be imported, as on a lean install,
and ``tfs_user.protocols.tfs.messages`` compiles our .proto files; without it the messages come
from the tensorflow-serving-api wheel. One set per process: protobuf's
descriptor pool takes one ``tensorflow/core/protobuf/meta_graph.proto``.
"""

import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TRIMMED = {"tensorflow/core/protobuf/meta_graph.proto": ("TensorInfo", "SignatureDef")}
"""Our trimmed files and the messages they keep (protos/README.md)."""
ORDER_FREE = "(map order free)"
"""Marks a response whose bytes may differ: protobuf writes map entries in no fixed order, and
``Any.Pack`` serializes the packed message that way. Its content is compared, not its bytes."""


def _requests(m, tensors, np):
    """name -> serialized request, built as the tool builds them (fill_model_spec, tensors.py)."""
    table = {}
    for dtype in tensors.NUMPY_TO_DT:  # every dtype the tool sends as tensor_content
        values = np.arange(-3, 3) if dtype.kind in "if" else np.arange(6)
        request = m.predict_pb2.PredictRequest()
        m.fill_model_spec(request.model_spec, "m", version=7, signature_name="serving_default")
        request.inputs["input"].CopyFrom(tensors.ndarray_to_tensor_proto((values % 2 if dtype.kind == "b" else values)
                                                                          .astype(dtype).reshape(2, 3)))
        request.output_filter.append("prob")
        table[f"predict {dtype.name}"] = request.SerializeToString()
    request = m.predict_pb2.PredictRequest()
    m.fill_model_spec(request.model_spec, "m", version_label="stable")
    request.inputs["image"].CopyFrom(tensors.bytes_to_tensor_proto([b"\xff\xd8\xff\xe0jpeg", b""]))
    table["predict string, version label"] = request.SerializeToString()
    request = m.predict_pb2.PredictRequest()
    m.fill_model_spec(request.model_spec, "m")
    request.inputs["a"].CopyFrom(tensors.ndarray_to_tensor_proto(np.zeros((1, 2, 2, 3), np.float32)))
    request.inputs["b"].CopyFrom(tensors.ndarray_to_tensor_proto(np.array(5, np.int64)))  # 0-d
    table["predict two inputs, no version"] = request.SerializeToString(deterministic=True)  # map order
    request = m.get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    m.fill_model_spec(request.model_spec, "m", version=3)
    table["metadata"] = request.SerializeToString()
    request = m.get_model_status_pb2.GetModelStatusRequest()
    m.fill_model_spec(request.model_spec, "m", version_label="canary")
    table["status, version label"] = request.SerializeToString()
    request = m.get_model_status_pb2.GetModelStatusRequest()
    m.fill_model_spec(request.model_spec, "m")
    table["status, every version"] = request.SerializeToString()
    return table


def _responses(m, tensors, np):
    """name -> serialized response, as the demo server answers (its handlers), plus what other servers send."""
    from tfs_user.demo import handlers
    from tfs_user.demo.model import ModelConfig

    models = {"m": ModelConfig(name="m", shape=(-1, 3), output_size=4, versions=(3, 7),
                               extra_inputs=(("mask", "uint8", (-1, 3)),))}
    request = m.predict_pb2.PredictRequest()
    m.fill_model_spec(request.model_spec, "m", version=7)
    request.inputs["input"].CopyFrom(tensors.ndarray_to_tensor_proto(np.ones((2, 3), np.float32)))
    request.inputs["mask"].CopyFrom(tensors.ndarray_to_tensor_proto(np.ones((2, 3), np.uint8)))
    table = {"predict": handlers.predict(models, request)[0].SerializeToString()}
    typed = m.predict_pb2.PredictResponse()  # some servers fill the typed *_val fields instead of tensor_content
    typed.model_spec.name = "m"
    out = typed.outputs["half"]
    out.dtype = m.types_pb2.DT_HALF
    out.tensor_shape.dim.add(size=2)
    out.half_val.extend(np.array([1.5, -2.0], np.float16).view(np.uint16).tolist())
    out = typed.outputs["scores"]
    out.dtype = m.types_pb2.DT_FLOAT
    out.tensor_shape.dim.add(size=3)
    out.float_val.append(0.25)  # one value fills the tensor
    table["predict, typed values"] = typed.SerializeToString(deterministic=True)
    request = m.get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    m.fill_model_spec(request.model_spec, "m", version=3)
    one_input = {"m": ModelConfig(name="m", shape=(-1, 3), output_size=4, versions=(3, 7))}
    table["metadata"] = handlers.metadata(one_input, request).SerializeToString()
    table[f"metadata, two inputs {ORDER_FREE}"] = handlers.metadata(models, request).SerializeToString()
    request = m.get_model_status_pb2.GetModelStatusRequest()
    m.fill_model_spec(request.model_spec, "m")
    table["status"] = handlers.status(models, request).SerializeToString()
    table["status, loading"] = handlers.status(models, request, loading=True).SerializeToString()
    failed = m.get_model_status_pb2.GetModelStatusResponse()
    state = failed.model_version_status.add(version=9, state=m.get_model_status_pb2.ModelVersionStatus.END)
    state.status.error_code = 5  # tensorflow.error.NOT_FOUND
    state.status.error_message = "Servable not found"
    table["status, ended with an error"] = failed.SerializeToString()
    return table


_RESPONSE_TYPES = {"predict": "predict_pb2.PredictResponse", "metadata": "get_model_metadata_pb2.GetModelMetadataResponse",
                   "status": "get_model_status_pb2.GetModelStatusResponse"}


def _parse(m, tensors, responses):
    """name -> what the response holds: its text form, each output as a list, the signatures unpacked."""
    from google.protobuf import text_format

    parsed = {}
    for name, data in responses.items():
        module, _, message = _RESPONSE_TYPES[name.split(",")[0]].partition(".")
        response = getattr(getattr(m, module), message).FromString(bytes.fromhex(data))
        held = {"text": text_format.MessageToString(response, as_utf8=True)}
        if name.startswith("predict"):
            held["outputs"] = {k: tensors.tensor_proto_to_ndarray(v).tolist() for k, v in sorted(response.outputs.items())}
        if name.startswith("metadata"):
            signatures = m.get_model_metadata_pb2.SignatureDefMap()
            held["unpacked"] = response.metadata["signature_def"].Unpack(signatures)
            held["signatures"] = text_format.MessageToString(signatures, as_utf8=True)
            held["dtype names"] = sorted(m.types_pb2.DataType.Name(i.dtype) for s in signatures.signature_def.values()
                                         for i in [*s.inputs.values(), *s.outputs.values()])
        if name.startswith("status"):
            held["states"] = [m.get_model_status_pb2.ModelVersionStatus.State.Name(s.state)
                              for s in response.model_version_status]
        parsed[name] = held
    return parsed


def _descriptors(set_file):
    """Names of our files whose FileDescriptorProto differs from the wheels' (JSON names aside)."""
    from google.protobuf import descriptor_pb2

    from tfs_user.protocols.tfs import messages

    assert messages.SOURCE == "tensorflow-serving-api", messages.SOURCE
    wheel = {}

    def strip(message):
        for field in message.field:
            field.ClearField("json_name")  # JSON only; the wheels' descriptors leave default ones out
        for nested in message.nested_type:
            strip(nested)

    def walk(file):
        if file.name not in wheel:
            for dependency in file.dependencies:
                walk(dependency)
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            for message in proto.message_type:
                strip(message)
            wheel[file.name] = proto

    for service in ("prediction_service_pb2", "model_service_pb2"):  # what the stubs serve, and all they import
        walk(importlib.import_module(f"tensorflow_serving.apis.{service}").DESCRIPTOR)
    ours = descriptor_pb2.FileDescriptorSet.FromString(Path(set_file).read_bytes())
    report = {"compared": [], "differ": [], "not in the wheels": []}
    for proto in ours.file:
        if proto.name.startswith("google/"):
            continue
        for message in proto.message_type:
            strip(message)
        theirs = wheel.get(proto.name)
        if theirs is None:
            report["not in the wheels"].append(proto.name)
            continue
        kept = TRIMMED.get(proto.name)
        if kept:  # only the messages we keep, and nothing else
            same = ([m.name for m in proto.message_type] == list(kept) and proto.package == theirs.package
                    and proto.options == theirs.options
                    and all(m == next(t for t in theirs.message_type if t.name == m.name) for m in proto.message_type))
        else:
            same = proto == theirs
        report["compared"].append(proto.name)
        if not same:
            report["differ"].append(proto.name)
    return report


def main(argv):
    if argv[0] == "descriptors":
        print(json.dumps(_descriptors(argv[1])))
        return
    import numpy as np

    from tfs_user.protocols.tfs import messages as m
    from tfs_user.protocols.tfs import tensors

    if argv[0] == "build":
        result = {"requests": {k: v.hex() for k, v in _requests(m, tensors, np).items()},
                  "responses": {k: v.hex() for k, v in _responses(m, tensors, np).items()}}
    else:
        result = {"parsed": _parse(m, tensors, json.loads(Path(argv[1]).read_text())["responses"])}
    result["source"] = m.SOURCE
    result["tensorflow loaded"] = "tensorflow" in sys.modules
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
