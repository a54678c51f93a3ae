"""Cost of our HTTP path, side by side in one run (issue 31): ours vs Locust's FastHttpUser vs perf_analyzer -i http.

For each body, [1,4] and [1,224,224,3] float32 (uniform random values), as KServe v2 REST JSON and binary
tensors, against the same demo server (its own process, ``--rest-port``):

- ours: ``locust -f locustfile.py --protocol kserve --host http://... --binary-data on|off``, closed loop;
- FastHttpUser: Locust's own HTTP user posting the same prebuilt body (``http_peer_locustfile.py``), the
  bytes our factory built (``tfs_user.protocols.kserve.rest.InferBodies``); HttpUser (requests) beside it: the
  client we did not choose;
- perf_analyzer ``-i http`` (KServe v2 REST; ``--input-tensor-format binary|json``), same concurrency.

Each client runs ``--seconds``; figures come from a window inside the run (from ``--settle`` s after the server
saw the client's first request, so start-up and building the bodies stay out; ``--repeat`` times, clients
alternating): requests
counted by the demo server's own metrics page (``:tensorflow:serving:request_count``), CPU seconds of the
client's and the server's processes from ``/proc/PID/stat``. Printed per row: req/s, client CPU us/request,
server CPU us/request, the load average when the window ended. The machine is shared: no quiet conditions
are claimed; ratios are within one run. ``python benchmarks/http_cost.py --perf-analyzer-venv /work/bench-venv``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
TICK = os.sysconf("SC_CLK_TCK")
SHAPES = {"[1,4]": (4,), "[1,224,224,3]": (224, 224, 3)}


def cpu_s(pid):
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def served(metrics_url):
    """Requests the demo server counted (all statuses)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == ":tensorflow:serving:request_count"
               for s in f.samples if s.name.endswith("_total") or s.name == f.name)


class Demo:
    def __init__(self, frame):
        shape = ",".join(["-1", *map(str, frame)])
        self.process = subprocess.Popen([sys.executable, "-m", "tfs_user.demo", "--port", "0", "--rest-port", "0",
                                         "--metrics-port", "0", f"--shape={shape}", "--model-name", "m",
                                         "--output-size", "10", "--workers", "8"],
                                        stdout=subprocess.PIPE, text=True, cwd=ROOT)
        line = self.process.stdout.readline()
        self.rest = line.split("(REST on ")[1].rstrip(")\n")
        self.metrics_url = self.process.stdout.readline().split(" on ")[1].strip()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)


def body_of(frames, binary):
    """The body (bytes, headers) our factory builds for ``frames`` [1, ...] float32 (what FastHttpUser posts too)."""
    from tfs_user.protocols.kserve.rest import InferBodies

    class OneBatch:
        period, one_pass = 1, 1

        def batch(self, k):
            return frames

    body = InferBodies([("input", OneBatch(), None)], (), binary, 1 << 30).request(0)
    return bytes(body), dict(body.headers)


def window(client, demo, settle_s, measure_s):
    """Measure ``client`` (a Popen) over a window that starts ``settle_s`` after the server saw its first request
    (start-up, imports and building the bodies stay out): (req/s, client us/req, server us/req, load average)."""
    first, deadline = served(demo.metrics_url), time.monotonic() + 120
    while served(demo.metrics_url) == first and time.monotonic() < deadline and client.poll() is None:
        time.sleep(0.2)
    time.sleep(settle_s)
    c0, s0, n0, t0 = cpu_s(client.pid), cpu_s(demo.process.pid), served(demo.metrics_url), time.monotonic()
    time.sleep(measure_s)
    c1, s1, n1, t1 = cpu_s(client.pid), cpu_s(demo.process.pid), served(demo.metrics_url), time.monotonic()
    n = max(n1 - n0, 1)
    return n / (t1 - t0), (c1 - c0) / n * 1e6, (s1 - s0) / n * 1e6, os.getloadavg()[0]


