"""Ctrl-C twice or three times: the second ends the run's stop at once, the third the process (seen: a second
Ctrl-C while an open-loop stop waited for its requests in flight printed a KeyboardInterrupt traceback, exited -2
and wrote no summary). Real `locust` processes, real SIGINTs to their process group, a real demo server."""

import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import ctrl_c_once_it_says, end_group, locust_command
from tfs_user.demo.server import ModelConfig

SMALL = ModelConfig(name="small", shape=(-1, 8, 8, 3), output_size=10)
ENV = dict(os.environ, PYTHONUNBUFFERED="1")
SLOW_MS = 4000
"""The server's time per call: longer than any stop that does not wait for it."""


def _as_a_terminal_job():
    os.setpgrp()  # a process group of its own, as a terminal's job
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job of a shell starts with SIGINT ignored


def _wait_for(condition, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize("mode", ["single", "processes", "master"])
def test_a_second_ctrl_c_ends_the_stop_at_once_with_what_completed(tmp_path, demo_server, free_port, mode):
    """single, processes: the group gets both (a terminal's Ctrl-C); master: only the master of two workers of their
    own (other machines), whose final reports wait for their calls in flight."""
    server = demo_server(models=[SMALL], delay_ms=SLOW_MS)
    args = ["--headless", "--host", server.address, "-u", "4", "-r", "4", "--model-name", "small", "--synthetic-shape",
            "8,8,3", "--warmup-iterations", "0", "--arrival-rate", "20", "--arrival", "constant", "--timeout", "10",
            "--json-summary", "s.json", "--status-interval", "0"]
    port = free_port()
    if mode == "processes":
        args += ["--processes", "2"]  # a free master port of its own (tfs_user.master_port)
    elif mode == "master":
        args += ["--master", "--expect-workers", "2", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    process = subprocess.Popen(locust_command(*args), cwd=tmp_path, env=ENV, preexec_fn=_as_a_terminal_job,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    workers = [subprocess.Popen(locust_command("--worker", "--master-port", str(port)), cwd=tmp_path, env=ENV,
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2 if mode == "master" else 0)]

    def ctrl_c():
        if mode == "master":
            process.send_signal(signal.SIGINT)
        else:
            os.killpg(process.pid, signal.SIGINT)

    try:
        _wait_for(lambda: server.counts()["requests"] >= 4)  # every user has a call on the wire, none answered
        assert server.counts()["requests"] == 4 and process.poll() is None
        ctrl_c()  # the stop waits for those 4 (open loop: they count)
        time.sleep(0.3)
        ctrl_c()  # ... not any more
        output = process.communicate(timeout=60)[0]
        answered = server.counts()["ok"]
    finally:
        for p in [process, *workers]:
            end_group(p)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-4000:]
    assert process.returncode == 130, output[-3000:]
    assert answered == 0, (answered, output[-3000:])  # ended before any call's answer: nothing was waited for
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["exit_code"], summary["passed"], summary["rows"][-1]["requests"]) == (130, False, 0)
    reports = " or the workers' final reports" if mode != "single" else ""
    assert (f"Interrupted: a second Ctrl-C ended the run without waiting for its requests in flight{reports}; "
            "exit code 130") in output, output[-3000:]
    assert "Ctrl-C again: ending now" in output
    if mode == "master":  # the workers never heard the Ctrl-C: the master names the reports it did not wait for
        assert re.search(r"^Second Ctrl-C: the final reports of worker\(s\) \S+, \S+ were not waited for; their "
                         r"requests since their last report \(every 3 s\) are not counted$", output, re.M), output[-3000:]
        return
    # each process that held them says how many it left out: all 4
    left = re.findall(r"WARNING/tfs_user\.control: Second Ctrl-C: (\d+) open-loop request\(s\) in flight were not "
                      r"waited for; they are left out", output)
    assert sum(map(int, left)) == 4 and len(left) == (2 if mode == "processes" else 1), output[-3000:]


SLOW_TEARDOWN = """import gevent
from locust import events

from tfs_user.user import OptionsTfsUser  # noqa: F401


@events.quitting.add_listener
def slow_teardown(**kwargs):  # runs after tfs-locust's own (quitting listeners run in reverse order)
    print("teardown begins", flush=True)
    gevent.sleep(60)
"""


def test_a_third_ctrl_c_exits_at_once_with_the_verdict_the_files_carry(tmp_path, demo_server):
    """A stop that a second Ctrl-C cannot shorten (here a locustfile's own teardown): the third ends the process,
    with the exit code of the summary already written (they agree), writing nothing more."""
    (tmp_path / "slow_teardown.py").write_text(SLOW_TEARDOWN)
    server = demo_server(models=[SMALL], delay_ms=2)
    process = subprocess.Popen(locust_command("--headless", "--host", server.address, "-u", "2", "-r", "2",
                                              "--model-name", "small", "--synthetic-shape", "8,8,3", "--json-summary",
                                              "s.json", "--status-interval", "0", locustfile="slow_teardown.py"),
                               cwd=tmp_path, env=dict(ENV, PYTHONPATH=str(os.path.dirname(os.path.dirname(__file__)))),
                               preexec_fn=_as_a_terminal_job, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        _wait_for(lambda: server.counts()["ok"] >= 50)
        os.killpg(process.pid, signal.SIGINT)
        for line in process.stdout:
            lines.append(line)
            if line.startswith("teardown begins"):
                break
        began = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(process.pid, signal.SIGINT)
        output = "".join(lines) + process.communicate(timeout=60)[0]
        took_s = time.monotonic() - began
    finally:
        end_group(process)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-4000:]
    assert "Ctrl-C a third time: exiting now; nothing more is written" in output, output[-3000:]
    assert took_s < 30, took_s  # the teardown's 60 s were not waited for (a bound, not a timing claim)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert process.returncode == summary["exit_code"] == 0, output[-3000:]
    assert "TFS summary" not in output  # printed at Locust's quit, which never came


def test_ctrl_c_while_a_headless_master_waits_for_its_workers_is_one_line(tmp_path, demo_server, free_port):
    """Locust's wait for --expect-workers lets a KeyboardInterrupt out (seen: a traceback, exit -2): one line, 130."""
    server = demo_server(models=[SMALL])
    process = subprocess.Popen(locust_command("--headless", "--host", server.address, "--model-name", "small",
                                              "--synthetic-shape", "8,8,3", "-u", "2", "--master", "--expect-workers",
                                              "2", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                                              str(free_port())),
                               cwd=tmp_path, env=ENV, preexec_fn=_as_a_terminal_job, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:  # Locust's own line, 5 s into its wait (no worker comes)
        output = ctrl_c_once_it_says(process, "Waiting for workers to be ready, 0 of 2 connected")
    finally:
        end_group(process)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-4000:]
    assert process.returncode == 130 and output.rstrip().endswith("stopped: Ctrl-C before the test started"), output
