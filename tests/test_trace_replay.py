"""Replaying a recorded trace in a run (issue 33): ``--arrival-trace FILE`` with ``--trace-speedup`` and
``--trace-loop``, through the open loop's dispatcher; each process its share of the lines."""

import json
import os
import signal
import subprocess

import pytest

from conftest import end_group, locust_command
from test_ctrl_c import ENV, _as_a_terminal_job, _wait_for
from tfs_user.capacity.traces import Trace, TraceIntervals
from tfs_user.demo.server import ModelConfig

TINY = ModelConfig(shape=(-1, 4), output_size=1)
LINES = 200


def times_of(gaps, count):
    """The send times (s) of the first ``count`` gaps of a gap source."""
    t, out = 0.0, []
    for _ in range(count):
        t += gaps.next()
        out.append(t)
    return out


def test_shares_of_the_trace_are_the_trace_exactly_also_when_looping():
    trace = Trace(tuple(0.1 * i + 0.05 * (i % 3) for i in range(10)))  # uneven gaps
    for parts in (1, 2, 3):
        shares = [TraceIntervals(trace, speedup=2, share=(i, parts)) for i in range(parts)]
        sent = sorted(t for gaps in shares for t in times_of(gaps, gaps.sends))
        assert sent == pytest.approx([t / 2 for t in trace.times])
        assert sum(g.sends for g in shares) == len(trace.times)
        assert all(g.next() == float("inf") for g in shares)  # each share ends with the trace
    # looping: the shares' second passes interleave as the whole trace's second pass does
    whole = times_of(TraceIntervals(trace, loop=True), 20)
    parts = [TraceIntervals(trace, loop=True, share=(i, 3)) for i in range(3)]
    counts = [len(range(i, 10, 3)) * 2 for i in range(3)]
    assert sorted(t for g, n in zip(parts, counts) for t in times_of(g, n)) == pytest.approx(whole)


def test_a_replay_keeps_its_send_times_when_the_rate_share_changes():
    from tfs_user.capacity.dispatcher import Dispatcher  # imports gevent, not Locust

    now = [0.0]
    trace = Trace((0.0, 0.1, 0.2, 0.3))
    dispatcher = Dispatcher(1.0, start=0.0, clock=lambda: now[0], sleep=lambda s: None,
                            intervals=TraceIntervals(trace, speedup=1.0))
    assert dispatcher.take().scheduled == 0.0
    now[0] = 0.15
    dispatcher.set_rate(50.0)  # users spawning changed this process's share of the rate: not the trace's times
    assert dispatcher.stats.unsent == 0
    now[0] = 0.35
    assert [dispatcher.take().scheduled for _ in range(2)] == pytest.approx([0.1, 0.2])
    assert not dispatcher.over
    assert dispatcher.take().scheduled == pytest.approx(0.3) and dispatcher.over
    assert dispatcher.end(100.0) == 0  # nothing after the trace's end falls due


@pytest.fixture
def trace_file(tmp_path):
    path = tmp_path / "short.trace"
    path.write_text("".join(f"{6.0 * i / LINES:.4f}\n" for i in range(LINES)))  # 200 lines over 6 s
    return path


def test_trace_replayed_with_two_processes_sends_every_line_once_and_ends_the_run(
        demo_server, run_locust, trace_file, free_port):
    server = demo_server(workers=4, delay_ms=1, models=[TINY])
    port = str(free_port())
    # -t is a safety bound only: the run ends when both workers sent their share (0.6 s at 10x)
    run = run_locust("--processes", "2", "--master-bind-port", port, "--master-port", port, "--host", server.address,
                     "-u", "4", "-r", "4", "-t", "60s", "--arrival-trace", str(trace_file), "--trace-speedup", "10",
                     "--status-interval", "0", "--json-summary", "summary.json", timeout=120)
    assert run.returncode == 0, run.output
    assert "the trace's 200 requests fell due " in run.output, run.output
    assert "(on the 2 workers with users); ending the run" in run.output, run.output
    data = json.loads((run.folder / "summary.json").read_text())
    loop = data["open_loop"]
    assert loop["arrival"] == "trace" and loop["trace_requests"] == LINES
    assert loop["sent"] + loop["unsent"] == LINES, loop
    assert int(run.tfs_csv()["Aggregated"]["Requests"]) == loop["sent"]
    # the server saw the trace's lines exactly once, plus each user's warm-up (sent outside the schedule)
    assert server.counts()["requests"] == LINES + data["warmup_requests"], (server.counts(), data["warmup_requests"])


