"""Against KServe's own Python model server (PyPI ``kserve`` 0.21.0, tests/kserve_server.py) over gRPC v2, and
over its REST port: TF Serving's REST format (its "v1 protocol", ``/v1/models/NAME:predict``) and the Open
Inference Protocol's (``/v2/models/NAME/infer``) as JSON and as binary tensors (it speaks the extension
without listing it in ``GET /v2``: ``--binary-data on``).

The counts are KServe's own: its ``request_predict_seconds`` histogram observes every call that reached the
model (failed ones too), ``request_postprocess_seconds`` those the model answered. Every request the tool
reports (measured, warm-up, after stop) is one KServe counted, exactly.
"""

import json
from pathlib import Path

import numpy as np
import pytest

import kserve_server as ks
from conftest import SPARED_GROUPS


def _python():
    try:
        return ks.kserve_python()
    except ks.BuildError as e:
        if ks.pypi_unreachable(e):
            pytest.skip(f"KServe's virtualenv cannot be built here (PyPI unreachable): {str(e).splitlines()[-1]}")
        raise


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Factory: ``servers(fail_every=0)`` -> a KServeServer, one per setting per module and test process;
    conftest's leftover-process cleanup spares their process groups, which ``KServeServer`` ends by pid at the
    module's end, whatever happened."""
    started, stack = {}, []

    def get(fail_every=0):
        if fail_every not in started:
            server = ks.KServeServer(tmp_path_factory.mktemp("kserve"), _python(), fail_every=fail_every)
            stack.append(server)
            started[fail_every] = server.__enter__()
            SPARED_GROUPS.add(server.process.pid)
        return started[fail_every]

    yield get
    for server in reversed(stack):
        SPARED_GROUPS.discard(server.process.pid)
        server.__exit__(None, None, None)


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}  # /proc/net/tcp[6]: 127.0.0.1, ::ffff:127.0.0.1


