"""Start and stop the bundled demo server (``python -m tfs_user.demo_server``) as a child process.

Used by ``--demo-server``: the server runs in its own process (its own GIL and
threads), on a free loopback port that it prints on its first line.
"""

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

import gevent

START_TIMEOUT_S = 60.0
LISTENING = "demo server listening on "
METRICS = "demo server metrics on "
REST = " (REST on "


class DemoServerError(RuntimeError):
    """The demo server could not be started; one line saying why."""


@dataclass
class DemoProcess:
    process: subprocess.Popen
    address: str
    """``127.0.0.1:PORT``"""
    metrics_url: str = ""
    """``http://127.0.0.1:PORT/metrics``: its Prometheus page (``--server-metrics demo``)."""
    rest_address: str = ""
    """``127.0.0.1:PORT`` of its REST APIs (``--rest-port``): what an ``http://`` run with ``--demo-server`` tests."""


def start(extra_args="", stream=None):
    """Start the demo server on 127.0.0.1 port 0 and return a DemoProcess once it listens.

    ``extra_args`` is a shell-quoted string of demo server options (e.g.
    ``--delay-ms 2``); its address line goes to ``out`` (default stdout). Unless ``extra_args`` choose
    ``--metrics-port``, its metrics page is on a free loopback port too (``metrics_url``). Raises
    DemoServerError if it exits or stays silent for START_TIMEOUT_S seconds.
    """
    try:
        args = shlex.split(extra_args)
    except ValueError as e:
        raise DemoServerError(f"--demo-server-args {extra_args!r} cannot be parsed ({e}); expected options of python -m tfs_user.demo_server") from None
    metrics = [] if any(a.startswith("--metrics-port") for a in args) else ["--metrics-port", "0"]
    if not any(a.startswith("--rest-port") for a in args):  # both doors open: gRPC and REST (http:// runs)
        metrics += ["--rest-port", "0"]
    command = [sys.executable, "-m", "tfs_user.demo", "--host", "127.0.0.1", "--port", "0", *metrics, *args]
    # the child must find this package even when it is not installed (run from a checkout)
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tfs_user/demo/..
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = ""
    with gevent.Timeout(START_TIMEOUT_S, False):
        line = process.stdout.readline()
    if not line.startswith(LISTENING):
        process.kill()
        _, err = process.communicate()
        reason = err.strip().splitlines()[-1] if err.strip() else f"no '{LISTENING.strip()}' line within {START_TIMEOUT_S:g} s"
        raise DemoServerError(f"demo server did not start with arguments {extra_args!r}: {reason}")
    address, _, rest = line[len(LISTENING):].strip().partition(REST)
    rest_address = rest.rstrip(")")
    metrics_url = ""
    if "--metrics-port" in " ".join([*metrics, *args]):
        with gevent.Timeout(START_TIMEOUT_S, False):
            line = process.stdout.readline()
        metrics_url = line[len(METRICS):].strip() if line.startswith(METRICS) else ""
    print(f"[tfs] started demo server at {address}" + (f", REST at {rest_address}" if rest_address else "")
          + f" (pid {process.pid})"
          + (f", metrics at {metrics_url}" if metrics_url else ""), file=stream or sys.stdout, flush=True)
    return DemoProcess(process, address, metrics_url, rest_address)


def stop(demo, stream=None):
    """Stop the demo server (SIGTERM, then SIGKILL after 10 s) and print its final count line to ``out``
    (default stdout). Returns None."""
    if demo is None or demo.process.poll() is not None:
        return None
    demo.process.terminate()
    try:
        out, _ = demo.process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        demo.process.kill()
        out, _ = demo.process.communicate()
    for line in out.splitlines():
        print(f"[tfs] {line}", file=stream or sys.stdout, flush=True)
    return None
