"""The demo server's Open Inference Protocol, in-process: readiness, metadata, ModelInfer and its refusals.

A plain gRPC client with our messages against DemoServer on port 0 (no Locust): the same
server answers Predict on the same port, and both count alike.
"""

import io
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from tfs_user.demo.model import model_function
from tfs_user.demo.server import ModelConfig
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import SERVICE, pb2
from tfs_user.protocols.kserve.outcomes import read_outputs
from tfs_user.protocols.tfs.messages import predict_pb2, prediction_service_pb2_grpc
from tfs_user.protocols.tfs.tensors import ndarray_to_tensor_proto

MODEL = ModelConfig(name="m", input_name="x", shape=(-1, 4), output_size=3, versions=(1, 2))
TWO = ModelConfig(name="two", input_name="a", shape=(-1, 2), output_size=2, extra_inputs=(("b", "int64", (-1,)),))
"""Two inputs: FP32 ``a [-1, 2]`` (scored) and INT64 ``b [-1]``."""


def _call(server, name, request, metadata=()):
    channel = grpc.insecure_channel(server.address)
    try:
        method = channel.unary_unary(f"/{SERVICE}/{name}", request_serializer=type(request).SerializeToString,
                                     response_deserializer=getattr(pb2, f"{name}Response").FromString)
        return method(request, timeout=5, metadata=metadata)
    finally:
        channel.close()


def _infer(array, name="x", datatype=None, raw=True, model_name="m", **fields):
    request = pb2.ModelInferRequest(model_name=model_name, **fields)
    return _add(request, name, array, datatype, raw)


def _add(request, name, array, datatype=None, raw=True):
    """``request`` with input ``name`` holding ``array`` (raw contents, or typed in its datatype's field)."""
    datatype = datatype or tensors.datatype_of(array.dtype)
    tensor = request.inputs.add(name=name, datatype=datatype, shape=array.shape)
    if raw:
        request.raw_input_contents.append(tensors.to_raw(array))
    else:
        field = {"FP32": "fp32_contents", "INT64": "int64_contents"}[datatype]
        getattr(tensor.contents, field).extend(array.ravel().tolist())
    return request


def _two(a_rows=2, b_rows=2, raw=True, b=True):
    request = _add(pb2.ModelInferRequest(model_name="two"), "a", np.arange(a_rows * 2, dtype=np.float32).reshape(a_rows, 2), raw=raw)
    return _add(request, "b", np.arange(b_rows, dtype=np.int64), raw=raw) if b else request


def _code(server, name, request):
    with pytest.raises(grpc.RpcError) as info:
        _call(server, name, request)
    return info.value.code(), info.value.details()


def test_readiness_follows_loading_and_metadata_lists_inputs_and_output(demo_server):
    server = demo_server(models=[MODEL], available_after_s=1.0)
    assert _call(server, "ServerLive", pb2.ServerLiveRequest()).live is True
    assert _call(server, "ServerReady", pb2.ServerReadyRequest()).ready is False
    assert _call(server, "ModelReady", pb2.ModelReadyRequest(name="m")).ready is False
    assert _code(server, "ModelMetadata", pb2.ModelMetadataRequest(name="m"))[0] == grpc.StatusCode.NOT_FOUND
    assert _code(server, "ModelInfer", _infer(np.ones((1, 4), np.float32)))[0] == grpc.StatusCode.NOT_FOUND
    time.sleep(max(0.0, server.available_at - time.time()) + 0.05)
    assert _call(server, "ServerReady", pb2.ServerReadyRequest()).ready is True
    assert _call(server, "ModelReady", pb2.ModelReadyRequest(name="m", version="2")).ready is True
    assert _code(server, "ModelReady", pb2.ModelReadyRequest(name="m", version="3"))[0] == grpc.StatusCode.NOT_FOUND
    assert _code(server, "ModelReady", pb2.ModelReadyRequest(name="other")) == \
        (grpc.StatusCode.NOT_FOUND, "Request for unknown model: 'other' is not found")
    meta = _call(server, "ModelMetadata", pb2.ModelMetadataRequest(name="m"))
    assert (meta.name, list(meta.versions)) == ("m", ["1", "2"])
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("x", "FP32", [-1, 4])]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [("prob", "FP32", [-1, 3])]
    assert len(server.status_times) == 4 and len(server.metadata_times) == 2
    assert _code(server, "ModelMetadata", pb2.ModelMetadataRequest(name="m", version="3"))[0] == grpc.StatusCode.NOT_FOUND
    assert _call(server, "ModelMetadata", pb2.ModelMetadataRequest(name="m", version="1")).name == "m"
    assert _call(server, "ServerMetadata", pb2.ServerMetadataRequest()).name == "tfs-locust-demo"


