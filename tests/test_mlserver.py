"""Against a real Open Inference Protocol server no one here wrote: Seldon MLServer 1.7.1 (tests/mlserver_server.py).

The counts are MLServer's own (its Prometheus metrics count ModelInfer requests per model):
every request the tool reports (measured, warm-up, after stop) is one MLServer counted, exactly.
"""

import json

import grpc
import numpy as np
import pytest

import mlserver_server as ml
from conftest import SPARED_GROUPS
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import SERVICE, pb2
from tfs_user.protocols.kserve.outcomes import read_outputs

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One MLServer per module and test process (it takes 10-45 s to start on a busy machine; the tests count
    by differences, so they share it): conftest's leftover-process cleanup spares its process group, which
    ``MLServer`` ends by pid at the module's end, whatever happened."""
    try:
        python = ml.mlserver_python()
    except ml.BuildError as e:
        if ml.pypi_unreachable(e):
            pytest.skip(f"MLServer's virtualenv cannot be built here (PyPI unreachable): {str(e).splitlines()[-1]}")
        raise
    with ml.MLServer(tmp_path_factory.mktemp("mlserver"), python) as running:
        SPARED_GROUPS.add(running.process.pid)
        try:
            yield running
        finally:
            SPARED_GROUPS.discard(running.process.pid)


def _call(server, name, request):
    channel = grpc.insecure_channel(server.grpc_address)
    try:
        return channel.unary_unary(f"/{SERVICE}/{name}", request_serializer=type(request).SerializeToString,
                                   response_deserializer=getattr(pb2, f"{name}Response").FromString)(request, timeout=10)
    finally:
        channel.close()


def _tool(run_locust, server, *args, http=False):
    host = f"http://127.0.0.1:{server.http_port}" if http else server.grpc_address  # its v2 REST port, or gRPC
    run = run_locust("--protocol", "kserve", "--host", host, "--model-name", server.model_name,
                     "--json-summary", "summary.json", "--status-interval", "0", *args, timeout=180)
    summary = json.loads((run.folder / "summary.json").read_text()) if (run.folder / "summary.json").exists() else {}
    return run, summary


def test_a_plain_client_sees_what_the_tool_relies_on(server):
    assert _call(server, "ModelReady", pb2.ModelReadyRequest(name=server.model_name)).ready is True
    meta = _call(server, "ModelMetadata", pb2.ModelMetadataRequest(name=server.model_name))
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("input-0", "FP32", [-1, 4])]
    before = server.request_counts()
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], np.float32)
    for _ in range(5):
        request = pb2.ModelInferRequest(model_name=server.model_name)
        request.inputs.add(name="input-0", datatype="FP32", shape=x.shape)
        request.raw_input_contents.append(tensors.to_raw(x))
        outputs = read_outputs(_call(server, "ModelInfer", request))
        (scores,) = outputs.values()
        assert list(scores) == [0, 2, 1]  # iris: setosa, virginica, versicolor
    after = server.request_counts()
    assert after["success"] - before["success"] == 5 and after["failure"] == before["failure"]


@pytest.mark.parametrize("load", [
    ("-u", "2", "-r", "2", "--iterations", "20", "--warmup-iterations", "1"),
    ("-u", "4", "-r", "4", "-t", "3s", "--arrival-rate", "30", "--warmup-iterations", "0"),
], ids=["closed-loop", "open-loop"])
@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_the_tool_counts_exactly_what_mlserver_served(server, run_locust, tmp_path, load, transport):
    np.save(tmp_path / "iris.npy", np.random.default_rng(2).uniform(0, 7, (12, 4)).astype(np.float32))
    before = server.request_counts()
    run, summary = _tool(run_locust, server, "--images-numpy-path", "iris.npy", "--batch-size", "3", *load,
                         http=transport == "http")
    assert run.returncode == 0, run.output[-3000:]
    after = server.request_counts()
    reported = summary["rows"][-1]["requests"] + summary["warmup_requests"] + summary["after_stop_requests"]
    served = after["success"] - before["success"]
    assert served == reported, (served, summary)
    assert summary["rows"][-1]["failures"] == 0 and after["failure"] == before["failure"]
    assert summary["rows"][-1]["frames"] == 3 * summary["rows"][-1]["requests"]
    assert f"{'HTTP' if transport == 'http' else 'gRPC'} ModelInfer {server.model_name}" in " ".join(run.output.split())
    print(f"\n{transport}: MLServer counted {served}, the tool reported {reported} "
          f"(measured {summary['rows'][-1]['requests']}, warm-up {summary['warmup_requests']}, "
          f"after stop {summary['after_stop_requests']})")


def test_a_wrong_input_is_one_line_before_any_user_starts(server, run_locust, tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((4, 5), np.float32))
    run, _ = _tool(run_locust, server, "-u", "1", "-r", "1", "--iterations", "1", "--images-numpy-path", "wide.npy")
    assert run.returncode == 2, run.output[-3000:]
    assert "the data's frames have shape [5] but input 'input-0' expects [4] per frame" in run.output, run.output[-2000:]
    assert "Traceback" not in run.output


