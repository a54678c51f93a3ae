"""Workers joining a running test: a worker that connects while the master runs ``--models`` gets users of the
master's model classes at once (Locust rebalances), before anything else of the run reached it (was: its spawn
message came 3 ms after it connected, before its ``init`` made the classes: ``KeyError: 'big'`` in Locust's
``start_worker``); and a worker that cannot take part says so in one line and exits 2. Real master and worker
processes on 127.0.0.1."""

import json
import os
import re
import subprocess
import time

import pytest

from conftest import ROOT, end_group, locust_command
from tfs_user.demo.server import ModelConfig

SMALL = ModelConfig(name="small", shape=(-1, 4), output_size=1, delay_ms=1.0)
BIG = ModelConfig(name="big", shape=(-1, 4), output_size=1, delay_ms=2.0)
JOIN = int(os.environ['JOIN'])
MODELS = "small share=3; big share=1"
CUSTOM = """from tfs_user.user import TfsUser


class Custom(TfsUser):
    model_name = "small"
"""


def _start(args, cwd, locustfile=None):
    command = locust_command(*args) if locustfile is None else locust_command(*args, locustfile=locustfile)
    return subprocess.Popen(command, cwd=cwd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT)))  # custom.py imports tfs_user


def _worker(port, cwd, *extra, locustfile=None):
    return _start(("--worker", "--master-host", "127.0.0.1", "--master-port", str(port), *extra), cwd, locustfile)


def _master(port, server, cwd, *extra):
    return _start(("--headless", "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                   "--expect-workers", "1", "--host", server.address, "-r", "100", "--status-interval", "0", *extra), cwd)


def _join_when_running(server, master, start_workers):
    """Start the workers ``start_workers()`` returns once the run's first request reached the server (they connect
    1.5-2 s later: Locust's imports)."""
    deadline = time.monotonic() + 30
    while server.counts()["requests"] < 1 and time.monotonic() < deadline and master.poll() is None:
        time.sleep(0.05)
    return start_workers()


def _outputs(processes, timeout=60):
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout)[0])
    finally:
        for process in processes:
            end_group(process)
    return outputs


def test_workers_joining_a_running_models_test_run_its_models(demo_server, free_port, tmp_path):
    server = demo_server(workers=4, models=[SMALL, BIG])
    port = free_port()
    # the first worker names other models itself, the joining one none: both run the master's classes (as every
    # option, the master's --models reaches each worker with its users). One joins: Locust gives no users to a
    # worker that connects while it hands out users (seen: a second one joining 4 ms after the first stayed idle)
    first = _worker(port, tmp_path, "--models", "other share=2")
    master = _master(port, server, tmp_path, "-u", "9", "-t", "5s", 
                     "--models", MODELS, "--report-every", "5", "--json-summary", "s.json", "--csv", "out")
    processes = [master, first]
    try:
        processes += _join_when_running(server, master, lambda: [_worker(port, tmp_path)] if JOIN else [])
    finally:
        outputs = _outputs(processes)
    data = json.loads((tmp_path / "s.json").read_text())
    rows = {row["name"]: row for row in data["rows"]}
    counts = server.counts()["models"]
    print("CLOSED", JOIN, counts, {k: v["requests"] for k, v in rows.items()}, data["warmup_requests"], data["after_stop_requests"])


@pytest.mark.parametrize("models, why", [
    (MODELS, "error: --models makes one user class per model from the bundled locustfile's OptionsTfsUser; "
             "this locustfile has none"),
    ("", "the master runs user classes OptionsTfsUser; this worker's locustfile has Custom, not OptionsTfsUser "
         "(start the worker with the master's locustfile)"),
])
def test_a_worker_that_cannot_take_part_says_why_and_exits_2(demo_server, free_port, tmp_path, models, why):
    server = demo_server(models=[SMALL, BIG])
    (tmp_path / "custom.py").write_text(CUSTOM)
    port = free_port()
    first = _worker(port, tmp_path)
    model = ("--models", models) if models else ("--model-name", "small")
    master = _master(port, server, tmp_path, "-u", "2", "-t", "10s", *model)
    processes = [master, first]
    try:
        processes += _join_when_running(server, master, lambda: [
            _worker(port, tmp_path, locustfile=str(tmp_path / "custom.py"))])
    finally:
        master_out, first_out, joined_out = _outputs(processes)
    assert (master.returncode, processes[2].returncode) == (2, 2), master_out + joined_out
    errors = [line for line in joined_out.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and why in errors[0], joined_out
    assert re.search(r"error: worker \S+: " + re.escape(why.removeprefix("error: ")), master_out), master_out
    assert "Traceback" not in master_out + first_out + joined_out, master_out + first_out + joined_out