def test_metadata_names_bytes_and_every_input(demo_server):
    model = ModelConfig(name="img", input_name="image_bytes", dtype="string", shape=(-1,), output_size=5, versions=(3,),
                        extra_inputs=(("k", "uint8", (-1, 2)),))
    meta = _call(demo_server(models=[model]), "ModelMetadata", pb2.ModelMetadataRequest(name="img"))
    assert (list(meta.versions), meta.platform) == (["3"], "tfs-locust-demo")
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("image_bytes", "BYTES", [-1]), ("k", "UINT8", [-1, 2])]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [("prob", "FP32", [-1, 5])]


def test_without_metadata_model_calls_are_unimplemented_and_injected_failures_apply(demo_server):
    bare = demo_server(models=[MODEL], metadata=False)
    for name, request in (("ServerLive", pb2.ServerLiveRequest()), ("ServerReady", pb2.ServerReadyRequest()),
                          ("ModelReady", pb2.ModelReadyRequest(name="m")), ("ModelMetadata", pb2.ModelMetadataRequest(name="m"))):
        assert _code(bare, name, request)[0] == grpc.StatusCode.UNIMPLEMENTED, name
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


def _typed_short():
    request = _infer(np.ones((1, 4), np.float32), raw=False)
    del request.inputs[0].contents.fp32_contents[-1]
    return request


def _twice():
    request = _infer(np.ones((1, 4), np.float32))
    return _add(request, "x", np.ones((1, 4), np.float32))


def _dynamic():
    request = _infer(np.ones((1, 4), np.float32))
    request.inputs[0].shape[0] = -1
    return request


def _one_raw_for_two():
    request = _two()
    del request.raw_input_contents[1]
    return request


REFUSALS = [
    ("unknown model", lambda: pb2.ModelInferRequest(model_name="nope"), grpc.StatusCode.NOT_FOUND, "unknown model: 'nope' is not found"),
    ("unknown version", lambda: _infer(np.ones((1, 4), np.float32), model_version="9"), grpc.StatusCode.NOT_FOUND,
     "'m' version 9 is not found"),
    ("version not a number", lambda: _infer(np.ones((1, 4), np.float32), model_version="v1"), grpc.StatusCode.NOT_FOUND,
     "'m' version v1 is not found"),
    ("version in other digits", lambda: _infer(np.ones((1, 4), np.float32), model_version="\u00b2"),
     grpc.StatusCode.NOT_FOUND, "'m' version \u00b2 is not found"),  # str.isdigit() but not int()
    ("unknown input", lambda: _infer(np.ones((1, 4), np.float32), name="y"), grpc.StatusCode.INVALID_ARGUMENT,
     "unexpected inference input 'y'"),
    ("no input", lambda: pb2.ModelInferRequest(model_name="m"), grpc.StatusCode.INVALID_ARGUMENT, "expected 1 inputs (x) but got 0"),
    ("missing input", lambda: _two(b=False), grpc.StatusCode.INVALID_ARGUMENT,
     "expected 2 inputs (a, b) but got 1 inputs for model 'two'"),
    ("input twice", _twice, grpc.StatusCode.INVALID_ARGUMENT, "expected 1 inputs (x) but got 2 inputs"),
    ("datatype", lambda: _infer(np.ones((1, 4), np.int64)), grpc.StatusCode.INVALID_ARGUMENT,
     "input 'x' data-type is 'INT64', but model 'm' expects 'FP32'"),
    ("datatype of a second input", lambda: _add(_two(b=False), "b", np.ones(2, np.float32)), grpc.StatusCode.INVALID_ARGUMENT,
     "input 'b' data-type is 'FP32', but model 'two' expects 'INT64'"),
    ("shape", lambda: _infer(np.ones((1, 5), np.float32)), grpc.StatusCode.INVALID_ARGUMENT,
     "unexpected shape for input 'x' for model 'm'. Expected [-1,4], got [1,5]"),
    ("negative size", _dynamic, grpc.StatusCode.INVALID_ARGUMENT,
     "input 'x' has shape [-1,4]; expected sizes >= 0"),
    ("rank", lambda: _infer(np.ones(4, np.float32)), grpc.StatusCode.INVALID_ARGUMENT, "Expected [-1,4], got [4]"),
    ("raw count", _two_raw, grpc.StatusCode.INVALID_ARGUMENT, "expected 1 raw_input_contents (one per input) but got 2"),
    ("raw count short", _one_raw_for_two, grpc.StatusCode.INVALID_ARGUMENT,
     "expected 2 raw_input_contents (one per input) but got 1"),
    ("raw and typed", _raw_and_typed, grpc.StatusCode.INVALID_ARGUMENT, "has contents and raw_input_contents"),
    ("element count", _short, grpc.StatusCode.INVALID_ARGUMENT, "FP32 contents of 28 bytes; expected 32 for shape [2, 4]"),
    ("typed element count", _typed_short, grpc.StatusCode.INVALID_ARGUMENT,
     "input 'x': FP32 contents hold 3 elements; expected 4 for shape [1, 4]"),
    ("batch sizes", lambda: _two(a_rows=2, b_rows=3), grpc.StatusCode.INVALID_ARGUMENT, "inputs have different batch sizes [2, 3]"),
    ("requested output", lambda: _infer(np.ones((1, 4), np.float32), outputs=[pb2.ModelInferRequest.InferRequestedOutputTensor(name="logits")]),
     grpc.StatusCode.INVALID_ARGUMENT, "unexpected inference output 'logits' for model 'm'"),
]