@pytest.mark.parametrize("schedule", [("--arrival-trace", "short.trace", "--trace-speedup", "4"),
                                      ("--arrival-rate", "40", "--arrival", "constant", "-t", "3s")])
def test_a_worker_without_a_user_gets_no_part_of_the_schedule(demo_server, run_locust, trace_file, free_port,
                                                               schedule):
    # -u 1 over 2 processes: one worker has no user. Before, it kept every 2nd line of the trace: 100 of 200 were
    # neither sent nor counted (trace_requests 200, sent 100, unsent 0) and the run waited for -t
    server = demo_server(workers=2, delay_ms=1, models=[TINY])
    port = str(free_port())
    run = run_locust("--processes", "2", "--master-bind-port", port, "--master-port", port, "--host", server.address,
                     "-u", "1", "-r", "10", *schedule, "--status-interval", "0", "--json-summary", "s.json",
                     *(("-t", "60s") if "--arrival-trace" in schedule else ()), timeout=120)
    assert run.returncode == 0, run.output
    data = json.loads((run.folder / "s.json").read_text())
    loop = data["open_loop"]
    assert server.counts()["requests"] == loop["sent"] + data["warmup_requests"], (server.counts(), loop)
    if loop["arrival"] == "trace":
        assert loop["trace_requests"] == LINES and loop["sent"] + loop["unsent"] == LINES, loop
        assert loop["trace_cut_short"] is False and "Trace cut short" not in run.output, loop
        assert "the trace's 200 requests fell due " in run.output and "(on the 1 worker with users); ending the run" \
            in run.output, run.output  # ended by itself (1.5 s at 4x), not by -t
    else:  # the worker with the user has the whole rate (a lost half would send 20 req/s)
        assert loop["sent_rps"] > 0.75 * 40, loop


