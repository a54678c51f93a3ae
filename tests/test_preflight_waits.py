"""Pre-flight that waits and explains (issue 12): late servers, loading models, TLS faults, metadata fallbacks.

Real `locust` runs against DemoServers on loopback; waits are measured against the server's own
clock (when it started, when its versions became AVAILABLE, when GetModelStatus calls arrived).
"""

import re
import socket
import subprocess
import time

import pytest

from conftest import locust_command
from test_preflight import SMALL_NHWC, _certificates
from tfs_user.demo.server import DemoServer, ModelConfig

C_CORE_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ \S+:\d+\]", re.M)
"""A gRPC C-core log line, e.g. ``I1129 22:52:19.679321    2664 ssl_transport_security.cc:2563] ...``."""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _small(**kwargs):
    return ModelConfig(**SMALL_NHWC, **kwargs)


def test_wait_for_model_covers_a_server_that_starts_late(small_images, tmp_path):
    # the server starts once the tool says it is waiting (on the tool's clock, however long its own start
    # took on a busy machine): 3 s into a 10 s wait
    port = _free_port()
    server = DemoServer(models=[_small()], port=port, record=True)
    locust = subprocess.Popen(
        locust_command("--headless", "--host", f"127.0.0.1:{port}", "-u", "1", "-r", "1", "--iterations", "3",
                       "--model-name", "small", "--images-numpy-path", small_images, "--wait-for-model", "10"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in locust.stdout:  # until the first progress line
            lines.append(line)
            if "waiting for a gRPC server at" in line:
                break
        waiting_seen = time.time()
        server.start()
        output = "".join(lines) + locust.communicate(timeout=60)[0]
    finally:
        if locust.poll() is None:
            locust.kill()
        server.stop()
    assert locust.returncode == 0, output
    assert server.received()[0].time >= waiting_seen
    progress = re.findall(r"waiting for a gRPC server at 127\.0\.0\.1:\d+: (\d+) s of 10 s", output)
    assert len(progress) >= 1 and all(0 < int(s) <= 10 for s in progress), output  # one every 3 s while waiting
    assert "Traceback" not in output and not C_CORE_LINE.search(output), output


def test_without_wait_for_model_the_connect_wait_stays_5_s(run_locust, small_images):
    started = time.monotonic()
    run = run_locust("--host", f"127.0.0.1:{_free_port()}", "-u", "1", "-r", "1", "--iterations", "1",
                     "--images-numpy-path", small_images)
    elapsed = time.monotonic() - started
    assert run.returncode == 2, run.output
    assert re.search(r"error: no gRPC server answered at 127\.0\.0\.1:\d+ within 5 s; start the model server", run.output)
    assert 5 <= elapsed < 30, elapsed


def test_wait_for_model_waits_until_the_version_is_available(demo_server, run_locust, small_images):
    server = demo_server(models=[_small()], available_after_s=4, record=True)
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "3", "--model-name", "small",
                     "--images-numpy-path", small_images, "--wait-for-model", "15")
    assert run.returncode == 0, run.output
    received = server.received()
    assert received and all(r.code == "OK" for r in received), run.output
    assert received[0].time >= server.available_at  # no Predict before the model was AVAILABLE
    times = server.status_times
    assert times[0] < server.available_at <= times[-1], times  # it asked while LOADING, and again after
    # without waiting, the same server (still loading) stops the run before start
    loading = demo_server(models=[_small()], available_after_s=60)
    run = run_locust("--host", loading.address, "-u", "1", "-r", "1", "--iterations", "1", "--model-name", "small",
                     "--images-numpy-path", small_images)
    assert run.returncode == 2, run.output
    assert "error: model 'small' any version is not AVAILABLE; the server reports: version 1 LOADING" in run.output


def test_wait_for_model_waits_then_fails_after_the_time_given(demo_server, run_locust, small_images):
    server = demo_server(models=[_small(versions=(1,))])
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "1", "--model-name", "small",
                     "--images-numpy-path", small_images, "--model-version", "2", "--wait-for-model", "3")
    assert run.returncode == 2, run.output
    assert "is not AVAILABLE after waiting 3 s; the server reports: version 1 AVAILABLE" in run.output
    times = server.status_times
    assert len(times) >= 3 and 2.5 <= times[-1] - times[0] < 10, times


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    pem = _certificates(folder)
    return folder, pem


TLS_CASES = {
    # name: (server TLS?, client scheme, extra options, expected error regex)
    "hostname mismatch": (True, "grpcs", ["--grpc-tls-ca", "{ca}"],
                          r"error: the TLS certificate of the server at 127\.0\.0\.1:\d+ is for tfs\.test, not "
                          r"'127\.0\.0\.1'; give --grpc-tls-server-name tfs\.test \(or connect by a name it holds\)"),
    "server name not in the certificate": (
        True, "grpcs", ["--grpc-tls-ca", "{ca}", "--grpc-tls-server-name", "other.test"],
        r"error: the TLS certificate of the server at 127\.0\.0\.1:\d+ is for tfs\.test, not 'other\.test' "
        r"\(--grpc-tls-server-name\); give --grpc-tls-server-name tfs\.test \(or connect by a name it holds\)"),
    "grpcs against a plaintext port": (
        False, "grpcs", [],
        r"error: grpcs:// asks for TLS but the server at 127\.0\.0\.1:\d+ answers plaintext gRPC \(HTTP/2 without "
        r"TLS\); use --host grpc://127\.0\.0\.1:\d+"),
    "plaintext against a TLS port": (
        True, "grpc", [],
        r"error: the server at 127\.0\.0\.1:\d+ speaks TLS but the host is plaintext; use --host "
        r"grpcs://127\.0\.0\.1:\d+ \(with --grpc-tls-ca for a private CA\)"),
    "unknown CA": (True, "grpcs", ["--grpc-tls-server-name", "tfs.test"],
                   r"error: the TLS certificate of the server at 127\.0\.0\.1:\d+ is not signed by a CA in the "
                   r"system's root certificates \(unable to get local issuer certificate\); give --grpc-tls-ca FILE with the "
                   r"CA that signed it"),
    "mutual TLS without a client certificate": (
        "mutual", "grpcs", ["--grpc-tls-ca", "{ca}", "--grpc-tls-server-name", "tfs.test"],
        r"error: the server at 127\.0\.0\.1:\d+ closed the TLS connection without a gRPC answer: it asks for a client "
        r"certificate \(mutual TLS\); give --grpc-tls-cert FILE and --grpc-tls-key FILE"),
}


