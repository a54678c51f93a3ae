"""Sweeps: --sweep/--step-time parsing, the step plan, SLO verdicts, best step, per-step statistics and reports."""

import csv
import json
import subprocess
import sys

import pytest

from tfs_user.web import plot
from tfs_user.capacity import steps, plans as sweep
from tfs_user.capacity.steps import STEP_COLUMNS, StepRecorder, step_rows, write_steps_csv
from tfs_user.capacity.plans import Slo, Sweep, SweepError, parse_duration, parse_sweep

from conftest import ROOT


@pytest.mark.parametrize("text, seconds", [
    ("10s", 10.0), ("500ms", 0.5), ("1m", 60.0), ("2.5s", 2.5), ("4", 4.0), (" 3 s ", 3.0), ("1h", 3600.0),
])
def test_step_time_parses(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10x", "s", "-1s", "0s", "1.2.3s", "ten"])
def test_step_time_errors_name_the_value(text):
    with pytest.raises(SweepError) as e:
        parse_duration(text)
    message = str(e.value)
    assert message.startswith(f"--step-time {text!r} is not a duration")
    assert "expected" in message and "\n" not in message


@pytest.mark.parametrize("text, kind, values", [
    ("users:1,2,4,8,16", "users", (1, 2, 4, 8, 16)),
    ("rate:100,200,400", "rate", (100, 200, 400)),
    ("rate:100-1000:100", "rate", tuple(range(100, 1001, 100))),
    ("rate:50-200:75", "rate", (50, 125, 200)),
    ("rate:0.5,1.5", "rate", (0.5, 1.5)),
    ("users:1-4:1", "users", (1, 2, 3, 4)),
    (" USERS: 1, 2 ", "users", (1, 2)),
])
def test_sweep_parses(text, kind, values):
    assert parse_sweep(text) == Sweep(kind, values)


@pytest.mark.parametrize("text, fragment", [
    ("users", "is not a sweep; expected users:N,N,... or rate:R,R,..."),
    ("threads:1,2", "is not a sweep; expected users:N"),
    ("users:", "is not a sweep"),
    ("users:1,2.5", "'2.5' is not a user count; expected an integer >= 1"),
    ("users:0,1", "'0' is not a user count"),
    ("rate:100,-5", "is not a sweep"),
    ("rate:100,abc", "'abc' is not a rate; expected requests/s > 0"),
    ("rate:0,100", "'0' is not a rate"),
    ("rate:1000-100:100", "range end 100 is below its start 1000"),
    ("rate:100-200:0", "'0' is not a rate"),
    ("rate:1-100000:1", "has 100000 steps; expected at most 1000"),
    ("rate:100-200", "is not a sweep"),
])
def test_sweep_errors_name_the_value(text, fragment):
    with pytest.raises(SweepError) as e:
        parse_sweep(text)
    assert str(e.value).startswith(f"--sweep {text.strip()!r}")
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_plan_and_step_at():
    users_plan = sweep.plan(parse_sweep("users:1,2,4"), 4.0, rate=0.0)
    assert [(s.index, s.users, s.rate, s.start_s, s.warmup_s) for s in users_plan] == [
        (1, 1, 0.0, 0.0, 0.8), (2, 2, 0.0, 5.0, 0.8), (3, 4, 0.0, 10.0, 0.8)]  # 4 s each, a tick (1 s) apart
    assert [s.end_s - s.start_s for s in users_plan] == [4.0, 4.0, 4.0]  # every step the same length
    rate_plan = sweep.plan(parse_sweep("rate:100,200"), 30.0, users=16)
    assert [(s.users, s.rate, s.warmup_s) for s in rate_plan] == [(16, 100.0, 2.0), (16, 200.0, 2.0)]
    assert sweep.step_at(users_plan, 0.5) == (users_plan[0], False)
    assert sweep.step_at(users_plan, 0.9) == (users_plan[0], True)
    assert sweep.step_at(users_plan, 4.5) == (users_plan[1], False)  # between steps: no step's figures
    assert sweep.step_at(users_plan, 5.0) == (users_plan[1], False)
    assert sweep.step_at(users_plan, 13.99) == (users_plan[2], True)
    assert sweep.step_at(users_plan, 14.0) == (None, False)
    with pytest.raises(SweepError, match="step warm-up 5 s is not valid"):
        sweep.plan(parse_sweep("users:1"), 4.0, warmup_s=5)


SHAPE_SCRIPT = """
from tfs_user.capacity import plans as sweep
from tfs_user.capacity.shape import SweepShape

class Shape(SweepShape):
    steps = sweep.plan(sweep.parse_sweep("users:1,20"), 2.0)

shape = Shape()
ticks = []
for t in (0.1, 3.1, 5.0):  # 2 s steps, a tick (1 s) apart
    shape.get_run_time = lambda t=t: t
    ticks.append(shape.tick())
shape.get_run_time = lambda: 0.1
shape.stop()
ticks.append(shape.tick())
print(ticks)
"""


def test_sweep_shape_ticks_through_the_steps():
    # Locust is imported in a subprocess: its monkey-patching breaks this pytest process (see test_options)
    done = subprocess.run([sys.executable, "-c", SHAPE_SCRIPT], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    # step 2: 20 users at 100/s (at most 100 users/s: Locust warns above); after the last step or stop(): None
    assert done.stdout.strip() == "[(1, 10.0), (20, 100.0), None, None]"


def row(step, fps, p99, fail_ratio=0.0):
    return {"step": step, "users": step, "target_rps": 0.0, "fps": fps, "p99_ms": p99, "fail_ratio": fail_ratio}


def test_best_step_and_stop_after_first_miss():
    slo = Slo(p99_ms=50.0)
    rows = [row(1, 100.0, 10.0), row(2, 190.0, 30.0), row(3, 180.0, 45.0), row(4, 250.0, 80.0)]
    for r in rows:
        r["within_slo"] = sweep.within_slo(r, slo)
    assert [r["within_slo"] for r in rows] == [True, True, True, False]
    assert sweep.best_step(rows)["step"] == 2  # highest FPS within, not the last within
    assert [sweep.should_stop(r, slo) for r in rows] == [False, False, False, True]
    assert not sweep.should_stop(rows[3], slo, run_all=True)
    assert not sweep.should_stop(rows[3], Slo())  # no SLO: never stops early
    assert sweep.best_line(rows, slo) == \
        "Highest FPS within the SLO: 190.0 frames/s at step 2 (2 users; p99 30.000 ms)"
    assert sweep.best_line(rows[:1], slo).endswith("at step 1 (1 user; p99 10.000 ms)")
    assert sweep.best_line(rows[3:], slo) == "Highest FPS within the SLO: none (no step met it)"
    assert sweep.best_line(rows, Slo()) is None
    empty = row(5, None, None)
    assert sweep.slo_misses(empty, slo) == ["p99 n/a ms > 50 ms"]  # no figure is not a pass
    assert sweep.slo_misses(row(6, 90.0, 1.0, 0.2), Slo(min_fps=100, max_fail_ratio=0.1)) == [
        "FPS 90.000 < 100", "fail ratio 0.2000 > 0.1"]


def fill(recorder, index, latencies, service=None, failures=0, t0=1000.0):
    for i, ms in enumerate(latencies):
        recorder.record(index, ms, True, 2, t0 + i * 0.01, t0 + i * 0.01 + ms / 1000,
                        None if service is None else service[i])
    for _ in range(failures):
        recorder.record(index, 1.0, False, 2, t0, t0 + 0.001)


def test_step_recorder_merges_across_workers_exactly():
    worker_a, worker_b, alone = StepRecorder(), StepRecorder(), StepRecorder()
    a, b = [1.0 + i / 100 for i in range(100)], [200.0 + i for i in range(50)]
    fill(worker_a, 1, a, service=[0.5] * 100)
    fill(worker_b, 1, b, service=[0.7] * 50, failures=3)
    fill(worker_b, 2, [5.0])
    worker_a.record_warmup(1)
    for part, data in ((a, [0.5] * 100), (b, [0.7] * 50)):
        fill(alone, 1, part, service=data)
    fill(alone, 1, [], failures=3)
    master = StepRecorder()
    for worker in (worker_a, worker_b):
        master.merge(StepRecorder.from_message(worker.to_message()))
    assert sorted(master.steps) == [1, 2]
    merged, single = master.steps[1], alone.steps[1]
    assert merged.latency.requests == 153 and merged.latency.failures == 3 and merged.warmup == 1
    for p in (50, 90, 99, 99.9):
        assert merged.latency.percentile_ms(p) == single.latency.percentile_ms(p)
    assert merged.service.percentile_ms(90) == pytest.approx(0.7, abs=0.001)


def test_steps_csv_json_and_empty_cells(tmp_path):
    plan = sweep.plan(parse_sweep("users:1,2,4"), 4.0)
    recorder = StepRecorder()
    fill(recorder, 1, [2.0] * 10)
    fill(recorder, 2, [], failures=4)  # step 2: only failures; step 3: nothing at all
    recorder.record_warmup(3)
    rows = step_rows(plan, recorder, Slo(p99_ms=10.0))
    assert len(rows) == 3
    path = tmp_path / "out_tfs_steps.csv"
    write_steps_csv(path, rows)
    with open(path) as f:
        table = list(csv.reader(f))
    assert table[0] == ["Step", "Users", "Target req/s", "Requests", "Failures", "Requests/s", "FPS", "p50 ms",
                        "p90 ms", "p99 ms", "p99.9 ms", "Max ms", "Within SLO", "Loop lag p99 ms", "Loop lag max ms",
                        "Server requests", "Server request ms", "Server queue ms", "Server inference ms"]
    first, failed, empty = (dict(zip(table[0], r)) for r in table[1:])
    assert (first["Step"], first["Users"], first["Requests"], first["p99 ms"], first["Within SLO"]) == \
        ("1", "1", "10", "2.000", "yes")
    assert float(first["FPS"]) == pytest.approx(2 * float(first["Requests/s"]), rel=1e-4)
    assert first["Target req/s"] == ""  # closed loop: no target rate
    assert failed["Failures"] == "4" and failed["p50 ms"] == "" and failed["Max ms"] == "" and failed["Within SLO"] == "no"
    assert empty["Requests"] == "0" and empty["FPS"] == "" and empty["Requests/s"] == "" and empty["p99 ms"] == ""
    assert first["Server requests"] == first["Server queue ms"] == ""  # no --server-metrics: empty, never 0
    document = json.loads(steps.dumps(rows))
    assert [r["step"] for r in document] == [1, 2, 3]
    assert document[2]["fps"] is None and document[2]["p99_ms"] is None and document[2]["warmup_requests"] == 1
    assert document[0]["service_p90_ms"] is None  # closed loop: no service-time figures
    console = steps.format_steps(rows, sweep.best_line(rows, Slo(p99_ms=10.0)))
    assert console.splitlines()[-1].startswith("Highest FPS within the SLO: ")
    assert "missed: p99 n/a ms > 10 ms" in console
    assert console.splitlines()[1] == "TFS steps (measured part of each step; latency ms, closed loop: latency from " \
                                      "the actual send)"
    open_plan = sweep.plan(parse_sweep("rate:100,200"), 4.0, users=4)
    open_rows = step_rows(open_plan, recorder, Slo(p99_ms=10.0))
    assert steps.format_steps(open_rows).splitlines()[1] == (
        "TFS steps (measured part of each step; latency ms, open loop: latency from the scheduled send time, "
        "svc p90 = service time from the actual send)")


def test_plot_is_self_contained_html(tmp_path):
    plan = sweep.plan(parse_sweep("rate:100,200,400"), 4.0, users=4)
    recorder = StepRecorder()
    for index, base in ((1, 2.0), (2, 3.0), (3, 50.0)):
        fill(recorder, index, [base + i / 10 for i in range(50)])
    rows = step_rows(plan, recorder, Slo(p99_ms=20.0))
    samples = [(t, 100.0 + t, 2.0, 5.0 + t) for t in range(10)]
    path = tmp_path / "capacity.html"
    plot.write_plot(str(path), rows, samples, best_line=sweep.best_line(rows, Slo(p99_ms=20.0)), slo_p99_ms=20.0)
    page = path.read_text()
    assert page.count("src='data:image/png;base64,") == 2
    assert "id='latency-vs-fps'" in page and "id='over-time'" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count("<tr>") == 4 and "Highest FPS within the SLO" in page
    # nothing to draw: no images, still a valid page
    assert "data:image" not in plot.render([], [])
