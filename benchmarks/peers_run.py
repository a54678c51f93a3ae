"""Processes of ``benchmarks/peers.py``: the peers' virtualenvs, the demo server, a CPU hog, and one run of each tool.

Every process started here is ended here (by its pid), also on failure or timeout. Each
``run_*`` returns ``(measurements, error)``: ``{step: measurement}`` (see ``peers_table``) and
None, or ``{}`` and one line saying why the run gave nothing.
"""

import json
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from peers_table import ours_steps, parse_loadgen_summary, parse_perf_analyzer_csv, perf_analyzer_delays

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = {  # name -> (pip requirements, file in the venv that shows it is built)
    "perf_analyzer": (["tritonclient[grpc]==2.51.0", "nvidia-cuda-runtime-cu12"], "bin/perf_analyzer"),
    "loadgen": (["mlcommons-loadgen", "grpcio"], "bin/python"),
}
LIBB64 = "/usr/lib/x86_64-linux-gnu/libb64.so.0d"
SERVER_ARGS = ["--model-name", "null", "--shape=-1,4", "--output-size", "1", "--delay-ms", "5", "--workers", "8"]


def log(message):
    print(f"[peers] {message}", file=sys.stderr, flush=True)


def peer_ready(folder, name):
    """True when ``folder/name`` holds a built venv (for the smoke test: it never builds)."""
    return (Path(folder) / name / PEERS[name][1]).exists() and (Path(folder) / name / ".built").exists()


def build_peer(folder, name):
    """Create ``folder/name`` (a venv) and pip-install the peer into it, once; returns its path or raises RuntimeError."""
    path = Path(folder) / name
    if peer_ready(folder, name):
        return path
    requirements, _ = PEERS[name]
    log(f"building {name} in {path} (pip install {' '.join(requirements)})")
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    done = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
                          capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(requirements)} into {path} failed: {done.stderr.strip()[-300:]}")
    (path / ".built").write_text(" ".join(requirements) + "\n")
    return path


def perf_analyzer_command(path):
    """(executable, env) of the venv's perf_analyzer, or raises RuntimeError with the one-line fix."""
    if not os.path.exists(LIBB64):
        raise RuntimeError("perf_analyzer needs Debian's libb64-0d: apt-get install libb64-0d")
    libs = list(path.glob("lib/python*/site-packages/nvidia/cuda_runtime/lib"))
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join([str(p) for p in libs] + [os.environ.get("LD_LIBRARY_PATH", "")]))
    return str(path / "bin" / "perf_analyzer"), env


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")


class Server:
    """``python -m tfs_user.demo`` on 127.0.0.1, a free port; ``address`` is HOST:PORT."""

    def __init__(self, extra=()):
        self.process = subprocess.Popen([sys.executable, "-m", "tfs_user.demo", "--host", "127.0.0.1", "--port", "0",
                                         *SERVER_ARGS, *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env=_env(), cwd=ROOT)
        line = self.process.stdout.readline()
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"demo server did not start: {line.strip()!r}")
        self.address = line.rsplit(" ", 1)[1].strip()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Hog:
    """``python -c 'while 1: pass'`` for the lifetime of the object (``count`` = 0: nothing)."""

    def __init__(self, count):
        self.processes = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(count)]

    def stop(self):
        for process in self.processes:
            process.kill()
            process.wait()


