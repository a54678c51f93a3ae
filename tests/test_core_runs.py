"""Real `locust --headless` runs of locustfile.py against the demo server on loopback."""

import os
import re

import numpy as np
import pytest

from tfs_user.demo.server import ModelConfig


def test_iterations_end_the_run_and_totals_match_the_server(demo_server, small_model, small_images, run_locust):
    server = demo_server(models=[small_model])
    run = run_locust("--host", server.address, "-u", "3", "-r", "3", "--iterations", "40", "--batch-size", "2",
                     "--model-name", "small", "--images-numpy-path", small_images)
    assert run.returncode == 0, run.output
    assert "all 3 users finished their iterations" in run.output
    rows = run.tfs_csv()
    measured = rows["Predict small"]
    assert int(measured["Requests"]) == 3 * 40
    assert int(measured["Failures"]) == 0
    assert int(measured["Frames"]) == 3 * 40 * 2
    # FPS = successful requests/s x batch size
    assert float(measured["FPS"]) == pytest.approx(2 * float(measured["Requests/s"]), rel=1e-3)
    # the server saw the measured requests plus one warm-up request per user
    counts = server.counts()
    assert counts["requests"] == 3 * 40 + 3
    assert counts["frames"] == int(measured["Frames"]) + 3 * 2
    # Locust's own final table keeps warm-up requests on a row of their own. (Its CSV is
    # rewritten only once a second, so a run this short can end before it has any rows.)
    assert re.search(r"gRPC\s+Predict small\s+120\s+0\(0.00%\)", run.output), run.output
    assert re.search(r"gRPC\s+Predict small \(warm-up\)\s+3\s+0\(0.00%\)", run.output), run.output
    assert "FPS:" in run.output and "Average latency:" in run.output


def test_iterations_zero_is_one_pass_over_the_file(demo_server, small_model, small_images, run_locust):
    server = demo_server(models=[small_model])
    # 10 images in batches of 4: rows 0-3, 4-7, 8,9,0,1 -> 3 requests, 12 frames per user
    run = run_locust("--host", server.address, "-u", "2", "-r", "2", "--iterations", "0", "--batch-size", "4",
                     "--warmup-iterations", "0", "--model-name", "small", "--images-numpy-path", small_images)
    assert run.returncode == 0, run.output
    assert int(run.tfs_csv()["Predict small"]["Requests"]) == 2 * 3
    assert server.counts()["frames"] == 2 * 12


def test_wrong_model_name_gives_not_found_failures_and_the_run_ends(demo_server, small_images, run_locust):
    # a server without GetModelStatus/GetModelMetadata: no pre-flight, so Predict itself fails
    server = demo_server(models=[ModelConfig(name="small", shape=(-1, 8, 8, 3), output_size=10)], metadata=False)
    run = run_locust("--host", server.address, "-u", "2", "-r", "2", "--iterations", "5",
                     "--model-name", "nosuch", "--images-numpy-path", small_images)
    assert run.returncode == 1, run.output  # Locust's exit code when requests failed
    row = run.tfs_csv()["Predict nosuch"]
    assert (int(row["Requests"]), int(row["Failures"]), int(row["Frames"])) == (10, 10, 0)
    assert float(row["FPS"]) == 0.0
    # Locust's failure table names the gRPC status code and the server's details
    assert re.search(r"10\s+gRPC Predict nosuch: NOT_FOUND: Servable not found for request: Latest\(nosuch\)", run.output), run.output
    assert "Traceback" not in run.output
    assert "notice: the server does not implement ModelService/GetModelStatus" in run.output


def test_wrong_model_name_is_caught_before_start_when_the_server_has_status(demo_server, small_images, run_locust):
    server = demo_server(models=[ModelConfig(name="small", shape=(-1, 8, 8, 3), output_size=10)])
    run = run_locust("--host", server.address, "-u", "2", "-r", "2", "--iterations", "5",
                     "--model-name", "nosuch", "--images-numpy-path", small_images)
    assert run.returncode == 2, run.output
    assert f"error: model 'nosuch' not found at {server.address} (the server said NOT_FOUND: Servable not found" in run.output
    assert server.counts()["requests"] == 0


def test_injected_server_failures_are_counted_and_the_run_goes_on(demo_server, small_model, small_images, run_locust):
    server = demo_server(models=[small_model], fail_every=5, fail_code="INTERNAL")
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "50", "--warmup-iterations", "0",
                     "--model-name", "small", "--images-numpy-path", small_images)
    row = run.tfs_csv()["Predict small"]
    assert (int(row["Requests"]), int(row["Failures"])) == (50, 10)
    assert int(row["Frames"]) == server.counts()["frames"] == 40
    assert re.search(r"10\s+gRPC Predict small: INTERNAL: injected failure", run.output), run.output