def test_server_metrics_give_mlservers_own_figures_beside_ours(server, run_locust, tmp_path):
    """--server-metrics against MLServer's own Prometheus page: its count over the test equals all we sent
    (measured + warm-up + after stop), its inference time is there, its queue time is not (MLServer does not
    publish one: empty, never 0), and a second URL that is down is one warning line while the run goes on."""
    np.save(tmp_path / "iris.npy", np.random.default_rng(3).uniform(0, 7, (12, 4)).astype(np.float32))
    down = "http://127.0.0.1:1/metrics"  # port 1: nothing listens there
    run, summary = _tool(run_locust, server, "--images-numpy-path", "iris.npy", "--sweep", "users:1,2",
                         "--step-time", "2s", "--server-metrics", f"{server.metrics_url},{down}")
    assert run.returncode == 0, run.output[-3000:]
    mine = summary["server"][server.metrics_url]
    reported = summary["rows"][-1]["requests"] + summary["warmup_requests"] + summary["after_stop_requests"]
    # as in test_server_window: a sweep's end stops a request per user unrecorded (2 users at most here),
    # so MLServer may count up to that many more than we sent, never fewer
    counted = mine["requests"]
    assert (mine["server"], mine["model"], mine["failures"]) == ("MLServer", server.model_name, 0)
    assert reported <= counted <= reported + 2, (counted, reported)
    assert (mine["client_requests"], mine["count_gap"], mine["warning"], mine["error"]) == \
        (reported, counted - reported, None, None)
    assert mine["inference_ms"]["mean"] > 0 and mine["request_ms"]["mean"] > 0
    assert mine["queue_ms"] == {"mean": None, "p50": None, "p99": None, "p50_bucket_ms": None, "p99_bucket_ms": None,
                                "with_failures": None}
    assert mine["network_client_ms"] == pytest.approx(summary["rows"][-1]["mean_ms"] - mine["request_ms"]["mean"])
    assert summary["server"][down]["error"] == f"server metrics {down}: connection refused"
    assert summary["server"][down]["requests"] is None
    warnings = [line for line in run.output.splitlines() if "WARNING" in line and down in line]
    assert len(warnings) == 1 and "the run goes on without these server figures" in warnings[0], warnings
    assert f"  {server.metrics_url} (MLServer, model {server.model_name}): {counted} requests, 0 failures; " \
           f"we sent {reported}" in run.output
    for step in summary["steps"]:  # each step's measured part: requests in flight at its edges, or sent while an
        figures = step["server"][server.metrics_url]  # edge was read, differ (the tool's slack; then no warning)
        assert abs(figures["requests"] - step["requests"]) <= figures["count_slack"], step
        assert figures["warning"] is None
        assert step["server_requests"] == figures["requests"] and step["server_queue_ms"] is None
        assert step["server_inference_ms"] == figures["inference_ms"]["mean"] > 0
    csv_text = (run.folder / "out_tfs_server.csv").read_text().splitlines()
    assert csv_text[0].startswith("Window,URL,Server,Model,Requests,Failures,Client requests,Count gap,Request mean ms")
    assert csv_text[1].startswith(
        f"test,{server.metrics_url},MLServer,{server.model_name},{counted},0,{reported},{counted - reported},")
    assert [line.split(",")[0] for line in csv_text[1:]] == ["test", "test", "step 1", "step 1", "step 2", "step 2"]
    print(*(f"\nstep {s['step']}: MLServer {s['server_requests']}, ours {s['requests']}" for s in summary["steps"]))
    print(f"\nMLServer's metrics: {mine['requests']} requests, request mean {mine['request_ms']['mean']:.3f} ms, "
          f"inference mean {mine['inference_ms']['mean']:.3f} ms; ours {reported}, client mean "
          f"{summary['rows'][-1]['mean_ms']:.3f} ms")


def test_server_metrics_of_mlserver_with_failures_say_so(server, run_locust, tmp_path):
    """A real MLServer failing some calls (rows with NaN: scikit-learn refuses them): its failure count equals
    ours exactly, its times say they include failed calls (it has no success-only figures), and network +
    client is left out (failures are far more than a small share), in the console, CSV and JSON."""
    data = np.random.default_rng(4).uniform(0, 7, (12, 4)).astype(np.float32)
    data[::4, 0] = np.nan  # 3 frames of 12: with batch 1 every 4th call of each user fails
    np.save(tmp_path / "iris_nan.npy", data)
    run, summary = _tool(run_locust, server, "--images-numpy-path", "iris_nan.npy", "--batch-size", "1",
                         "-u", "2", "-r", "2", "--tfs-iterations", "20", "--server-metrics", server.metrics_url)
    assert run.returncode == 1, run.output[-3000:]  # failures: Locust's exit code for a run with failed requests
    mine = summary["server"][server.metrics_url]
    row = summary["rows"][-1]
    ours_failed = row["failures"] + summary["warmup_failures"]
    ours_sent = row["requests"] + summary["warmup_requests"] + summary["after_stop_requests"]
    assert ours_failed > 0 and summary["after_stop_requests"] == 0, summary
    assert (mine["requests"], mine["failures"]) == (ours_sent - ours_failed, ours_failed), (mine, summary)
    assert mine["request_ms"]["with_failures"] is True and mine["inference_ms"]["with_failures"] is True
    assert mine["network_client_ms"] is None, mine
    text = run.output[run.output.index("Server metrics ("):]
    assert f"(MLServer, model {server.model_name}): {ours_sent - ours_failed} requests, {ours_failed} failures; " \
           f"we sent {ours_sent}" in text, text
    assert "    request (failed calls included) mean " in text and "; inference (failed calls included) mean " in text
    assert "(network + client), means: - ms" in text, text
    assert f"network + client: left out, the server's request time includes {ours_failed} of {ours_sent} failed " \
           "calls and our latency is of successful requests" in text, text