def test_a_trace_stopped_by_ctrl_c_says_how_much_of_it_fell_due(demo_server, tmp_path):
    # before, a Ctrl-C after 104 of 6000 lines printed the open-loop line and nothing said the trace was cut short
    server = demo_server(workers=2, delay_ms=1, models=[TINY])
    lines = 600
    (tmp_path / "long.trace").write_text("".join(f"{i / 10:.1f}\n" for i in range(lines)))  # 10 req/s for 60 s
    process = subprocess.Popen(locust_command("--headless", "--host", server.address, "-u", "2", "-r", "2",
                                              "--arrival-trace", "long.trace", "--status-interval", "0",
                                              "--json-summary", "s.json"),
                               cwd=tmp_path, env=ENV, preexec_fn=_as_a_terminal_job, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(lambda: server.counts()["ok"] >= 15)
        os.killpg(process.pid, signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    finally:
        end_group(process)
    loop = json.loads((tmp_path / "s.json").read_text())["open_loop"]
    due = loop["sent"] + loop["unsent"]
    assert loop["trace_cut_short"] is True and 0 < due < lines, loop
    assert (f"Trace cut short: the run stopped when {due} of the trace's {lines} requests had fallen due "
            f"({loop['sent']} sent, {loop['unsent']} never sent); the other {lines - due} were not due yet") in output, \
        output[-3000:]


def test_a_looping_trace_goes_on_until_the_run_time(demo_server, run_locust, trace_file):
    server = demo_server(workers=2, delay_ms=1, models=[TINY])
    run = run_locust("--host", server.address, "-u", "4", "-r", "4", "-t", "3s", "--arrival-trace", str(trace_file),
                     "--trace-speedup", "10", "--trace-loop", "--warmup-iterations", "0", "--status-interval", "0")
    assert run.returncode == 0, run.output
    assert "ending the run" not in run.output
    sent = int(run.tfs_csv()["Aggregated"]["Requests"])
    assert sent > LINES, sent  # 0.6 s a pass: a 3 s run is several passes
    assert server.counts()["requests"] == sent


@pytest.mark.parametrize("content, extra, message", [
    ("0.1\n0.05\n", (), "line 2: time 0.05 is before the line above's 0.1; expected ascending send times"),
    ("0.1\n-1\n", (), "line 2: time -1 is negative"),
    ("# nothing\n\n", (), "is empty; expected send times"),
    ("0\n0.1\n", ("--arrival-rate", "10"), "and --arrival-rate 10 do not go together"),
    ("0\n0.1\n", ("--sweep", "rate:10,20"), "and --sweep 'rate:10,20' do not go together"),
])
def test_a_bad_trace_is_one_line_and_exit_2_before_any_user_starts(run_locust, tmp_path, content, extra, message):
    (tmp_path / "bad.trace").write_text(content)
    run = run_locust("--demo-server", "-u", "1", "-t", "5s", "--arrival-trace", "bad.trace", *extra, csv_prefix=None)
    assert run.returncode == 2, run.output
    lines = [line for line in run.output.splitlines() if message in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), run.output
    assert "Traceback" not in run.output and "Ramping to" not in run.output, run.output


def test_the_trace_options_from_the_environment_and_a_config_file_take_effect(run_locust, tmp_path):
    (tmp_path / "bad.trace").write_text("0.2\n0.1\n")
    message = "error: trace 'bad.trace' line 2: time 0.1 is before the line above's 0.2"
    run = run_locust("--demo-server", "-u", "1", "-t", "5s", csv_prefix=None, env={"TFS_ARRIVAL_TRACE": "bad.trace"})
    assert run.returncode == 2 and message in run.output, run.output
    (tmp_path / "trace.conf").write_text("arrival-trace = bad.trace\ntrace-speedup = 10\n")
    run = run_locust("--config", "trace.conf", "--demo-server", "-u", "1", "-t", "5s", csv_prefix=None)
    assert run.returncode == 2 and message in run.output, run.output


def test_workers_start_their_shares_of_the_trace_at_one_moment(demo_server, run_locust, tmp_path, free_port):
    # -u 2 -r 0.5: Locust hands the second worker its user 2 s after the first's. Before, each worker began its
    # share when its own first user did, so the second worker's half of the trace went out late by that (the
    # server saw the trace stretched by it, less the first worker's own start-up); now both begin at one moment.
    server = demo_server(workers=4, delay_ms=1, models=[TINY], record=True)
    lines, gap = 40, 0.025
    (tmp_path / "even.trace").write_text("".join(f"{i * gap:.3f}\n" for i in range(lines)))
    port = str(free_port())
    run = run_locust("--processes", "2", "--master-bind-port", port, "--master-port", port, "--host", server.address,
                     "-u", "2", "-r", "0.5", "-t", "60s", "--arrival-trace", "even.trace", "--warmup-iterations", "0",
                     "--status-interval", "0", "--json-summary", "summary.json", timeout=120)
    assert run.returncode == 0, run.output
    start = json.loads((run.folder / "summary.json").read_text())["open_loop"]["trace_start"]
    workers = {w["worker_index"]: w for w in start["workers"]}
    assert sorted(workers) == [0, 1], start
    # the baseline, measured in this run: how far apart the workers' first users were ready (the shift each
    # worker's own start would have given)
    baseline_ms = abs(workers[0]["ready_ms"] - workers[1]["ready_ms"])
    assert baseline_ms >= 500, start
    assert all(abs(w["start_offset_ms"]) < baseline_ms / 4 for w in workers.values()), start
    assert start["spread_ms"] < baseline_ms / 4, start
    assert "Trace start: one moment for every worker" in run.output, run.output
    # on the wire: the server saw the trace's span, not the span stretched by the later worker's delay
    arrivals = [r.time for r in server.received()]
    assert len(arrivals) == lines
    stretch_ms = (max(arrivals) - min(arrivals) - (lines - 1) * gap) * 1000.0
    assert stretch_ms < baseline_ms / 2, (stretch_ms, start)


def test_trace_start_figures_say_when_a_worker_was_late_for_the_moment():
    from types import SimpleNamespace

    from tfs_user.capacity import trace_start  # imports gevent, not Locust

    c = SimpleNamespace(trace_start=1000.0, trace_starts={1: (312.5, 305.25), 0: (-480.0, 0.25)})
    summary = trace_start.summary(c)
    assert summary == {"workers": [{"worker_index": 0, "ready_ms": -480.0, "start_offset_ms": 0.25},
                                   {"worker_index": 1, "ready_ms": 312.5, "start_offset_ms": 305.25}],
                       "spread_ms": 305.0}
    assert trace_start.line(summary) == (
        "Trace start: one moment for every worker; first send after it (minus its trace time): worker 0 +0.250 ms, "
        "worker 1 +305.250 ms (spread 305.000 ms); first user ready: worker 0 480.0 ms before, worker 1 312.5 ms after")
    assert trace_start.summary(SimpleNamespace(trace_start=None, trace_starts={})) is None  # a local run: no moment


def test_a_share_without_lines_ends_and_a_worker_joining_mid_trace_sends_none(demo_server, run_locust, tmp_path,
                                                                              free_port):
    import subprocess
    import time

    from conftest import end_group, locust_command

    server = demo_server(workers=4, delay_ms=1, models=[TINY])
    # a 1-line trace on 2 processes: the second's share has no line; it is over as it opens (was: no
    # "sent their share" from it, and the run went on to -t: "sent 1 requests at 0.1 req/s" in a 12 s run)
    (tmp_path / "one.trace").write_text("0.0\n")
    port = str(free_port())
    run = run_locust("--processes", "2", "--master-bind-port", port, "--master-port", port, "--host", server.address,
                     "-u", "2", "-r", "100", "-t", "60s", "--arrival-trace", "one.trace", "--status-interval", "0",
                     timeout=120)
    assert run.returncode == 0, run.output
    assert "the trace's 1 request fell due and was sent (on the 2 workers with users); ending the run" in run.output, \
        run.output
    # a worker that joins while a trace runs (Locust rebalances users to it) gets no lines: the lines were split at
    # the moment and the first worker sends them all (was: 90 sends of a 60-line trace, 30 of them twice)
    (tmp_path / "t.trace").write_text("".join(f"{0.1 * i:.1f}\n" for i in range(60)))
    port = str(free_port())
    master = subprocess.Popen(locust_command("--headless", "--master", "--master-bind-host", "127.0.0.1",
                                             "--master-bind-port", port, "--expect-workers", "1", "--host",
                                             server.address, "-u", "4", "-r", "100", "-t", "60s", "--arrival-trace",
                                             "t.trace", "--status-interval", "0", "--json-summary", "s.json"),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    worker = ["--worker", "--master-host", "127.0.0.1", "--master-port", port]
    workers = [subprocess.Popen(locust_command(*worker), cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while server.counts()["requests"] < 10 and time.monotonic() < deadline:  # the trace runs (after warm-ups)
            time.sleep(0.05)
        workers.append(subprocess.Popen(locust_command(*worker), cwd=tmp_path, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True))
        output, _ = master.communicate(timeout=90)
    finally:
        for process in (master, *workers):
            end_group(process)
    assert master.returncode == 0, output
    assert "Sending spawn jobs of 4 users at 100.00 spawn rate to 2 ready workers" in output, output  # it joined
    loop = json.loads((tmp_path / "s.json").read_text())["open_loop"]
    assert (loop["sent"], loop["unsent"], loop["trace_requests"]) == (60, 0, 60), loop
    warmups = json.loads((tmp_path / "s.json").read_text())["warmup_requests"]
    assert server.counts()["requests"] == 60 + warmups + 1 + 2  # + the first run's line and its 2 warm-ups
    assert "the trace's 60 requests fell due and were sent (on the 1 worker with users); ending the run" in output, \
        output