def test_old_script_spellings_and_progress_lines(demo_server, small_model, small_images, run_locust):
    server = demo_server(models=[small_model])
    host, port = server.address.split(":")
    run = run_locust("--grpc_address", host, "--grpc_port", port, "--images_numpy_path", small_images,
                     "--iterations", "6", "--batchsize", "3", "--report_every", "3", "--input_name", "input",
                     "--model_name", "small", "-u", "1", "-r", "1")
    assert run.returncode == 0, run.output
    assert "Iteration 3/6; Current latency: " in run.output
    assert "Iteration 6/6; Current latency: " in run.output
    assert int(run.tfs_csv()["Predict small"]["Frames"]) == 18


def test_options_from_config_file_and_environment(demo_server, small_model, small_images, run_locust, tmp_path):
    server = demo_server(models=[small_model])
    conf = tmp_path / "my.conf"
    conf.write_text(f"host = {server.address}\nusers = 2\nspawn-rate = 2\niterations = 4\nmodel-name = small\n"
                    f"images-numpy-path = {small_images}\n")
    run = run_locust("--config", str(conf), env={"TFS_BATCH_SIZE": "5"})
    assert run.returncode == 0, run.output
    row = run.tfs_csv()["Predict small"]
    assert (int(row["Requests"]), int(row["Frames"])) == (8, 40)


def test_run_time_without_iterations(demo_server, small_model, run_locust):
    server = demo_server(models=[small_model], delay_ms=5)
    run = run_locust("--host", server.address, "-u", "2", "-r", "2", "-t", "3s", "--model-name", "small",
                     "--synthetic-shape", "8,8,3", "--status-interval", "1")
    assert run.returncode == 0, run.output
    row = run.tfs_csv()["Predict small"]
    assert int(row["Requests"]) > 100
    assert 2.0 < float(row["Window s"]) < 3.5
    status = [line for line in run.output.splitlines() if line.startswith("[tfs] users 2 |")]
    assert status, run.output
    history = (run.folder / "out_tfs_history.csv").read_text().splitlines()
    assert history[0].startswith("Timestamp,Users,Requests") and len(history) >= 2


