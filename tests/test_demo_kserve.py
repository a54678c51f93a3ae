"""The demo server's Open Inference Protocol, in-process: readiness, metadata, ModelInfer and its refusals.

A plain gRPC client with our messages against DemoServer on port 0 (no Locust): the same
server answers Predict on the same port, and both count alike.
"""

import io
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from tfs_user.demo.model import model_function
from tfs_user.demo.server import ModelConfig
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import SERVICE, pb2
from tfs_user.protocols.kserve.outcomes import read_outputs
from tfs_user.protocols.tfs.messages import predict_pb2, prediction_service_pb2_grpc
from tfs_user.protocols.tfs.tensors import ndarray_to_tensor_proto

MODEL = ModelConfig(name="m", input_name="x", shape=(-1, 4), output_size=3, versions=(1, 2))


def _call(server, name, request, metadata=()):
    channel = grpc.insecure_channel(server.address)
    try:
        method = channel.unary_unary(f"/{SERVICE}/{name}", request_serializer=type(request).SerializeToString,
                                     response_deserializer=getattr(pb2, f"{name}Response").FromString)
        return method(request, timeout=5, metadata=metadata)
    finally:
        channel.close()


def _infer(array, name="x", datatype=None, raw=True, **fields):
    request = pb2.ModelInferRequest(model_name="m", **fields)
    datatype = datatype or tensors.datatype_of(array.dtype)
    tensor = request.inputs.add(name=name, datatype=datatype, shape=array.shape)
    if raw:
        request.raw_input_contents.append(tensors.to_raw(array))
    else:
        tensor.contents.fp32_contents.extend(array.ravel().tolist())
    return request


def _code(server, name, request):
    with pytest.raises(grpc.RpcError) as info:
        _call(server, name, request)
    return info.value.code(), info.value.details()


def test_readiness_follows_loading_and_metadata_lists_inputs_and_output(demo_server):
    server = demo_server(models=[MODEL], available_after_s=1.0)
    assert _call(server, "ServerLive", pb2.ServerLiveRequest()).live is True
    assert _call(server, "ServerReady", pb2.ServerReadyRequest()).ready is False
    assert _call(server, "ModelReady", pb2.ModelReadyRequest(name="m")).ready is False
    time.sleep(max(0.0, server.available_at - time.time()) + 0.05)
    assert _call(server, "ServerReady", pb2.ServerReadyRequest()).ready is True
    assert _call(server, "ModelReady", pb2.ModelReadyRequest(name="m", version="2")).ready is True
    assert _code(server, "ModelReady", pb2.ModelReadyRequest(name="m", version="3"))[0] == grpc.StatusCode.NOT_FOUND
    assert _code(server, "ModelReady", pb2.ModelReadyRequest(name="other"))[0] == grpc.StatusCode.NOT_FOUND
    meta = _call(server, "ModelMetadata", pb2.ModelMetadataRequest(name="m"))
    assert (meta.name, list(meta.versions)) == ("m", ["1", "2"])
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("x", "FP32", [-1, 4])]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [("prob", "FP32", [-1, 3])]
    assert len(server.status_times) == 4 and len(server.metadata_times) == 1


def test_without_metadata_model_calls_are_unimplemented_and_injected_failures_apply(demo_server):
    bare = demo_server(models=[MODEL], metadata=False)
    for name, request in (("ModelReady", pb2.ModelReadyRequest(name="m")), ("ModelMetadata", pb2.ModelMetadataRequest(name="m"))):
        assert _code(bare, name, request)[0] == grpc.StatusCode.UNIMPLEMENTED
    assert _call(bare, "ModelInfer", _infer(np.ones((1, 4), np.float32))).outputs[0].shape == [1, 3]
    failing = demo_server(models=[MODEL], metadata_code="INTERNAL")
    assert _code(failing, "ModelMetadata", pb2.ModelMetadataRequest(name="m")) == \
        (grpc.StatusCode.INTERNAL, "injected metadata failure")


@pytest.mark.parametrize("raw", [True, False], ids=["raw-inputs", "typed-inputs"])
@pytest.mark.parametrize("typed_outputs", [False, True], ids=["raw-outputs", "typed-outputs"])
def test_model_infer_scores_are_the_models_whatever_the_contents(demo_server, raw, typed_outputs):
    server = demo_server(models=[MODEL], kserve_typed_outputs=typed_outputs, record=True)
    x = np.random.default_rng(3).uniform(0, 9, (5, 4)).astype(np.float32)
    response = _call(server, "ModelInfer", _infer(x, raw=raw, model_version="1", id="r-7"), metadata=[("x-k", "v")])
    assert (response.model_name, response.model_version, response.id) == ("m", "1", "r-7")
    assert bool(response.raw_output_contents) is not typed_outputs
    np.testing.assert_array_equal(read_outputs(response)["prob"], model_function(x, 3))
    (received,) = server.received()
    np.testing.assert_array_equal(received.inputs["x"], x)
    assert (received.version, received.metadata["x-k"], received.code) == (1, "v", "OK")
    assert received.peer.startswith("ipv4:127.0.0.1:")


