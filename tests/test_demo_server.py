"""The demo server on loopback, called with real gRPC stubs (no mocks)."""

import os
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest

from tfs_user.demo import main as demo_main
from tfs_user.demo.server import DemoServer, ModelConfig
from tfs_user.protocols.tfs.messages import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    types_pb2,
)
from tfs_user.protocols.tfs.tensors import ndarray_to_tensor_proto, tensor_proto_to_ndarray

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ModelConfig(shape=(-1, 8, 8, 3))  # small frames keep the tests fast


def make_request(array, model="resnet", input_name="input", version=None, label=None, signature=""):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs[input_name].CopyFrom(ndarray_to_tensor_proto(array))
    return request


def frames(n, shape=(8, 8, 3), dtype=np.float32):
    return (np.arange(n * int(np.prod(shape))).reshape((n, *shape)) % 256).astype(dtype)


def make(**kwargs):
    """A DemoServer with small frames, not started (use it as a context manager)."""
    kwargs.setdefault("models", [SMALL])
    return DemoServer(**kwargs)


@pytest.fixture
def server():
    with make() as s:
        yield s


def connect(server):
    channel = grpc.insecure_channel(server.address)
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture
def stub(server):
    channel, stub = connect(server)
    yield stub
    channel.close()


def rpc_error(call, request):
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=5)
    return info.value


def test_predict_returns_softmax_and_counts(server, stub):
    before = time.time()
    response = stub.Predict(make_request(frames(4)), timeout=5)
    prob = tensor_proto_to_ndarray(response.outputs["prob"])
    assert prob.shape == (4, 1000) and prob.dtype == np.float32
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)
    assert response.model_spec.name == "resnet"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    again = tensor_proto_to_ndarray(stub.Predict(make_request(frames(4)), timeout=5).outputs["prob"])
    np.testing.assert_array_equal(prob, again)  # deterministic

    c = server.counts()
    assert (c["requests"], c["ok"], c["failed"], c["frames"]) == (2, 2, 0, 8)
    assert c["models"] == {"resnet": {"requests": 2, "ok": 2, "failed": 0, "cancelled": 0, "frames": 8}} and c["batches"] == {4: 2}
    assert before <= c["first_ok_start"] <= c["last_ok_end"] <= time.time()
    server.reset_counts()
    assert server.counts() == {"requests": 0, "ok": 0, "failed": 0, "cancelled": 0, "frames": 0,
                               "first_ok_start": None, "last_ok_end": None, "models": {}, "batches": {}}


def test_full_size_frames_and_large_batch():
    # 8 float32 224x224x3 frames are 4.8 MB: above gRPC's default 4 MB receive limit.
    with DemoServer() as server:
        channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", -1)])
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(make_request(frames(8, (224, 224, 3))), timeout=10)
        assert tensor_proto_to_ndarray(response.outputs["prob"]).shape == (8, 1000)
        channel.close()


def test_versions_and_labels():
    with make(models=[ModelConfig(shape=(-1, 8, 8, 3), versions=(1, 3))]) as server:
        channel, stub = connect(server)
        assert stub.Predict(make_request(frames(1)), timeout=5).model_spec.version.value == 3
        assert stub.Predict(make_request(frames(1), version=1), timeout=5).model_spec.version.value == 1
        assert stub.Predict(make_request(frames(1), label="stable"), timeout=5).model_spec.version.value == 3
        error = rpc_error(stub.Predict, make_request(frames(1), version=2))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == "Servable not found for request: Specific(resnet, 2)"
        assert rpc_error(stub.Predict, make_request(frames(1), label="canary")).code() == grpc.StatusCode.NOT_FOUND
        channel.close()


