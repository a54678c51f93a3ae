"""Shared fixtures: a real demo TFS server on 127.0.0.1 port 0, real `locust` subprocesses."""

import contextlib
import csv
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

# This process runs gRPC servers (DemoServer) on threads and starts subprocesses at the same time.
# gRPC's fork support (on by default in grpcio) restarts its event-engine poller in the forked
# child before exec; the child then closes its file descriptors and that poller aborts it
# (seen: "Epoll1Poller ... epoll_wait error: Bad file descriptor", exit -6, a few runs in 500).
# The children here always exec, so fork support is off for this process only: set before gRPC
# initializes, removed again so that the locust processes we start keep their default.
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "0"
import grpc  # noqa: E402

grpc.insecure_channel("127.0.0.1:9").close()  # initializes gRPC's core, which reads the variable
del os.environ["GRPC_ENABLE_FORK_SUPPORT"]

from tfs_user.demo.server import DemoServer, ModelConfig  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = str(ROOT / "locustfile.py")


@pytest.fixture
def demo_server():
    """Factory: ``demo_server(delay_ms=2, models=[...])`` starts a DemoServer on a free port; stopped after the test."""
    servers = []

    def start(**kwargs):
        server = DemoServer(**kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@contextlib.contextmanager
def http_pages(handler):
    """Serve ``handler`` (a BaseHTTPRequestHandler class) on 127.0.0.1, a free port, in a thread; yields the base
    URL ``http://127.0.0.1:PORT``; shut down and closed when the block ends."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def free_port():
    """Factory: ``free_port()`` -> a TCP port on 127.0.0.1 that was free a moment ago (for master and web ports)."""

    def pick():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    return pick


@pytest.fixture
def small_model():
    """A cheap model (input [-1,8,8,3] float32) so that tests measure the client, not the numpy model."""
    return ModelConfig(name="small", input_name="input", shape=(-1, 8, 8, 3), output_size=10)


@pytest.fixture
def small_images(tmp_path):
    """A .npy file of 10 float32 images [10,8,8,3]."""
    path = tmp_path / "imgs.npy"
    np.save(path, np.random.default_rng(1).uniform(0, 255, (10, 8, 8, 3)).astype(np.float32))
    return str(path)


@dataclass
class Run:
    returncode: int
    output: str
    folder: Path

    def tfs_csv(self, prefix="out"):
        """Rows of PREFIX_tfs.csv by name."""
        with open(self.folder / f"{prefix}_tfs.csv") as f:
            return {row["Name"]: row for row in csv.DictReader(f)}

    def locust_csv(self, prefix="out"):
        """Rows of Locust's own PREFIX_stats.csv by name."""
        with open(self.folder / f"{prefix}_stats.csv") as f:
            return {row["Name"]: row for row in csv.DictReader(f)}

    def failures_csv(self, prefix="out"):
        with open(self.folder / f"{prefix}_failures.csv") as f:
            return list(csv.DictReader(f))


def locust_command(*args, locustfile=LOCUSTFILE):
    return [sys.executable, "-m", "locust", "-f", locustfile, *args]


def ctrl_c_once_it_says(process, text, timeout_s=60):
    """Read ``process``'s output (stdout, text mode, its own process group) until a line holds ``text``, send
    SIGINT to its group (a terminal's Ctrl-C) and return everything it printed once it ended. The caller ends
    the group (``end_group``) whatever happens."""
    lines = []
    for line in process.stdout:  # the tool's own line says when: no sleep that a busy machine outruns
        lines.append(line)
        if text in line:
            break
    os.killpg(process.pid, signal.SIGINT)
    return "".join(lines) + process.communicate(timeout=timeout_s)[0]


def end_group(process, grace_s=10.0):
    """End ``process`` and every process it started (its own process group, see ``run_group``): SIGTERM,
    then SIGKILL after ``grace_s`` seconds. Safe to call for a process that already ended."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:  # forked --processes workers may outlive their parent: the whole group, whatever is left
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_group(command, timeout, **kwargs):
    """``subprocess.run`` for a command that may start processes of its own (``--processes`` workers, a
    demo server): it runs in a new process group, which is ended when it finishes, fails or times out
    (``subprocess.run`` would kill only the first process). Returns a CompletedProcess (text output);
    raises subprocess.TimeoutExpired after ending the group."""
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, **kwargs)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        end_group(process)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.fixture
def run_locust(tmp_path):
    """``run_locust(*args, timeout=120)`` runs a real headless `locust` in tmp_path with --csv out; returns a Run."""

    def run(*args, timeout=120, csv_prefix="out", headless=True, env=None):
        command = locust_command(*(["--headless"] if headless else []), *args,
                                 *(["--csv", csv_prefix] if csv_prefix else []))
        full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        done = run_group(command, timeout, cwd=tmp_path, env=full_env)
        return Run(done.returncode, done.stdout + done.stderr, tmp_path)

    return run


def _descendants(pid):
    """Pids of every living descendant of ``pid`` (from /proc), children first."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(children.get(child, []))
    return found


SPARED_GROUPS = set()
"""Process groups a module-scoped fixture keeps across its tests (e.g. one MLServer per module); the
fixture ends them itself, by pid, when the module ends."""


def _group(pid):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.fixture(autouse=True)
def _end_leftover_processes():
    """Every process a test started (and what those started) ends when the test ends, passed or failed:
    a test's own cleanup comes first; whatever is still alive then gets SIGTERM, then SIGKILL
    (but for SPARED_GROUPS, whose module-scoped fixture ends them)."""
    yield
    leftovers = [pid for pid in _descendants(os.getpid()) if _group(pid) not in SPARED_GROUPS]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in leftovers:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while leftovers and time.monotonic() < deadline:
            leftovers = [p for p in leftovers if _alive(p)]
            time.sleep(0.05)


def _alive(pid):
    try:
        os.waitpid(pid, os.WNOHANG)  # reap our own children; others are reaped by their parents
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _no_locust_in_the_test_process(request):
    """Fail the test that imported Locust into this process: its gevent monkey-patching turns the
    DemoServers' threads into greenlets and later tests hang (seen) or their subprocesses abort."""
    before = "locust" in sys.modules
    yield
    if not before and "locust" in sys.modules:
        pytest.fail(f"{request.node.nodeid} imported Locust into the pytest process; run that code in a subprocess "
                    "or import a module that needs neither Locust nor gRPC (tests/test_layout.py)")
