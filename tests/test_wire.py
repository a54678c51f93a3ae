"""What reaches the server: real `locust` runs against a recording DemoServer, compared with the file and options.

Every file holds distinct values (random, or the row index), so a reshape instead
of a transpose, a batch taken from the wrong rows or inputs sliced out of step
change the bytes the server receives, and the comparison fails. Also: the pause
after UNAVAILABLE, the progress lines, output validation, and each bundled config
(configs/) run against a server, with the counts the server saw.
"""

import re
import socket
import subprocess

import grpc
import numpy as np
import pytest

from conftest import ROOT, locust_command
from tfs_user.demo.cli import build_parser
from tfs_user.demo.server import DemoServer, ModelConfig
from tfs_user.protocols.tfs.messages import predict_pb2, prediction_service_pb2_grpc
from tfs_user.protocols.tfs.tensors import bytes_to_tensor_proto, ndarray_to_tensor_proto, tensor_proto_to_ndarray

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


def _run(run_locust, server, model, *args, users=1, iterations=2, warmup=0, **kwargs):
    return run_locust("--host", server.address, "-u", str(users), "-r", str(users), "--iterations", str(iterations),
                      "--warmup-iterations", str(warmup), "--model-name", model, *args, **kwargs)


def _save(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return str(path)


def _rows(n, b, k):
    """Row indices of batch k (README "Batches"): (k*b + j) mod n, j = 0..b-1."""
    return [(k * b + j) % n for j in range(b)]


# --- the recording itself (in-process, no Locust) ---

def _request(array, version=None, label=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(ndarray_to_tensor_proto(array) if isinstance(array, np.ndarray)
                                 else bytes_to_tensor_proto(array))
    return request


def test_recording_keeps_the_latest_requests_as_received():
    model = ModelConfig(name="m", input_name="x", shape=(-1, 2), output_size=2, versions=(1, 2))
    with DemoServer([model], record=True, record_limit=3, fail_every=4) as server:
        channel = grpc.insecure_channel(server.address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        specs = [dict(label="stable"), dict(version=1), {}, {}, dict(version=2)]
        for i, spec in enumerate(specs):
            try:
                stub.Predict(_request(np.full((i + 1, 2), i, np.int64 if i == 3 else np.float32), **spec),
                             timeout=5, metadata=[("x-i", str(i))])
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE
        received = server.received()
        assert [r.index for r in received] == [3, 4, 5]  # the latest record_limit
        assert [r.code for r in received] == ["OK", "UNAVAILABLE", "OK"]
        assert [(r.version, r.version_label) for r in received] == [(None, ""), (None, ""), (2, "")]
        assert [r.metadata["x-i"] for r in received] == ["2", "3", "4"]
        # exactly as decoded: request 4 sent int64 (the model wants float32) and is recorded as int64
        assert [(r.inputs["x"].dtype.name, r.inputs["x"].shape) for r in received] == \
            [("float32", (3, 2)), ("int64", (4, 2)), ("float32", (5, 2))]
        assert all(r.peer.startswith("ipv4:127.0.0.1:") and r.model_name == "m" for r in received)
        server.reset_counts()
        assert server.received() == []
        with pytest.raises(grpc.RpcError):  # DT_STRING where the model wants float: refused, still recorded
            stub.Predict(_request([b"not", b"pixels"]), timeout=5)
        [refused] = server.received()
        assert (refused.index, refused.code, refused.inputs["x"]) == (1, "INVALID_ARGUMENT", [b"not", b"pixels"])
        channel.close()


def test_without_record_nothing_is_kept_and_bad_output_batch_adds_a_row():
    model = ModelConfig(name="m", input_name="x", shape=(-1, 2), output_size=3)
    with DemoServer([model], bad_output_batch=True) as server:
        channel = grpc.insecure_channel(server.address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(_request(np.zeros((2, 2), np.float32)), timeout=5)
        assert tensor_proto_to_ndarray(response.outputs["prob"]).shape == (3, 3)
        assert server.received() == [] and server.counts()["frames"] == 2
        channel.close()
    assert build_parser().parse_args(["--bad-output-batch"]).bad_output_batch is True
    with pytest.raises(ValueError, match="record_limit 0 is not valid"):
        DemoServer(record=True, record_limit=0)


# --- (a) pixel order and dtype on the wire ---

LAYOUTS = [
    # file shape, file dtype, model input shape, server has metadata, options, axes the server must see applied
    pytest.param((4, 3, 8, 8), np.float32, (-1, 8, 8, 3), True, [], TO_NHWC, 0, id="nchw-file-auto-nhwc-model"),
    pytest.param((4, 8, 8, 3), np.uint8, (-1, 3, 8, 8), True, [], TO_NCHW, 0, id="nhwc-uint8-file-auto-nchw-float-model"),
    pytest.param((4, 3, 8, 8), np.float32, (-1, -1, -1, -1), True, ["--layout", "nchw-to-nhwc"], TO_NHWC, 0,
                 id="explicit-nchw-to-nhwc"),
    pytest.param((4, 8, 8, 3), np.float32, (-1, 3, 8, 8), False, ["--layout", "nhwc-to-nchw"], TO_NCHW, 0,
                 id="explicit-nhwc-to-nchw-without-metadata"),
    # keep: sent as stored although auto would move the axis; with the signature that stops before start
    # (tests/test_fitting_table.py), so --skip-preflight; the model refuses it, the bytes are still recorded
    pytest.param((4, 3, 8, 8), np.float32, (-1, 8, 8, 3), True, ["--layout", "keep", "--skip-preflight"], None, 1,
                 id="keep"),
]


@pytest.mark.parametrize("file_shape, file_dtype, model_shape, metadata, options, axes, returncode", LAYOUTS)
def test_pixels_reach_the_model_in_its_layout_and_dtype(file_shape, file_dtype, model_shape, metadata, options, axes,
                                                        returncode, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(name="small", shape=model_shape, output_size=10)], metadata=metadata,
                         record=True)
    rows = np.random.default_rng(3).uniform(0, 255, file_shape).astype(file_dtype)
    run = _run(run_locust, server, "small", "--images-numpy-path", _save(tmp_path, "imgs.npy", rows),
               "--batch-size", "2", *options)
    assert run.returncode == returncode, run.output
    sent = [r.inputs["input"] for r in server.received()]
    assert len(sent) == 2
    for k, batch in enumerate(sent):
        expected = rows[2 * k : 2 * k + 2].astype(np.float32)
        if axes is not None:
            expected = np.transpose(expected, axes)
        assert batch.dtype == np.float32 and batch.shape == expected.shape, (k, batch.dtype, batch.shape)
        np.testing.assert_array_equal(batch, expected, err_msg=f"batch {k}")


# --- (b, c) batching rule, warm-up, several inputs sliced in step ---

PAIR = ModelConfig(name="pair", input_name="a", shape=(-1, 3), output_size=3, extra_inputs=(("b", "int32", (-1, 1)),))


@pytest.mark.parametrize("source, warmup", [("npy", 0), ("npz", 1), ("input-options", 2)])
def test_batches_follow_the_rule_warmup_does_not_advance_inputs_in_step(source, warmup, demo_server, run_locust,
                                                                        tmp_path):
    """Batch k holds rows (k*b + j) mod n; warm-up requests send batch 0 and measured ones start at batch 0 again;
    every input of a request comes from the same rows (a[i, 0] = i, b[i] = 7 i)."""
    n, b, iterations = 10, 4, 6
    a = np.random.default_rng(5).uniform(0, 1, (n, 3)).astype(np.float32)
    a[:, 0] = np.arange(n)
    tied = (7 * np.arange(n)).astype(np.int32).reshape(n, 1)
    if source == "npy":
        server = demo_server(models=[ModelConfig(name="pair", input_name="a", shape=(-1, 3), output_size=3)], record=True)
        data, inputs = ["--images-numpy-path", _save(tmp_path, "a.npy", a)], {"a": a}
    else:
        server = demo_server(models=[PAIR], record=True)
        inputs = {"a": a, "b": tied}
        if source == "npz":
            np.savez(tmp_path / "both.npz", a=a, b=tied)
            data = ["--images-numpy-path", str(tmp_path / "both.npz")]
        else:
            data = ["--input", f"a={_save(tmp_path, 'a.npy', a)}", "--input", f"b={_save(tmp_path, 'b.npy', tied)}"]
    run = _run(run_locust, server, "pair", *data, "--batch-size", str(b), "--model-version", "1",
               "--grpc-metadata", "x-wire=yes", iterations=iterations, warmup=warmup)
    assert run.returncode == 0, run.output
    received = server.received()
    expected = [_rows(n, b, 0)] * warmup + [_rows(n, b, k) for k in range(iterations)]
    assert [r.inputs["a"][:, 0].astype(int).tolist() for r in received] == expected
    if "b" in inputs:
        assert [(r.inputs["b"][:, 0] // 7).tolist() for r in received] == expected
    for r, rows in zip(received, expected):
        assert set(r.inputs) == set(inputs)
        for name, array in inputs.items():
            np.testing.assert_array_equal(r.inputs[name], array[rows])
    assert {(r.model_name, r.version, r.version_label, r.signature_name) for r in received} == \
        {("pair", 1, "", "serving_default")}
    assert all(r.metadata.get("x-wire") == "yes" for r in received)


# --- (d) pause after UNAVAILABLE ---

def test_unavailable_pauses_the_user_internal_does_not(demo_server, small_model, run_locust):
    counts, gaps = {}, {}
    for code in ("UNAVAILABLE", "INTERNAL"):
        server = demo_server(models=[small_model], fail_every=1, fail_code=code, record=True)
        run = run_locust("--host", server.address, "-u", "1", "-r", "1", "-t", "2s", "--model-name", "small",
                         "--synthetic-shape", "8,8,3")
        assert run.returncode == 1, run.output
        received = server.received()
        assert {r.code for r in received} == {code}
        counts[code] = len(received)
        times = [r.time for r in received]
        gaps[code] = np.diff(times)
    # user.py: UNAVAILABLE_PAUSE_S = 0.1 s after each UNAVAILABLE, so at most ~20 in 2 s
    assert 3 <= counts["UNAVAILABLE"] <= 30, counts
    assert gaps["UNAVAILABLE"].min() >= 0.095, gaps["UNAVAILABLE"]
    assert counts["INTERNAL"] >= 5 * counts["UNAVAILABLE"], counts
    assert np.median(gaps["INTERNAL"]) < 0.05, counts


# --- (f) output validation ---

def test_wrong_output_batch_fails_only_when_outputs_are_validated(demo_server, small_model, run_locust):
    server = demo_server(models=[small_model], bad_output_batch=True)
    common = ("--synthetic-shape", "8,8,3", "--batch-size", "2")
    off = _run(run_locust, server, "small", *common, "--validate-outputs", "false", iterations=4)
    assert off.returncode == 0, off.output
    row = off.tfs_csv()["Predict small"]
    assert (row["Requests"], row["Failures"], row["Frames"]) == ("4", "0", "8")
    on = _run(run_locust, server, "small", *common, "--validate-outputs", "true", iterations=4)
    assert on.returncode == 1, on.output
    row = on.tfs_csv()["Predict small"]
    assert (row["Requests"], row["Failures"], row["Frames"]) == ("4", "4", "0")
    assert re.search(r"4\s+gRPC Predict small: output 'prob' has shape \[3, 10\]; expected first dimension 2 "
                     r"\(the batch size\)", on.output), on.output
    assert server.counts()["ok"] == 8  # the server answered every call; the client judged them


# --- (g) bundled configs ---

RESNET_SMALL = ModelConfig(name="resnet", input_name="input", shape=(-1, 8, 8, 3), output_size=10)


@pytest.mark.parametrize("conf, batch", [("latency.conf", 1), ("throughput.conf", 2)])
def test_bundled_config_runs_against_a_server(conf, batch, demo_server, run_locust):
    server = demo_server(models=[RESNET_SMALL])
    run = run_locust("--config", str(ROOT / "configs" / conf), "--host", server.address, "--iterations", "5",
                     "-u", "2", "-r", "2")
    assert run.returncode == 0, run.output
    assert int(run.tfs_csv()["Predict resnet"]["Requests"]) == 2 * 5
    counts = server.counts()
    assert (counts["requests"], counts["failed"], counts["frames"]) == (2 * 6, 0, 2 * 6 * batch)  # + 1 warm-up each


PROGRESS = re.compile(r"user 1: Iteration (\d+)/(\d+); Current latency: ([\d.]+)ms; Average latency: ([\d.]+)ms")


def test_demo_config_runs_its_server_and_progress_average_is_the_running_mean(run_locust):
    """(e) with --report-every 1 on a server whose every 2nd request takes 30 ms: the printed Average is the
    running mean of the printed Currents. demo.conf starts its own demo server (a child process)."""
    run = run_locust("--config", str(ROOT / "configs" / "demo.conf"), "--iterations", "8", "-u", "1", "-r", "1",
                     "--report-every", "1", "--demo-server-args=--slow-every 2 --slow-delay-ms 30",
                     headless=False, csv_prefix=None)
    assert run.returncode == 0, run.output
    assert "[tfs] demo server served 9 requests (9 ok, 0 failed, 0 cancelled), 9 frames" in run.output, run.output  # + 1 warm-up
    lines = [tuple(map(float, m)) for m in PROGRESS.findall(run.output)]
    assert [(i, total) for i, total, _, _ in lines] == [(i, 8) for i in range(1, 9)], run.output
    currents = [c for _, _, c, _ in lines]
    # server requests 2, 4, ... are slow; request 1 was the warm-up
    assert min(currents[0::2]) >= 30 and max(currents) - min(currents) > 10, currents
    for i, (_, _, _, average) in enumerate(lines, 1):
        # both printed with 2 decimals: the mean of rounded values is within 0.005 of the true mean
        assert average == pytest.approx(sum(currents[:i]) / i, abs=0.011), (i, currents, average)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_master_and_worker_configs_run_as_a_pair(demo_server, run_locust, tmp_path):
    server = demo_server(models=[RESNET_SMALL])
    port = str(_free_port())
    worker = subprocess.Popen(locust_command("--config", str(ROOT / "configs" / "worker.conf"), "--master-port", port),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run = run_locust("--config", str(ROOT / "configs" / "master.conf"), "--master-bind-host", "127.0.0.1",
                         "--master-bind-port", port, "--expect-workers", "1", "--host", server.address,
                         "--iterations", "5", "-u", "2", "-r", "2", timeout=90)
        worker_output, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert run.returncode == 0, run.output
    assert worker.returncode == 0, worker_output
    assert int(run.tfs_csv()["Predict resnet"]["Requests"]) == 2 * 5
    counts = server.counts()
    assert (counts["requests"], counts["failed"], counts["frames"]) == (2 * 6, 0, 2 * 6 * 2)
