"""Protocol x transport x feature: every feature of a run, through a real `locust`, for TF Serving's Predict
and KServe v2's ModelInfer, over gRPC and over HTTP (their REST APIs).

The demo server answers both protocols on one gRPC port and both REST APIs on its REST port, and records
what it received in one form (``ReceivedRequest``), so each feature is one function run once per protocol
and transport: counts against the server's, the bytes it received against the file, the request names,
the exit code.
"""

import json

import numpy as np
import pytest
from PIL import Image

from test_preflight import _certificates
from tfs_user.demo.server import ModelConfig

PROTOCOLS = {"tfs": "Predict", "kserve": "ModelInfer"}
TRANSPORTS = ("grpc", "http")


class Case(str):
    """A protocol name (``--protocol``) on a transport: ``.http``, ``.verb``, and how a server is addressed."""

    def __new__(cls, protocol, transport):
        case = super().__new__(cls, protocol)
        case.http = transport == "http"
        case.verb = PROTOCOLS[protocol]
        return case

    def address(self, server):
        return server.rest_address if self.http else server.address

    def host(self, server, tls=False):
        scheme = ("https://" if tls else "http://") if self.http else ("grpcs://" if tls else "")
        return scheme + self.address(server)


NHWC = dict(name="small", input_name="input", shape=(-1, 8, 8, 3), output_size=10)


def _summary(run):
    with open(run.folder / "summary.json") as f:
        return json.load(f)


def _run(run_locust, protocol, hosts, *args, **kwargs):
    return run_locust("--protocol", protocol, "--host", ",".join(protocol.host(s) for s in hosts), "--model-name", "small",
                      "--json-summary", "summary.json", "--status-interval", "0", *args, **kwargs)


def _served_equals_reported(servers, run, in_flight=0):
    """Every request a server answered is measured, warm-up or after stop in the run's own summary: exactly,
    when the users end the run themselves; up to ``in_flight`` more (at most the users) when the run is
    stopped while requests are in flight (a sweep's end), which Locust's stop cancels unrecorded."""
    summary = _summary(run)
    reported = summary["rows"][-1]["requests"] + summary["warmup_requests"] + summary["after_stop_requests"]
    served = sum(s.counts()["requests"] for s in servers)
    assert 0 <= served - reported <= in_flight, (served, summary, run.output[-3000:])
    return summary


def closed_loop_pixels_version_metadata_outputs(protocol, demo_server, run_locust, tmp_path):
    """Closed loop, exact counts; an NHWC file reaches an NCHW model transposed, batch by batch; the
    version, gRPC metadata and requested outputs reach the server."""
    model = ModelConfig(name="small", input_name="input", shape=(-1, 3, 8, 8), output_size=10, versions=(1, 2))
    server = demo_server(models=[model], record=True)
    images = np.random.default_rng(7).uniform(0, 255, (6, 8, 8, 3)).astype(np.float32)
    np.save(tmp_path / "imgs.npy", images)
    outputs = () if protocol.http and protocol == "tfs" else ("--output-names", "prob")  # TF Serving REST: no filter
    run = _run(run_locust, protocol, [server], "-u", "1", "-r", "1", "--iterations", "4", "--warmup-iterations", "1",
               "--batch-size", "2", "--images-numpy-path", "imgs.npy", "--model-version", "2",
               "--grpc-metadata", "x-team=vision", *outputs)
    assert run.returncode == 0, run.output
    summary = _served_equals_reported([server], run)
    assert (summary["rows"][-1]["requests"], summary["rows"][-1]["frames"], summary["warmup_requests"]) == (4, 8, 1)
    assert f"{'HTTP' if protocol.http else 'gRPC'} {protocol.verb} small (warm-up)" in " ".join(run.output.split())
    received = server.received()
    assert len(received) == 5 and all(r.code == "OK" for r in received)
    for k, r in zip([0, 0, 1, 2, 3], received):  # warm-up sends batch 0; batch k = rows (2k, 2k+1) mod 6
        rows = [(2 * k + j) % 6 for j in range(2)]
        assert np.array_equal(r.inputs["input"], images[rows].transpose(0, 3, 1, 2)), k
        assert (r.version, r.metadata.get("x-team")) == (2, "vision")