def end(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_ours(demo, data_file, binary, users, seconds, folder):
    return subprocess.Popen([sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
                             "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--protocol", "kserve",
                             "--host", f"http://{demo.rest}", "--model-name", "m", "--images-numpy-path", str(data_file),
                             "--binary-data", "on" if binary else "off", "--status-interval", "0", "--only-summary"],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_fasthttp(demo, body_file, headers, users, seconds, folder, user_class="PrebuiltBody"):
    env = dict(os.environ, HTTP_PEER_BODY=str(body_file), HTTP_PEER_PATH="/v2/models/m/infer",
               HTTP_PEER_HEADERS=json.dumps(headers))
    return subprocess.Popen([sys.executable, "-m", "locust", "-f", str(HERE / "http_peer_locustfile.py"), "--headless",
                             "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", f"http://{demo.rest}",
                             "--only-summary", user_class], cwd=folder, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def run_perf_analyzer(venv, demo, frame, binary, users, seconds):
    import peers_run

    executable, env = peers_run.perf_analyzer_command(Path(venv))
    kind = "binary" if binary else "json"
    shape = ",".join(map(str, (1, *frame)))
    return subprocess.Popen([executable, "-m", "m", "-u", demo.rest, "-i", "http", "--shape", f"input:{shape}",
                             "--concurrency-range", str(users), "--measurement-interval", str(seconds * 1000),
                             "--input-tensor-format", kind, "--output-tensor-format", kind, "--max-trials", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4, help="concurrent requests of every client (default 4)")
    parser.add_argument("--seconds", type=int, default=12, help="each client's run, s (default 12)")
    parser.add_argument("--settle", type=float, default=2.0, help="s from the first request to the window (default 2)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each client, alternating (default 2)")
    parser.add_argument("--measure", type=float, default=5.0, help="the window, s (default 5)")
    parser.add_argument("--perf-analyzer-venv", default="", help="a venv with tritonclient[grpc]==2.51.0 (bin/perf_analyzer)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for label, frame in SHAPES.items():
            frames = np.random.default_rng(1).uniform(0, 255, (1, *frame)).astype(np.float32)
            np.save(folder / "data.npy", frames)
            demo = Demo(frame)
            try:
                for binary in (False, True):
                    body, headers = body_of(frames, binary)
                    (folder / "body").write_bytes(body)
                    encoding = "binary" if binary else "JSON"
                    clients = [("ours", lambda: run_ours(demo, folder / "data.npy", binary, args.users, args.seconds, folder)),
                               ("FastHttpUser", lambda: run_fasthttp(demo, folder / "body", headers, args.users,
                                                                     args.seconds, folder)),
                               ("HttpUser", lambda: run_fasthttp(demo, folder / "body", headers, args.users, args.seconds,
                                                                 folder, "PrebuiltBodyRequests"))]
                    if args.perf_analyzer_venv:
                        clients.append(("perf_analyzer", lambda: run_perf_analyzer(
                            args.perf_analyzer_venv, demo, frame, binary, args.users, args.seconds)))
                    for name, start in clients * args.repeat:
                        process = start()
                        try:
                            figures = window(process, demo, args.settle, args.measure)
                        finally:
                            end(process)
                        rows.append((label, encoding, len(body), name, *figures))
                        print(f"{label:14} {encoding:6} {len(body):>9} B  {name:13} {figures[0]:8.0f} req/s  client "
                              f"{figures[1]:7.0f} us/req  server {figures[2]:7.0f} us/req  load {figures[3]:.1f}",
                              flush=True)
            finally:
                demo.stop()
    print("\n| body | encoding | bytes | client | req/s | client CPU us/req | server CPU us/req | load avg (1 min) |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for label, encoding, size, name, rate, client, server, load in rows:
        print(f"| {label} | {encoding} | {size} | {name} | {rate:.0f} | {client:.0f} | {server:.0f} | {load:.1f} |")
    print()
    for label in SHAPES:
        for encoding in ("JSON", "binary"):
            def of(name, column):
                return [r[column] for r in rows if (r[0], r[1], r[3]) == (label, encoding, name)]
            ours, fast, pa = of("ours", 5), of("FastHttpUser", 5), of("perf_analyzer", 4)
            cpu = ", ".join(f"{a / b:.2f}" for a, b in zip(ours, fast))
            line = f"{label} {encoding}: ours/FastHttpUser client CPU per request {cpu} (run by run)"
            if pa:
                line += "; ours/perf_analyzer req/s " + ", ".join(f"{a / b:.2f}" for a, b in zip(of("ours", 4), pa))
            print(line)
        sizes = {r[1]: r[2] for r in rows if r[0] == label}
        print(f"{label}: JSON body {sizes['JSON']} B = {sizes['JSON'] / sizes['binary']:.2f} x the binary body "
              f"({sizes['binary']} B)")


if __name__ == "__main__":
    main()