def _two_raw():
    request = _infer(np.ones((1, 4), np.float32))
    request.raw_input_contents.append(b"\x00" * 16)
    return request


def _raw_and_typed():
    request = _infer(np.ones((1, 4), np.float32))
    request.inputs[0].contents.fp32_contents.extend([1.0] * 4)
    return request


def _short():
    request = _infer(np.ones((2, 4), np.float32))
    request.raw_input_contents[0] = request.raw_input_contents[0][:-4]
    return request


REFUSALS = [
    ("unknown model", lambda: pb2.ModelInferRequest(model_name="nope"), grpc.StatusCode.NOT_FOUND, "unknown model: 'nope'"),
    ("unknown version", lambda: _infer(np.ones((1, 4), np.float32), model_version="9"), grpc.StatusCode.NOT_FOUND,
     "'m' version 9 is not found"),
    ("unknown input", lambda: _infer(np.ones((1, 4), np.float32), name="y"), grpc.StatusCode.INVALID_ARGUMENT,
     "unexpected inference input 'y'"),
    ("no input", lambda: pb2.ModelInferRequest(model_name="m"), grpc.StatusCode.INVALID_ARGUMENT, "expected 1 inputs (x) but got 0"),
    ("datatype", lambda: _infer(np.ones((1, 4), np.int64)), grpc.StatusCode.INVALID_ARGUMENT,
     "input 'x' data-type is 'INT64', but model 'm' expects 'FP32'"),
    ("shape", lambda: _infer(np.ones((1, 5), np.float32)), grpc.StatusCode.INVALID_ARGUMENT,
     "unexpected shape for input 'x' for model 'm'. Expected [-1,4], got [1,5]"),
    ("raw count", _two_raw, grpc.StatusCode.INVALID_ARGUMENT, "expected 1 raw_input_contents (one per input) but got 2"),
    ("raw and typed", _raw_and_typed, grpc.StatusCode.INVALID_ARGUMENT, "has contents and raw_input_contents"),
    ("element count", _short, grpc.StatusCode.INVALID_ARGUMENT, "FP32 contents of 28 bytes; expected 32 for shape [2, 4]"),
    ("requested output", lambda: _infer(np.ones((1, 4), np.float32), outputs=[pb2.ModelInferRequest.InferRequestedOutputTensor(name="logits")]),
     grpc.StatusCode.INVALID_ARGUMENT, "unexpected inference output 'logits' for model 'm'"),
]


@pytest.mark.parametrize("request_of, code, words", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_model_infer_refuses_what_does_not_fit_the_model(demo_server, request_of, code, words):
    server = demo_server(models=[MODEL])
    got, details = _code(server, "ModelInfer", request_of())
    assert got == code and words in details, details
    assert server.counts()["failed"] == 1


def test_both_protocols_share_counts_failures_and_delays(demo_server):
    server = demo_server(models=[MODEL], fail_every=3, record=True)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.address))
    predict = predict_pb2.PredictRequest()
    predict.model_spec.name = "m"
    predict.inputs["x"].CopyFrom(ndarray_to_tensor_proto(np.ones((2, 4), np.float32)))
    stub.Predict(predict, timeout=5)
    _call(server, "ModelInfer", _infer(np.ones((3, 4), np.float32)))
    assert _code(server, "ModelInfer", _infer(np.ones((1, 4), np.float32)))[0] == grpc.StatusCode.UNAVAILABLE
    assert {k: server.counts()[k] for k in ("requests", "ok", "failed", "frames")} == \
        {"requests": 3, "ok": 2, "failed": 1, "frames": 5}
    assert [r.code for r in server.received()] == ["OK", "OK", "UNAVAILABLE"]
    assert len(server.service_times_ms()) == 2


def test_bytes_input_takes_encoded_images(demo_server):
    server = demo_server(models=[ModelConfig(name="m", input_name="image_bytes", dtype="string", shape=(-1,), output_size=3)])
    png = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), 90, np.uint8)).save(png, format="PNG")
    request = pb2.ModelInferRequest(model_name="m")
    request.inputs.add(name="image_bytes", datatype="BYTES", shape=[2])
    request.raw_input_contents.append(tensors.to_raw([png.getvalue()] * 2))
    scores = read_outputs(_call(server, "ModelInfer", request))["prob"]
    np.testing.assert_array_equal(scores, model_function(np.full((2, 4, 4, 3), 90, np.float32), 3))
    bad = pb2.ModelInferRequest(model_name="m")
    bad.inputs.add(name="image_bytes", datatype="BYTES", shape=[1])
    bad.raw_input_contents.append(tensors.to_raw([b"not an image"]))
    assert _code(server, "ModelInfer", bad)[0] == grpc.StatusCode.INVALID_ARGUMENT
