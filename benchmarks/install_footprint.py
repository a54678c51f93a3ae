"""The full install (requirements.txt: tensorflow-serving-api, so TensorFlow) against the lean one
(deploy/install.sh: requirements-lean.txt, no TensorFlow), each in a fresh virtualenv of its own.

    python benchmarks/install_footprint.py DIR            build both venvs in DIR (minutes), then measure
    python benchmarks/install_footprint.py DIR --reuse    measure venvs built before in DIR

Prints a markdown table: install time (s, wall), venv size (MB), import time of the user and its
TF Serving messages (s, median of 5 fresh interpreters), and the peak RSS of a Locust worker (MB)
that ran 4 users x 100 requests against the demo server; lean/full ratios beside them and the load
average before and after (the machine is shared: read the ratios). Which message set each venv used
is printed too (``compiled`` for the lean one).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORT = ("import time; t = time.perf_counter(); import tfs_user.locustfile; "
          "from tfs_user.protocols.tfs import messages, tensors; messages.prediction_service_pb2_grpc; "
          "print(time.perf_counter() - t, messages.SOURCE)")


def _env(venv):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return dict(env, PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")


def _build(venv, lean):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    steps = ([["sh", str(ROOT / "deploy" / "install.sh")]] if lean else
             [["python", "-m", "pip", "install", "-q", "-r", "requirements.txt"],
              ["python", "-m", "pip", "install", "-q", "--no-deps", "."]])
    for step in steps:
        subprocess.run(step, check=True, cwd=ROOT, env=_env(venv), stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _size_mb(folder):
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def _import(venv, work):
    runs = [subprocess.run(["python", "-c", IMPORT], capture_output=True, text=True, check=True, cwd=work,
                           env=_env(venv)).stdout.split() for _ in range(5)]
    return statistics.median(float(r[0]) for r in runs), runs[0][1]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker_rss_mb(venv, work):
    env = _env(venv)
    server = subprocess.Popen(["python", "-m", "tfs_user.demo", "--port", "0", "--model-name", "small",
                               "--shape=-1,8,8,3", "--output-size", "10"], stdout=subprocess.PIPE, text=True,
                              cwd=work, env=env)
    try:
        address = server.stdout.readline().split()[-1]
        port = str(_free_port())
        worker = subprocess.Popen(["/usr/bin/time", "-f", "%M", "tfs-locust", "--worker", "--master-port", port],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=work, env=env)
        master = subprocess.run(["tfs-locust", "--master", "--headless", "--master-bind-host", "127.0.0.1",
                                 "--master-bind-port", port, "--expect-workers", "1", "--host", address,
                                 "--model-name", "small", "-u", "4", "-r", "4", "--iterations", "100"],
                                capture_output=True, text=True, cwd=work, env=env, timeout=300)
        assert master.returncode == 0, master.stdout + master.stderr
        return int(worker.communicate(timeout=60)[1].strip().splitlines()[-1]) / 1024
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="folder for the two virtualenvs (full/, lean/)")
    parser.add_argument("--reuse", action="store_true", help="measure venvs already built in DIR")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = {}
    for name in ("full", "lean"):
        venv = args.dir / name
        installed = None if args.reuse else _build(venv, lean=name == "lean")
        work = args.dir / f"{name}-work"
        work.mkdir(parents=True, exist_ok=True)
        import_s, source = _import(venv, work)
        rows[name] = {"install s": installed, "venv MB": _size_mb(venv), "import s": import_s,
                      "worker RSS MB": _worker_rss_mb(venv, work), "messages": source}
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min)\n")
    print("| | full (requirements.txt) | lean (deploy/install.sh) | lean / full |\n| --- | --- | --- | --- |")
    for key in ("install s", "venv MB", "import s", "worker RSS MB"):
        full, lean = rows["full"][key], rows["lean"][key]
        if full is None:
            continue
        digits = 2 if key == "import s" else 0
        print(f"| {key} | {full:.{digits}f} | {lean:.{digits}f} | {lean / full:.2f} |")
    print(f"| messages | {rows['full']['messages']} | {rows['lean']['messages']} | |")


if __name__ == "__main__":
    main()