@pytest.mark.parametrize("request_args, code, details", [
    ({"model": "other"}, grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(other)"),
    ({"signature": "predict"}, grpc.StatusCode.INVALID_ARGUMENT, 'Serving signature key "predict" not found.'),
    ({"input_name": "data"}, grpc.StatusCode.INVALID_ARGUMENT,
     "input tensor alias not found in signature: data. Inputs expected to be in the set {input}."),
    ({"array": frames(1, dtype=np.float64)}, grpc.StatusCode.INVALID_ARGUMENT,
     "Expects arg[0] to be float but double is provided"),
    ({"array": frames(1, (8, 8))}, grpc.StatusCode.INVALID_ARGUMENT,
     "input tensor input has shape [1,8,8] but the signature expects [-1,8,8,3]"),
    ({"array": frames(1, (8, 8, 4))}, grpc.StatusCode.INVALID_ARGUMENT,
     "input tensor input has shape [1,8,8,4] but the signature expects [-1,8,8,3]"),
])
def test_predict_errors(server, stub, request_args, code, details):
    array = request_args.pop("array", frames(1))
    error = rpc_error(stub.Predict, make_request(array, **request_args))
    assert (error.code(), error.details()) == (code, details)
    assert server.counts()["failed"] == 1 and server.counts()["ok"] == 0


def test_uint8_nchw_model():
    model = ModelConfig(name="m", input_name="x", dtype="uint8", shape=(-1, 3, 4, 4), output_name="y", output_size=5)
    with make(models=[model]) as server:
        channel, stub = connect(server)
        response = stub.Predict(make_request(frames(2, (3, 4, 4), np.uint8), model="m", input_name="x"), timeout=5)
        assert tensor_proto_to_ndarray(response.outputs["y"]).shape == (2, 5)
        error = rpc_error(stub.Predict, make_request(frames(2, (3, 4, 4)), model="m", input_name="x"))
        assert error.details() == "Expects arg[0] to be uint8 but float is provided"
        channel.close()


def test_metadata_and_status(server, stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "resnet"
    response = stub.GetModelMetadata(request, timeout=5)
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    inp, out = signature.inputs["input"], signature.outputs["prob"]
    assert (inp.name, inp.dtype, [d.size for d in inp.tensor_shape.dim]) == ("input:0", types_pb2.DT_FLOAT, [-1, 8, 8, 3])
    assert (out.name, out.dtype, [d.size for d in out.tensor_shape.dim]) == ("prob:0", types_pb2.DT_FLOAT, [-1, 1000])

    request.model_spec.name = "other"
    assert rpc_error(stub.GetModelMetadata, request).code() == grpc.StatusCode.NOT_FOUND

    channel = grpc.insecure_channel(server.address)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "resnet"
    [status] = models.GetModelStatus(status_request, timeout=5).model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.HasField("status") and status.status.error_code == 0
    status_request.model_spec.name = "other"
    assert rpc_error(models.GetModelStatus, status_request).code() == grpc.StatusCode.NOT_FOUND
    channel.close()


def test_no_metadata_is_unimplemented():
    with make(metadata=False) as server:
        channel, stub = connect(server)
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = "resnet"
        assert rpc_error(stub.GetModelMetadata, request).code() == grpc.StatusCode.UNIMPLEMENTED
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "resnet"
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        assert rpc_error(models.GetModelStatus, status_request).code() == grpc.StatusCode.UNIMPLEMENTED
        assert stub.Predict(make_request(frames(1)), timeout=5).outputs["prob"]
        channel.close()


def test_delay():
    with make(delay_ms=20) as server:
        channel, stub = connect(server)
        stub.Predict(make_request(frames(1)), timeout=5)  # connect first
        for _ in range(3):
            t0 = time.perf_counter()
            stub.Predict(make_request(frames(1)), timeout=5)
            assert (time.perf_counter() - t0) * 1000 >= 20
        channel.close()


def test_concurrent_calls_overlap():
    # The thread pool serves calls in parallel: 8 calls of 100 ms take about 100 ms, not 800.
    with make(delay_ms=100, workers=8) as server:
        channel, stub = connect(server)
        request = make_request(frames(1))
        stub.Predict(request, timeout=5)
        t0 = time.perf_counter()
        calls = [stub.Predict.future(request, timeout=5) for _ in range(8)]
        assert all(call.result().outputs["prob"] for call in calls)
        assert time.perf_counter() - t0 < 0.4
        assert server.counts()["ok"] == 9
        channel.close()


def test_slow_every_exact_share():
    with make(slow_every=5, slow_delay_ms=30) as server:
        channel, stub = connect(server)
        request = make_request(frames(1))
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            stub.Predict(request, timeout=5)
            times.append((time.perf_counter() - t0) * 1000)
        slow = [i + 1 for i, t in enumerate(times) if t >= 30]
        assert slow == [5, 10, 15, 20]
        channel.close()


def test_fail_every_exact():
    with make(fail_every=4, fail_code="RESOURCE_EXHAUSTED") as server:
        channel, stub = connect(server)
        request = make_request(frames(2))
        failed = []
        for i in range(1, 13):
            try:
                stub.Predict(request, timeout=5)
            except grpc.RpcError as e:
                assert (e.code(), e.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "injected failure")
                failed.append(i)
        assert failed == [4, 8, 12]
        c = server.counts()
        assert (c["requests"], c["ok"], c["failed"], c["frames"]) == (12, 9, 3, 18)
        channel.close()


def test_bad_config_values():
    with pytest.raises(ValueError, match="'NOPE'"):
        DemoServer(fail_code="NOPE")
    with pytest.raises(ValueError, match="dtype 'str' is not supported"):
        ModelConfig(dtype="str")
    assert ModelConfig(dtype=np.uint8).dtype == "uint8"
    with pytest.raises(ValueError, match=r"\[-1, 0\]"):
        ModelConfig(shape=(-1, 0))



@pytest.mark.parametrize("kwargs, message", [
    (dict(models=[]), "models is empty; expected at least one ModelConfig"),
    (dict(models=[ModelConfig(name="a"), ModelConfig(name="a")]), "model names ['a', 'a'] are not unique"),
    (dict(fail_code="OK"), "fail_code 'OK' is not a failure"),
    (dict(metadata_code="NOPE"), "metadata_code 'NOPE' is not a failing gRPC status code name"),
    (dict(metadata_code="OK"), "metadata_code 'OK' is not a failing gRPC status code name"),
    (dict(available_after_s=-1), "available_after_s -1 is not valid; expected seconds >= 0"),
    (dict(delay_ms=-1), "delay_ms -1 is not valid; expected >= 0"),
    (dict(slow_every=-2), "slow_every -2 is not valid; expected >= 0"),
    (dict(slow_delay_ms=-3), "slow_delay_ms -3 is not valid; expected >= 0"),
    (dict(fail_every=-4), "fail_every -4 is not valid; expected >= 0"),
    (dict(workers=0), "workers 0 is not valid; expected >= 1"),
    (dict(record_limit=0), "record_limit 0 is not valid; expected >= 1"),
    (dict(metrics_port=-1), "metrics_port -1 is not valid; expected 0..65535"),
])
def test_bad_constructor_arguments_are_one_line_each(kwargs, message):
    with pytest.raises(ValueError) as info:
        DemoServer(**kwargs)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def run_cli(*args):
    return subprocess.Popen([sys.executable, "-m", "tfs_user.demo_server", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cli_serves_and_stops_on_sigterm():
    proc = run_cli("--port", "0", "--shape=-1,4,4,3", "--output-size", "10", "--versions", "1,2")
    try:
        line = proc.stdout.readline()
        assert line.startswith("demo server listening on 127.0.0.1:"), line + proc.stderr.read()
        address = line.split()[-1]
        channel = grpc.insecure_channel(address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(make_request(frames(3, (4, 4, 3))), timeout=5)
        assert response.model_spec.version.value == 2
        assert tensor_proto_to_ndarray(response.outputs["prob"]).shape == (3, 10)
        rpc_error(stub.Predict, make_request(frames(1, (4, 4, 3)), model="x"))
        channel.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out == "demo server served 2 requests (1 ok, 1 failed, 0 cancelled), 3 frames\n"


@pytest.mark.parametrize("args, message", [
    (["--shape", "a,b"], "shape 'a,b' is not valid"),
    (["--dtype", "str"], "dtype 'str' is not supported"),
    (["--fail-code", "BAD"], "fail code 'BAD'"),
    (["--port", "70000"], "port '70000'"),
    (["--output-size", "0"], "output_size 0 is not valid"),
    (["--metrics-format", "prom"], "metrics format 'prom' is not valid; expected tfs or ovms"),
    (["--metrics-port", "70000"], "metrics port '70000' is not valid; expected 0..65535"),
    (["--metrics-port", "x"], "metrics port 'x' is not valid"),
    (["--metrics-port", "-1"], "metrics port '-1' is not valid"),
    (["--rest-port", "70000"], "REST port '70000' is not valid; expected 0..65535 (0 = any free port)"),
])
def test_cli_bad_arguments(capsys, args, message):
    # In-process: a subprocess would spend seconds importing TensorFlow per case.
    with pytest.raises(SystemExit) as info:
        demo_main.main(args)
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == ""
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
