"""The highest open-loop arrival rate one load-generator process holds, and its scheduling error (issue 13).

    python benchmarks/arrival_rate.py                 # search from 250 req/s, 10 s per rate, about 3 min
    python benchmarks/arrival_rate.py --start 100 --seconds 5 --users 16 --arrival poisson

Starts the [1,4] null model (``python -m tfs_user.demo_server --shape=-1,4 --output-size 1``, a
separate process, ``tfs_user.demo.process``) and runs one ``locust --headless`` process (the
project's ``locustfile.py``) per rate: ``--arrival-rate R --arrival constant -u USERS -t SECONDS``.
From its ``--json-summary``:

- achieved req/s = successful requests / measured window (``rows[-1].rps``) and sent req/s
  (``open_loop.sent_rps``);
- the rate is *held* when both are within ``--tolerance`` (1 %) of the target, no request
  failed and the tool reports the schedule kept (few late sends);
- scheduling error = p99 of (actual minus scheduled send time), ms (``open_loop.send_error_p99_ms``),
  and the late sends (no user waiting when the slot fell due).

Search: the rate doubles from ``--start`` until one is not held, then bisects between the last held
and the first missed rate until they are within ``--resolution`` (5 %). Constant arrivals by default:
a Poisson schedule's own count over 10 s varies by about 1/sqrt(N) (1 % at 1000 req/s), which a 1 %
bound would mistake for the generator's fault. The machine is shared: the server and the load
generator compete for the same cores, so the figure is this machine's, not the tool's limit.

perf_analyzer (``--request-rate-range``) is the peer to compare with; it needs NVIDIA's packages
(tritonclient's perf_analyzer binary with the CUDA runtime), which cannot be installed here, so the
table has no perf_analyzer column.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from overhead import _env, machine_info, start_server, stop_server  # noqa: E402

SERVER_ARGS = ["--shape=-1,4", "--output-size", "1"]


def run_rate(address, rate, users, seconds, arrival, timeout=120):
    """One ``locust --headless`` run at ``rate`` req/s; returns a dict of its figures (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="tfs-arrival-") as folder:
        summary = os.path.join(folder, "summary.json")
        command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "--host", address,
                   "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--arrival-rate", f"{rate:g}",
                   "--arrival", arrival, "--status-interval", "0", "--json-summary", summary]
        done = subprocess.run(command, cwd=folder, env=_env(ROOT), capture_output=True, text=True, timeout=timeout)
        if not os.path.isfile(summary):
            raise RuntimeError(f"rate {rate:g}: exit code {done.returncode}: {(done.stderr or done.stdout)[-300:]}")
        with open(summary) as f:
            data = json.load(f)
    total, open_loop = data["rows"][-1], data["open_loop"]
    return {"target": rate, "rps": total["rps"], "sent_rps": open_loop["sent_rps"], "failures": total["failures"],
            "requests": total["requests"], "send_error_p99_ms": open_loop["send_error_p99_ms"],
            "late": open_loop["late"], "late_ratio": open_loop["late_ratio"], "p50_ms": total["p50_ms"],
            "p99_ms": total["p99_ms"], "service_p99_ms": open_loop["service_p99_ms"],
            "schedule_kept": open_loop["schedule_kept"]}


def held(result, tolerance):
    """Whether the run kept its target: achieved and sent req/s within ``tolerance``, no failure, schedule kept."""
    target = result["target"]
    return (result["rps"] is not None and result["sent_rps"] is not None
            and abs(result["rps"] / target - 1) <= tolerance and abs(result["sent_rps"] / target - 1) <= tolerance
            and result["failures"] == 0 and result["schedule_kept"])


def search(measure, start, resolution, max_rate, log=print):
    """Double from ``start`` until a rate is not held, then bisect; returns (results in run order, best held rate)."""
    results, good, bad = [], None, None
    rate = start
    while rate <= max_rate:
        result = measure(rate)
        results.append(result)
        log(line(result))
        if not result["held"]:
            bad = rate
            break
        good = rate
        rate *= 2
    while good is not None and bad is not None and (bad - good) / good > resolution:
        rate = round((good + bad) / 2)
        result = measure(rate)
        results.append(result)
        log(line(result))
        good, bad = (rate, bad) if result["held"] else (good, rate)
    return results, good


def _f(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def line(r):
    return (f"| {r['target']:g} | {_f(r['rps'])} | {_f(r['sent_rps'])} | {_f(100 * (r['rps'] or 0) / r['target'] - 100, 2)} % "
            f"| {_f(r['send_error_p99_ms'], 3)} | {r['late']} ({_f(100 * (r['late_ratio'] or 0), 1)} %) "
            f"| {_f(r['p50_ms'], 3)} | {_f(r['p99_ms'], 3)} | {_f(r['service_p99_ms'], 3)} | {'yes' if r['held'] else 'no'} |")


HEADER = ("| target req/s | achieved req/s | sent req/s | achieved - target | sched. error p99 ms | late sends "
          "| p50 ms | p99 ms | service p99 ms | held |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--start", type=float, default=250.0, help="first rate, req/s (default 250)")
    p.add_argument("--max-rate", type=float, default=20000.0, help="highest rate tried, req/s (default 20000)")
    p.add_argument("--seconds", type=int, default=10, help="run time per rate, s (default 10)")
    p.add_argument("--users", type=int, default=32, help="users: the bound on requests in flight (default 32)")
    p.add_argument("--arrival", choices=("constant", "poisson"), default="constant")
    p.add_argument("--tolerance", type=float, default=0.01, help="held within this fraction (default 0.01)")
    p.add_argument("--resolution", type=float, default=0.05, help="bisect until this close (default 0.05)")
    args = p.parse_args(argv)
    info = machine_info(ROOT)
    demo = start_server(ROOT, SERVER_ARGS)
    started = time.monotonic()
    try:
        print(f"{info['cpu']}, {info['nproc']} cores, load {info['load']}; python {info['python']}, "
              f"locust {info['locust']}, grpcio {info['grpcio']}; {info['repo']}", flush=True)
        print(f"server: python -m tfs_user.demo_server {' '.join(SERVER_ARGS)}; one locust process, -u {args.users}, "
              f"--arrival {args.arrival}, {args.seconds} s per rate\n", flush=True)
        print(HEADER, flush=True)

        def measure(rate):
            result = run_rate(demo.address, rate, args.users, args.seconds, args.arrival)
            result["held"] = held(result, args.tolerance)
            return result

        results, best = search(measure, args.start, args.resolution, args.max_rate,
                               log=lambda text: print(text, flush=True))
    finally:
        stop_server(ROOT, demo)
    best_row = next((r for r in results if r["target"] == best), None)
    print()
    if best_row is None:
        print(f"No rate held within {100 * args.tolerance:g} % (from {args.start:g} req/s).")
    else:
        print(f"Highest rate held within {100 * args.tolerance:g} %: {best:g} req/s (achieved {_f(best_row['rps'])}); "
              f"scheduling error p99 {_f(best_row['send_error_p99_ms'], 3)} ms; {len(results)} runs in "
              f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