@pytest.mark.parametrize("request_of, code, words", [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_model_infer_refuses_what_does_not_fit_the_model(demo_server, request_of, code, words):
    server = demo_server(models=[MODEL, TWO], record=True)
    got, details = _code(server, "ModelInfer", request_of())
    assert got == code and words in details, details
    assert server.counts()["failed"] == 1
    assert [r.code for r in server.received()] == [code.name]


def test_two_inputs_score_the_first_and_are_recorded_as_sent(demo_server):
    server = demo_server(models=[TWO], record=True)
    for raw in (True, False):
        response = _call(server, "ModelInfer", _two(a_rows=3, b_rows=3, raw=raw))
        a = np.arange(6, dtype=np.float32).reshape(3, 2)
        np.testing.assert_array_equal(read_outputs(response)["prob"], model_function(a, 2))
    for received in server.received():
        assert (received.version, received.version_label, received.signature_name) == (None, "", "")
        assert received.inputs["b"].dtype == np.int64 and received.inputs["b"].tolist() == [0, 1, 2]
        np.testing.assert_array_equal(received.inputs["a"], a)
    assert server.counts()["frames"] == 6


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
    server = demo_server(models=[ModelConfig(name="m", input_name="image_bytes", dtype="string", shape=(-1,), output_size=3)],
                         record=True)
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
    code, details = _code(server, "ModelInfer", bad)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("cannot decode image 0: "), details
    assert [r.inputs["image_bytes"] for r in server.received()] == [[png.getvalue()] * 2, [b"not an image"]]
    assert [r.code for r in server.received()] == ["OK", "INVALID_ARGUMENT"]


def test_cli_answers_model_infer_in_typed_contents():
    proc = subprocess.Popen([sys.executable, "-m", "tfs_user.demo_server", "--port", "0", "--model-name", "m",
                             "--input-name", "x", "--shape=-1,4", "--output-size", "3", "--kserve-typed-outputs"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("demo server listening on "), line + proc.stderr.read()
        channel = grpc.insecure_channel(line.split()[-1])
        method = channel.unary_unary(f"/{SERVICE}/ModelInfer", request_serializer=pb2.ModelInferRequest.SerializeToString,
                                     response_deserializer=pb2.ModelInferResponse.FromString)
        x = np.arange(8, dtype=np.float32).reshape(2, 4)
        response = method(_infer(x), timeout=5)
        channel.close()
        assert not response.raw_output_contents and len(response.outputs[0].contents.fp32_contents) == 6
        np.testing.assert_array_equal(read_outputs(response)["prob"], model_function(x, 3))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.endswith("demo server served 1 requests (1 ok, 0 failed, 0 cancelled), 2 frames\n")


def test_help_says_both_protocols_on_one_port():
    from tfs_user.demo.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "TF Serving's API and the Open Inference Protocol (KServe v2) on one port" in text
    assert "--kserve-typed-outputs" in text