def _run(command, timeout, **kwargs):
    """subprocess.run that kills the child on timeout; returns (returncode, stdout+stderr)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        return -9, output + f"\n(killed after {timeout:g} s)"
    return process.returncode, output


def _last_line(text):
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else "(no output)"


def run_ours(address, sweep, users, step_s):
    """Our tool: ``locust -f locustfile.py --headless --sweep SWEEP --step-time STEP_S``, steps from ``--json-summary``.

    Returns ``({"schedule": steps, "service": steps}, error)``: latency from the scheduled send and
    service time from the actual send (the same in a closed loop, where nothing is scheduled)."""
    steps = len(sweep.split(":", 1)[1].split(","))
    with tempfile.TemporaryDirectory(prefix="peers-ours-") as folder:
        summary = os.path.join(folder, "summary.json")
        command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "--host", address,
                   "-u", str(users), "-r", str(users), "--model-name", "null", "--sweep", sweep,
                   "--step-time", f"{step_s:g}s", "--sweep-all-steps", "--json-summary", summary, "--only-summary",
                   "--status-interval", "0", "--loglevel", "WARNING"]
        code, output = _run(command, steps * step_s + 120, cwd=folder, env=_env())
        if not os.path.exists(summary):
            return {"schedule": {}, "service": {}}, f"locust exit code {code}: {_last_line(output)}"
        with open(summary) as f:
            data = json.load(f)
        error = None if code == 0 else f"locust exit code {code}: {_last_line(output)}"
        return {latency: ours_steps(data, latency) for latency in ("schedule", "service")}, error


def run_perf_analyzer(path, address, closed_range, rates, step_s, threads):
    """perf_analyzer ``--concurrency-range`` (closed_range ``a:b:c``) or ``--request-rate-range`` (rates ``a:b:c``, Poisson)."""
    exe, env = perf_analyzer_command(path)
    window_ms = max(500, int(step_s * 0.8 * 1000 / 3))  # three stable windows ~ our step's measured part
    with tempfile.TemporaryDirectory(prefix="peers-pa-") as folder:
        report = os.path.join(folder, "pa.csv")
        command = [exe, "--service-kind", "tfserving", "-m", "null", "-u", address, "-i", "grpc",
                   "--shape", "input:1,4", "--input-data", "zero", "-p", str(window_ms), "-s", "100",
                   "--max-threads", str(threads), "-f", report]
        command += (["--concurrency-range", closed_range] if closed_range else
                    ["--request-rate-range", rates, "--request-distribution", "poisson"])
        lo, hi, by = (int(x) for x in (closed_range or rates).split(":"))
        code, output = _run(command, (hi - lo) // by * 30 + 120, cwd=folder, env=env)
        if code != 0 or not os.path.exists(report):
            return {}, f"perf_analyzer exit code {code}: {_last_line(output)}"
        with open(report) as f:
            steps = parse_perf_analyzer_csv(f.read(), report)
    for rate, percent in perf_analyzer_delays(output).items():
        if rate in steps:
            steps[rate]["note"] = f"{percent:g}% of requests delayed"
    return steps, None


def write_request(folder):
    """One serialized PredictRequest for the LoadGen SUT (model null, input [1,4] float32 zeros); returns its path."""
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from tfs_user.protocols.tfs.messages import fill_model_spec, predict_pb2
    from tfs_user.protocols.tfs.tensors import ndarray_to_tensor_proto

    request = predict_pb2.PredictRequest()
    fill_model_spec(request.model_spec, "null", signature_name="serving_default")
    request.inputs["input"].CopyFrom(ndarray_to_tensor_proto(np.zeros((1, 4), np.float32)))
    path = os.path.join(folder, "request.bin")
    with open(path, "wb") as f:
        f.write(request.SerializeToString())
    return path


def run_loadgen(path, address, rates, step_s, request_file, seed=0):
    """LoadGen Server scenario at each rate (``benchmarks/peers_loadgen_sut.py`` in the LoadGen venv), its Poisson
    schedule drawn from ``seed``."""
    rate_list = [int(r) for r in rates]
    with tempfile.TemporaryDirectory(prefix="peers-lg-") as folder:
        command = [str(path / "bin" / "python"), str(HERE / "peers_loadgen_sut.py"), "--target", address,
                   "--request-file", request_file, "--rates", ",".join(map(str, rate_list)),
                   "--duration-s", f"{step_s * 0.8:g}", "--out-dir", folder, "--seed", str(seed)]
        code, output = _run(command, len(rate_list) * step_s * 3 + 60, cwd=folder)
        steps = {}
        for line in output.splitlines():
            if line.startswith("{"):
                done = json.loads(line)
                with open(done["summary"]) as f:
                    step = parse_loadgen_summary(f.read(), done["summary"])
                if done["errors"]:
                    step["note"] = ", ".join(filter(None, [step["note"], f"{done['errors']} errors"]))
                steps[int(done["rate"])] = step
        if code != 0 or len(steps) != len(rate_list):
            return steps, f"LoadGen exit code {code}: {_last_line(output)}"
        return steps, None
