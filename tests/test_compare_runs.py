"""--baseline in real runs (issue 32): one process, a sweep, --processes and master/worker, against a demo server.

Runs are 4-5 s so that each has at least 3 full 1 s windows. A slower server is 3x slower (15 ms instead of
5 ms): far beyond any noise of a busy machine. The "same server" runs set wide thresholds (50 %): the
assertion is that the comparison ran and judged, not a noise claim (benchmarks/compare_noise.py measures
that).
"""

import json
import os
import subprocess
import sys

from hdrh.histogram import HdrHistogram

from conftest import ROOT
from test_distributed import _finish, _free_port, _start_workers

MODEL = "--shape=-1,4 --output-size 1"
WIDE = ("--baseline-p50", "50", "--baseline-p90", "50", "--baseline-p99", "off", "--baseline-fps", "50")


def _demo(delay_ms):
    return ("--demo-server", "--demo-server-args", f"{MODEL} --delay-ms {delay_ms}")


def _worse_lines(output):
    return [line for line in output.splitlines() if line.startswith("Worse than baseline: ")]


def test_a_slower_server_exits_3_with_one_line_per_worse_figure_and_a_same_one_exits_0(run_locust, tmp_path):
    base = run_locust(*_demo(5), "-u", "2", "-r", "2", "-t", "4s", "--json-summary", "base.json")
    assert base.returncode == 0, base.output
    doc = json.loads((tmp_path / "base.json").read_text())
    row = doc["rows"][-1]
    assert doc["format"] == {"name": "tfs-locust summary", "version": 2}
    assert doc["run"]["model"] == "resnet" and doc["run"]["users"] == 2 and doc["run"]["batch_size"] == 1
    assert doc["run"]["protocol"] == "tfs" and doc["run"]["transport"] == "grpc" and doc["run"]["cpu_count"] >= 1
    assert HdrHistogram.decode(row["hdr_histogram"].encode("ascii")).get_total_count() == row["requests"]
    assert sum(w["requests"] for w in row["windows"]["rows"]) == row["requests"]
    assert sum(w["full"] for w in row["windows"]["rows"]) >= 3

    slower = run_locust(*_demo(15), "-u", "2", "-r", "2", "-t", "4s", "--baseline", "base.json",
                        "--json-summary", "slower.json", "--baseline-p99", "off")
    assert slower.returncode == 3, slower.output
    lines = _worse_lines(slower.output)
    assert [line.split()[3] for line in lines] == ["p50", "p90", "FPS"], slower.output
    saved = json.loads((tmp_path / "slower.json").read_text())
    assert saved["exit_code"] == 3 and saved["passed"] is False
    assert saved["baseline"]["worse"] == lines and set(lines) <= set(saved["slo_violations"])

    same = run_locust(*_demo(5), "-u", "2", "-r", "2", "-t", "4s", "--baseline", "base.json", *WIDE)
    assert same.returncode == 0, same.output
    assert "Compared with the baseline" in same.output and not _worse_lines(same.output)

    after = subprocess.run([sys.executable, "-m", "tfs_user.compare", "base.json", "slower.json", "--baseline-p99", "off"],
                           cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                           timeout=60)
    assert after.returncode == 3 and _worse_lines(after.stdout) == lines


def test_a_baseline_of_another_test_stops_the_run_before_it_starts(run_locust, tmp_path):
    base = run_locust(*_demo(5), "-u", "2", "-r", "2", "-t", "2s", "--json-summary", "base.json")
    assert base.returncode == 0, base.output
    for args, key in ((("--batch-size", "2"), "batch_size"), (("-u", "3"), "users"), (("--model-name", "other"), "model")):
        argv = ["-u", "2", "-r", "2", "-t", "2s", *args]
        run = run_locust(*_demo(5), *argv, "--baseline", "base.json", "--json-summary", "new.json", csv_prefix="")
        assert run.returncode == 2, run.output
        errors = [line for line in run.output.splitlines() if line.startswith("error: ")]
        assert errors == [errors[0]] and f"cannot compare: {key} is" in errors[0], run.output
        assert not (tmp_path / "new.json").exists()
    old = dict(json.loads((tmp_path / "base.json").read_text()))
    del old["format"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    run = run_locust(*_demo(5), "-u", "2", "-r", "2", "-t", "2s", "--baseline", "old.json", csv_prefix="")
    assert run.returncode == 2 and "from before baseline comparisons" in run.output, run.output
    assert "Traceback" not in run.output


def test_a_sweep_compares_each_step_and_the_best_fps(run_locust, tmp_path):
    sweep = ("-u", "2", "--sweep", "users:1,2", "--step-time", "5s")
    base = run_locust(*_demo(5), *sweep, "--json-summary", "base.json")
    assert base.returncode == 0, base.output
    steps = json.loads((tmp_path / "base.json").read_text())["steps"]
    assert [s["step"] for s in steps] == [1, 2] and all(s["hdr_histogram"] and s["windows"]["rows"] for s in steps)
    slower = run_locust(*_demo(15), *sweep, "--baseline", "base.json", "--json-summary", "new.json",
                        "--baseline-p99", "off", "--baseline-p90", "off")
    assert slower.returncode == 3, slower.output
    judged = json.loads((tmp_path / "new.json").read_text())["baseline"]["rows"]
    assert {(r["step"], r["figure"]) for r in judged if r["verdict"] == "worse"} >= {
        (None, "p50"), (1, "p50"), (2, "p50"), (None, "best_fps")}, judged


def test_processes_and_master_worker_runs_compare_their_merged_figures(run_locust, tmp_path):
    # 8 s: forked processes may take seconds to send their first request on a busy machine
    base = run_locust(*_demo(5), "-u", "4", "-r", "4", "-t", "8s", "--processes", "2", "--json-summary", "base.json")
    assert base.returncode == 0, base.output
    row = json.loads((tmp_path / "base.json").read_text())["rows"][-1]
    assert row["requests"] > 0 and sum(w["requests"] for w in row["windows"]["rows"]) == row["requests"]
    slower = run_locust(*_demo(15), "-u", "4", "-r", "4", "-t", "8s", "--processes", "2", "--baseline", "base.json",
                        "--baseline-p99", "off")
    assert slower.returncode == 3 and _worse_lines(slower.output)[0].startswith("Worse than baseline: p50 "), slower.output

    port = _free_port()
    workers = _start_workers(2, port, tmp_path)
    master = run_locust("--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                        "--expect-workers", "2", *_demo(15), "-u", "4", "-r", "4", "-t", "8s", "--baseline", "base.json",
                        "--json-summary", "master.json", "--baseline-p99", "off")
    _finish(workers)
    assert master.returncode == 3, master.output
    doc = json.loads((tmp_path / "master.json").read_text())
    assert doc["run"]["workers"] == 2
    row = doc["rows"][-1]
    assert row["requests"] > 0 and sum(w["requests"] for w in row["windows"]["rows"]) == row["requests"]
    assert [r["verdict"] for r in doc["baseline"]["rows"] if r["figure"] == "p50"] == ["worse"]