def open_loop_counts_every_scheduled_request(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)], delay_ms=2)
    run = _run(run_locust, protocol, [server], "-u", "4", "-r", "4", "-t", "3s", "--arrival-rate", "40",
               "--arrival", "constant", "--warmup-iterations", "0")
    assert run.returncode == 0, run.output
    summary = _served_equals_reported([server], run)
    sent = summary["open_loop"]["sent"]  # every slot sent is a request counted (warm-up 0); unsent ones are named
    assert sent == summary["rows"][-1]["requests"] + summary["after_stop_requests"], summary
    assert "send error (actual minus scheduled send)" in run.output


def sweep_steps(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)], delay_ms=2)
    run = _run(run_locust, protocol, [server], "--sweep", "users:1,2", "--step-time", "2s", "-u", "2")
    assert run.returncode == 0, run.output
    summary = _served_equals_reported([server], run, in_flight=2)  # the sweep's end stops 2 users (seen: 1 lost)
    assert [s["users"] for s in summary["steps"]] == [1, 2], summary["steps"]
    assert all(s["requests"] > 0 for s in summary["steps"])


def processes_two_workers(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)])
    run = _run(run_locust, protocol, [server], "--processes", "2", "-u", "4", "-r", "4", "--iterations", "5",
               "--warmup-iterations", "1", timeout=180)
    assert run.returncode == 0, run.output
    summary = _served_equals_reported([server], run)
    assert summary["rows"][-1]["requests"] == 20 and server.counts()["ok"] == 24


def two_endpoints(protocol, demo_server, run_locust, tmp_path):
    servers = [demo_server(models=[ModelConfig(**NHWC)]) for _ in range(2)]
    run = _run(run_locust, protocol, servers, "-u", "4", "-r", "4", "--iterations", "5", "--warmup-iterations", "0")
    assert run.returncode == 0, run.output
    _served_equals_reported(servers, run)
    assert [s.counts()["ok"] for s in servers] == [10, 10]  # users are spread round-robin
    assert f"{protocol.verb} small @ {protocol.address(servers[1])}" in run.output


def mutual_tls(protocol, demo_server, run_locust, tmp_path):
    pem = _certificates(tmp_path)
    server = demo_server(models=[ModelConfig(**NHWC)], tls=(pem["server.pem"], pem["server.key"], pem["ca.pem"]))
    run = run_locust("--protocol", protocol, "--host", protocol.host(server, tls=True), "-u", "1", "-r", "1",
                     "--iterations", "5", "--model-name", "small", "--grpc-tls-ca", "ca.pem",
                     "--grpc-tls-cert", "client.pem", "--grpc-tls-key", "client.key", "--grpc-tls-server-name", "tfs.test")
    assert run.returncode == 0, run.output
    assert server.counts()["ok"] == 6


def server_failures_are_recorded_and_the_run_goes_on(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)], fail_every=4, fail_code="INTERNAL")
    run = _run(run_locust, protocol, [server], "-u", "1", "-r", "1", "--iterations", "12", "--warmup-iterations", "0")
    assert run.returncode == 1, run.output
    summary = _served_equals_reported([server], run)
    assert summary["rows"][-1]["failures"] == server.counts()["failed"] == 3
    said = "HTTP 500: injected failure" if protocol.http else "INTERNAL: injected failure"
    assert f"{'HTTP' if protocol.http else 'gRPC'} {protocol.verb} small: {said}" in run.output
    assert "Traceback" not in run.output


def wrong_output_batch_fails_validation(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)], bad_output_batch=True)
    run = _run(run_locust, protocol, [server], "-u", "1", "-r", "1", "--iterations", "3", "--warmup-iterations", "0",
               "--batch-size", "2")
    assert run.returncode == 1, run.output
    assert _summary(run)["rows"][-1]["failures"] == 3 and server.counts()["ok"] == 3
    said = "predictions has 3 rows; expected 2 (the batch size)" if protocol.http and protocol == "tfs" else \
        "output 'prob' has shape [3, 10]; expected first dimension 2 (the batch size)"
    assert said in run.output