@pytest.mark.parametrize("args, message", [
    (["--images-numpy-path", "missing.npy"], "numpy file 'missing.npy' does not exist"),
    (["--images-numpy-path", "text.npy"], "is not a .npy file"),
    (["--images-numpy-path", "objects.npy"], "holds a pickled object array"),
    (["--images-numpy-path", "scalar.npy"], "has shape []; expected at least 1 dimension"),
    (["--images-numpy-path", "empty.npy"], "holds no data"),
    (["--batch-size", "0"], "--batch-size/--batchsize/--batch_size: '0' is out of range; expected an integer >= 1"),
    (["--batch-size", "-2"], "'-2' is out of range"),
    (["--batch-size", "1:6,,8:3"], "--batch-size/--batchsize/--batch_size: '1:6,,8:3' has an empty entry (entry 2 of 3)"),
    (["--images-numpy-path", "a.npy:3,,b.npy:1"], "'a.npy:3,,b.npy:1' has an empty entry (entry 2 of 3)"),
    (["--models", "small;"], "--models 'small;' has an empty entry (entry 2 of 2)"),
    (["--host", "ftp://x:1"], "uses scheme 'ftp'"),
    (["--host", "http://127.0.0.1:1"], "no HTTP server answered at 127.0.0.1:1"),
    (["--host", "127.0.0.1:1"], "no gRPC server answered at 127.0.0.1:1"),
    (["--host", "http://127.0.0.1:1/v1"], "error: host 'http://127.0.0.1:1/v1' has a path '/v1'; expected the server's "
                                         "address alone, --host http://127.0.0.1:1: the tool adds the REST paths itself"),
    # values that would not bound the run or would crash it later (seen: inf held the process past SIGTERM)
    (["--arrival-rate", "inf"], "'inf' is out of range; expected requests/s 0..100000"),
    (["--arrival-rate", "1e9"], "'1e9' is out of range; expected requests/s 0..100000"),
    (["--sweep", "rate:5,1e9", "--step-time", "5"], "'1e9' is not a rate; expected requests/s > 0 and <= 100000"),
    (["--timeout", "1e12"], "'1e12' is out of range; expected a deadline in seconds > 0 and <= 86400"),
    (["--max-message-mb", "99999999"], "'99999999' is out of range; expected MiB 1..2047"),
    (["--run-time", "0"], "--run-time 0 would mean no time limit in Locust; expected a duration > 0"),
    # output files that could not be written at the end (seen: a traceback after the run, then exit 0)
    (["--json-summary", "sub"], "--json-summary 'sub' is a folder; expected a file path (e.g. 'sub/run.json')"),
    (["--json-summary", "nofolder/s.json"], "--json-summary 'nofolder/s.json': folder 'nofolder' does not exist"),
    (["--plot", "sub"], "--plot 'sub' is a folder; expected a file path (e.g. 'sub/plot.html')"),
    (["--sweep", "users:1,2", "--step-time", "5"], "error: --iterations 1 and --sweep 'users:1,2' do not go together: "
                                                   "a sweep runs each step for --step-time; drop --iterations"),
    (["--host", "nosuchhost.invalid:8500"], "error: the host name 'nosuchhost.invalid' of nosuchhost.invalid:8500 did "
                                            "not resolve ("),
])
def test_bad_input_is_one_line_before_any_user_starts(args, message, run_locust, tmp_path):
    (tmp_path / "text.npy").write_text("not numpy\n")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "scalar.npy", np.float32(5))
    np.save(tmp_path / "empty.npy", np.zeros((0, 8, 8, 3), np.float32))
    (tmp_path / "sub").mkdir()
    before = set(p.name for p in tmp_path.iterdir())
    host = [] if "--host" in args else ["--host", "127.0.0.1:1"]
    run = run_locust(*host, "-u", "1", "--iterations", "1", *args, timeout=60)
    assert run.returncode == 2, run.output
    assert message in run.output
    assert "Traceback" not in run.output
    errors = [line for line in run.output.splitlines() if "error:" in line]
    assert len(errors) == 1, run.output
    assert set(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_demo_config_runs_the_main_job(run_locust):
    from conftest import ROOT

    run = run_locust("--config", str(ROOT / "configs" / "demo.conf"), "-f", str(ROOT / "locustfile.py"),
                     "--run-time", "3s", headless=False, csv_prefix=None)
    assert run.returncode == 0, run.output
    assert "[tfs] started demo server at 127.0.0.1:" in run.output
    assert "FPS:" in run.output
    served = [line for line in run.output.splitlines() if "demo server served" in line]
    assert served and " 0 failed" in served[0]


def test_what_ends_a_run_before_its_start_leaves_no_demo_server(run_locust, tmp_path):
    """A batch too large for memory is one line and exit 2, and the demo server it started is stopped (seen: a
    MemoryError traceback, exit 1, and the demo server serving on as an orphan for 10 minutes)."""
    run = run_locust("--demo-server", "-u", "1", "--iterations", "1", "--batch-size", "100000000", timeout=120)
    assert run.returncode == 2, run.output[-3000:]
    assert "error: the request bodies need more memory than this machine has (" in run.output, run.output[-3000:]
    assert "lower --batch-size" in run.output and "Traceback" not in run.output
    assert "[tfs] demo server served 0 requests" in run.output  # stopped by us, not left behind


def test_ctrl_c_while_waiting_for_the_server_is_one_line(tmp_path, free_port):
    """Ctrl-C during the pre-flight wait: one line, exit 130, no traceback (seen: a KeyboardInterrupt traceback)."""
    import signal
    import subprocess

    from conftest import ctrl_c_once_it_says, end_group, locust_command

    port = free_port()  # nothing listens there: the tool waits for it
    process = subprocess.Popen(locust_command("--headless", "--host", f"127.0.0.1:{port}", "--wait-for-model", "60",
                                              "-u", "1", "-t", "5s"),
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:  # Ctrl-C once the tool says it is waiting (its own clock)
        out = ctrl_c_once_it_says(process, "waiting for a gRPC server")
    finally:
        end_group(process)
    assert process.returncode == 130, out[-3000:]
    assert "stopped: Ctrl-C before the test started" in out and "Traceback" not in out, out[-3000:]


def test_a_host_given_beside_the_demo_server_is_named_as_not_tested(run_locust):
    """--demo-server replaces a gRPC --host with its own address: a notice says so (seen: silently dropped)."""
    run = run_locust("--demo-server", "--host", "127.0.0.1:1", "-u", "1", "--iterations", "2", timeout=120)
    assert run.returncode == 0, run.output[-3000:]
    notice = re.search(r"notice: --demo-server: the run tests the demo server at (\S+), not --host 127\.0\.0\.1:1",
                       run.output)
    assert notice and f"[tfs] started demo server at {notice.group(1)}" in run.output, run.output[-3000:]