@pytest.mark.parametrize("case", list(TLS_CASES))
def test_each_tls_fault_has_its_own_line_and_no_c_core_logs(case, certificates, demo_server, run_locust, small_images):
    folder, pem = certificates
    tls, scheme, extra, expected = TLS_CASES[case]
    client_ca = pem["ca.pem"] if tls == "mutual" else None
    server = demo_server(models=[_small()], tls=(pem["server.pem"], pem["server.key"], client_ca) if tls else None)
    started = time.monotonic()
    run = run_locust("--host", f"{scheme}://{server.address}", "-u", "1", "-r", "1", "--iterations", "1",
                     "--model-name", "small", "--images-numpy-path", small_images,
                     *[a.format(ca=folder / "ca.pem") for a in extra], "--wait-for-model", "30")
    elapsed = time.monotonic() - started
    assert run.returncode == 2, run.output
    errors = [line for line in run.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and re.fullmatch(expected, errors[0]), run.output
    assert not C_CORE_LINE.search(run.output), run.output  # GRPC_VERBOSITY=ERROR unless asked for
    assert "Traceback" not in run.output
    assert elapsed < 25, elapsed  # a fault waiting cannot fix is reported at once, not after --wait-for-model


def test_c_core_lines_show_when_asked_for(certificates, demo_server, run_locust, small_images):
    _, pem = certificates
    server = demo_server(models=[_small()])
    run = run_locust("--host", f"grpcs://{server.address}", "-u", "1", "-r", "1", "--iterations", "1",
                     "--model-name", "small", "--images-numpy-path", small_images, env={"GRPC_VERBOSITY": "INFO"})
    assert run.returncode == 2, run.output
    assert C_CORE_LINE.search(run.output), run.output


# --- 2. metadata fallbacks ---

def test_metadata_failure_is_a_notice_when_the_options_give_the_input(demo_server, run_locust):
    server = demo_server(models=[ModelConfig(name="small", input_name="x", shape=(-1, 8, 8, 3), output_size=10)],
                         metadata_code="INTERNAL", record=True)
    args = ["--host", server.address, "-u", "1", "-r", "1", "--iterations", "2", "--model-name", "small"]
    run = run_locust(*args, "--input-name", "x", "--dtype", "float32", "--synthetic-shape", "8,8,3")
    assert run.returncode == 0, run.output
    assert ("notice: GetModelMetadata for model 'small' failed (INTERNAL: injected metadata failure); input name, "
            "dtype and shape are used as given") in run.output
    received = server.received()
    assert len(received) == 3 and all(r.code == "OK" for r in received)
    assert {(r.inputs["x"].shape, r.inputs["x"].dtype.name) for r in received} == {((1, 8, 8, 3), "float32")}
    # the options do not give a frame shape: one line before start, naming what is missing
    server.reset_counts()
    bare = run_locust(*args)
    assert bare.returncode == 2, bare.output
    assert ("error: no signature for model 'small' (see the notice above) and no data or --synthetic-shape gives "
            "the frame shape of the model's input (name unknown); give --images-numpy-path FILE") in bare.output
    assert server.counts()["requests"] == 0


def test_four_inputs_without_metadata_and_without_options_stop_before_start(demo_server, run_locust):
    model = ModelConfig(name="sk", input_name="f0", shape=(-1, 1), output_size=2,
                        extra_inputs=tuple((f"f{i}", "float32", (-1, 1)) for i in (1, 2, 3)))
    server = demo_server(models=[model], metadata=False)
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "2", "--model-name", "sk")
    assert run.returncode == 2, run.output
    assert "error: no signature for model 'sk'" in run.output and "--synthetic-shape" in run.output
    assert server.counts()["requests"] == 0  # today: 224x224x3 tensors named 'input', every one failing


def test_skip_preflight_makes_no_status_or_metadata_call(demo_server, run_locust, small_images):
    server = demo_server(models=[_small()], metadata_code="INTERNAL", available_after_s=0)
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "2", "--model-name", "small",
                     "--images-numpy-path", small_images, "--input-name", "input", "--skip-preflight")
    assert run.returncode == 0, run.output
    assert "notice: --skip-preflight: model status and signature not asked" in run.output
    assert server.status_times == [] and server.metadata_times == [] and server.counts()["ok"] == 3


def test_demo_server_command_line_has_the_new_injections():
    from tfs_user.demo.cli import build_parser

    args = build_parser().parse_args(["--metadata-fail-code", "internal", "--available-after", "2.5"])
    assert (args.metadata_fail_code, args.available_after) == ("INTERNAL", 2.5)
    with pytest.raises(ValueError, match="metadata_code 'OK' is not a failing gRPC status code name"):
        DemoServer(metadata_code="OK")