def slo_missed_exits_3(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)], delay_ms=2)
    run = _run(run_locust, protocol, [server], "-u", "1", "-r", "1", "--iterations", "5", "--slo-p99-ms", "1")
    assert run.returncode == 3, run.output
    assert "SLO missed: p99" in run.output and _summary(run)["passed"] is False


def encoded_images_to_a_bytes_input(protocol, demo_server, run_locust, tmp_path):
    model = ModelConfig(name="small", input_name="image_bytes", dtype="string", shape=(-1,), output_size=10)
    server = demo_server(models=[model], record=True)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((4, 5, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    run = _run(run_locust, protocol, [server], "-u", "1", "-r", "1", "--iterations", "3", "--warmup-iterations", "0",
               "--images-dir", "photos")
    assert run.returncode == 0, run.output
    sent = [(folder / f"{i}.png").read_bytes() for i in range(3)]
    assert [r.inputs["image_bytes"] for r in server.received()] == [[b] for b in sent]


def preflight_waits_for_a_loading_model_or_says_what_is_not_ready(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)], available_after_s=120.0)  # loading for the whole test
    early = _run(run_locust, protocol, [server], "-u", "1", "-r", "1", "--iterations", "1")
    assert early.returncode == 2, early.output
    said = {"tfs": "model 'small' any version is not AVAILABLE; the server reports: version 1 LOADING",
            "kserve": f"model 'small' is not ready at {protocol.address(server)} (server ready: false)"}[protocol]
    assert f"error: {said}" in early.output and "Traceback" not in early.output, early.output[-2000:]
    server = demo_server(models=[ModelConfig(**NHWC)], available_after_s=2.0)  # (ready by the first call if start is slow)
    waited = _run(run_locust, protocol, [server], "-u", "1", "-r", "1", "--iterations", "3", "--wait-for-model", "60")
    assert waited.returncode == 0, waited.output
    assert server.counts()["ok"] == 4 and len(server.status_times) >= 1


def a_model_the_server_does_not_have_is_not_found_in_its_own_words(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)])
    run = run_locust("--protocol", protocol, "--host", server.address, "--model-name", "nope", "-u", "1", "-r", "1",
                     "--iterations", "1", "--status-interval", "0")
    assert run.returncode == 2, run.output[-2000:]
    said = {"tfs": "Servable not found for request: Latest(nope)", "kserve": "Request for unknown model: 'nope'"}[protocol]
    line = next((line for line in run.output.splitlines() if line.startswith("error: ")), run.output[-2000:])
    assert line.startswith(f"error: model 'nope' not found at {server.address} (the server said NOT_FOUND: ") \
        and said in line and "not ready" not in line, line
    assert "Traceback" not in run.output and server.counts()["requests"] == 0


def without_metadata_the_options_give_the_input(protocol, demo_server, run_locust, tmp_path):
    server = demo_server(models=[ModelConfig(**NHWC)], metadata=False, record=True)
    run = _run(run_locust, protocol, [server], "-u", "1", "-r", "1", "--iterations", "2", "--warmup-iterations", "0",
               "--synthetic-shape", "8,8,3", "--dtype", "float32")
    assert run.returncode == 0, run.output
    assert "notice: the server does not implement" in run.output
    assert [r.inputs["input"].shape for r in server.received()] == [(1, 8, 8, 3)] * 2


FEATURES = [preflight_waits_for_a_loading_model_or_says_what_is_not_ready, without_metadata_the_options_give_the_input,
            a_model_the_server_does_not_have_is_not_found_in_its_own_words,
            closed_loop_pixels_version_metadata_outputs, open_loop_counts_every_scheduled_request, sweep_steps,
            processes_two_workers, two_endpoints, mutual_tls, server_failures_are_recorded_and_the_run_goes_on,
            wrong_output_batch_fails_validation, slo_missed_exits_3, encoded_images_to_a_bytes_input]


@pytest.mark.parametrize("feature", FEATURES, ids=[f.__name__ for f in FEATURES])
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_feature_works_the_same_for_each_protocol(protocol, transport, feature, demo_server, run_locust, tmp_path):
    case = Case(protocol, transport)
    servers = (lambda **kwargs: demo_server(rest_port=0, **kwargs)) if case.http else demo_server
    feature(case, servers, run_locust, tmp_path)