def _listening_on(port):
    """Local addresses (hex, as /proc/net/tcp and tcp6 write them) of the sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def _run(run_locust, server, tmp_path, *args):
    np.save(tmp_path / "rows.npy", np.random.default_rng(4).uniform(-2, 2, (12, 4)).astype(np.float32))
    run = run_locust("--protocol", "kserve", "--host", server.grpc_address, "--model-name", server.model_name,
                     "--images-numpy-path", "rows.npy", "--batch-size", "2", "-u", "2", "-r", "2",
                     "--json-summary", "summary.json", "--status-interval", "0", *args, timeout=180)
    summary = json.loads((run.folder / "summary.json").read_text()) if (run.folder / "summary.json").exists() else {}
    return run, summary


def _sent(summary):
    return summary["rows"][-1]["requests"] + summary["warmup_requests"] + summary["after_stop_requests"]


def test_the_tool_counts_exactly_what_kserve_served(servers, run_locust, tmp_path):
    server = servers()
    for port in (server.grpc_port, server.http_port):  # KServe itself binds 0.0.0.0 and [::]
        assert _listening_on(port) and _listening_on(port) <= LOOPBACK, (port, _listening_on(port))
    before = server.predict_counts()
    run, summary = _run(run_locust, server, tmp_path, "-t", "2s")
    assert run.returncode == 0, run.output[-3000:]
    after = server.predict_counts()
    served = after["predict"] - before["predict"]
    assert summary["rows"][-1]["requests"] > 0 and summary["rows"][-1]["failures"] == 0, summary
    assert served == _sent(summary), (served, summary)
    assert after["postprocess"] - before["postprocess"] == served  # none failed in the model
    assert summary["rows"][-1]["frames"] == 2 * summary["rows"][-1]["requests"]
    assert f"ModelInfer {server.model_name}" in run.output
    print(f"\nKServe counted {served}, the tool reported {_sent(summary)} (measured {summary['rows'][-1]['requests']},"
          f" warm-up {summary['warmup_requests']}, after stop {summary['after_stop_requests']})")


def test_failed_calls_are_counted_by_kserves_predict_histogram_and_by_us(servers, run_locust, tmp_path):
    """Every 4th predict call fails (KServe answers gRPC INVALID_ARGUMENT): our failures are exactly the calls
    KServe's predict histogram saw but its postprocess histogram did not. A fixed number of iterations, so
    that no request completes after the stop (the summary does not split those into ok and failed)."""
    server = servers(fail_every=4)
    before = server.predict_counts()
    run, summary = _run(run_locust, server, tmp_path, "--iterations", "15", "--warmup-iterations", "1")
    after = server.predict_counts()
    assert run.returncode == 1, run.output[-3000:]  # Locust's exit code when any request failed
    served = after["predict"] - before["predict"]
    failed_in_model = served - (after["postprocess"] - before["postprocess"])
    assert summary["after_stop_requests"] == 0 and served == _sent(summary) == 2 * 16, (served, summary)
    assert failed_in_model == after["predict"] // 4 - before["predict"] // 4 == 8  # calls are numbered from 1
    assert summary["rows"][-1]["failures"] + summary["warmup_failures"] == failed_in_model, summary
    assert "INVALID_ARGUMENT" in run.output and "injected failure" in run.output, run.output[-3000:]


REST_CASES = {  # case -> (protocol, extra options, request name, notice expected)
    "v1-predict": ("tfs", ("--synthetic-shape", "4", "--dtype", "float32"), "Predict",
                   "notice: GET /v1/models/kmodel/metadata answered HTTP 404"),
    "v2-json": ("kserve", ("--binary-data", "auto"), "ModelInfer", "notice: tensors go as JSON (--binary-data auto)"),
    "v2-binary": ("kserve", ("--binary-data", "on"), "ModelInfer",
                  "notice: tensors go as binary data (Inference-Header-Content-Length) (--binary-data on)"),
}


@pytest.mark.parametrize("case", list(REST_CASES))
def test_the_tool_counts_exactly_what_kserve_served_over_rest(servers, run_locust, tmp_path, case):
    server = servers()
    protocol, options, verb, notice = REST_CASES[case]
    np.save(tmp_path / "rows.npy", np.random.default_rng(4).uniform(-2, 2, (12, 4)).astype(np.float32))
    data = () if protocol == "tfs" else ("--images-numpy-path", "rows.npy")  # v1 has no metadata: the options give it
    before = server.predict_counts()
    run = run_locust("--protocol", protocol, "--host", server.http_url, "--model-name", server.model_name,
                     "--batch-size", "2", "-u", "2", "-r", "2", "-t", "2s", "--json-summary", "summary.json",
                     "--status-interval", "0", *data, *options, timeout=180)
    assert run.returncode == 0, run.output[-3000:]
    summary = json.loads((run.folder / "summary.json").read_text())
    after = server.predict_counts()
    served = after["predict"] - before["predict"]
    assert summary["rows"][-1]["requests"] > 0 and summary["rows"][-1]["failures"] == 0, summary
    assert served == _sent(summary) and after["postprocess"] - before["postprocess"] == served, (served, summary)
    assert f"HTTP {verb} {server.model_name}" in " ".join(run.output.split())
    assert notice in run.output, run.output[-3000:]
    print(f"\n{case}: KServe counted {served}, the tool reported {_sent(summary)}")

def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(Path(path).read_text(), parse_constant=refuse)


def test_server_metrics_read_kserves_own_page_with_failures_said_so(servers, run_locust, tmp_path):
    """--server-metrics against KServe's /metrics (issue 29): recognised as KServe, its successes (postprocess
    count) and failures (predict minus postprocess) beside ours exactly, its times marked as including the
    failed calls, and network + client left out (8 of 32 calls failed inside those times)."""
    server = servers(fail_every=4)
    run, _ = _run(run_locust, server, tmp_path, "--iterations", "15", "--warmup-iterations", "1",
                  "--server-metrics", server.metrics_url)
    assert run.returncode == 1, run.output[-3000:]  # failed requests
    summary = _strict_json(run.folder / "summary.json")
    e = summary["server"][server.metrics_url]
    assert (e["server"], e["model"], e["requests"], e["failures"], e["client_requests"], e["count_gap"],
            e["warning"], e["error"]) == ("KServe", server.model_name, 24, 8, 32, 0, None, None), e
    assert e["inference_ms"]["with_failures"] and e["preprocess_ms"]["with_failures"]
    assert e["postprocess_ms"]["with_failures"] is False and e["postprocess_ms"]["mean"] > 0
    assert e["request_ms"]["mean"] == pytest.approx(
        e["preprocess_ms"]["mean"] + e["inference_ms"]["mean"] + e["postprocess_ms"]["mean"])
    assert e["network_client_ms"] is None and e["queue_ms"]["mean"] is None
    assert f"  {server.metrics_url} (KServe, model {server.model_name}): 24 requests, 8 failures; we sent 32" \
        in run.output, run.output[-3000:]
    assert "inference (failed calls included) mean" in run.output
    # KServe's first bucket is 0-5 ms: a sub-millisecond model's p50 is that bucket, not a number inside it
    assert e["inference_ms"]["p50"] is None and e["inference_ms"]["p50_bucket_ms"] == [0.0, 5.0], e["inference_ms"]
    assert "p50 <= 5.000" in run.output


def test_server_metrics_of_a_clean_kserve_run_give_network_plus_client(servers, run_locust, tmp_path):
    server = servers()
    run, _ = _run(run_locust, server, tmp_path, "-t", "2s", "--server-metrics", server.metrics_url)
    assert run.returncode == 0, run.output[-3000:]
    summary = _strict_json(run.folder / "summary.json")
    e = summary["server"][server.metrics_url]
    assert (e["server"], e["failures"], e["count_gap"], e["warning"]) == ("KServe", 0, 0, None), e
    assert e["requests"] == _sent(summary)
    assert e["network_client_ms"] == pytest.approx(summary["rows"][-1]["mean_ms"] - e["request_ms"]["mean"])
    print(f"\nKServe counted {e['requests']}, we sent {_sent(summary)}; its steps' means (ms): preprocess "
          f"{e['preprocess_ms']['mean']:.3f}, predict {e['inference_ms']['mean']:.3f}, postprocess "
          f"{e['postprocess_ms']['mean']:.3f}; our client mean {summary['rows'][-1]['mean_ms']:.3f}")
