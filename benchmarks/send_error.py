"""Open-loop send error: how late each scheduled request leaves, this checkout against a baseline checkout (issue 22).

    git worktree add /tmp/baseline 89dbfdb
    python benchmarks/send_error.py --baseline-repo /tmp/baseline            # 100..1000 req/s, 2 runs, about 5 min
    python benchmarks/send_error.py --rates 300 --runs 1 --seconds 4         # this checkout only, no baseline
    python benchmarks/send_error.py --trace --rates 1000                     # a replayed trace beside Poisson

One demo server (``--shape=-1,4 --output-size 1 --delay-ms 5 --workers 8``, a separate process) and, per
rate and run, one ``locust --headless`` of each checkout (``-u 16``, Poisson ``--arrival-rate R``,
``--json-summary``), the two alternating (the order flips every run). From each summary: send error
(actual minus scheduled send) p50/p99 ms, latency from the schedule minus service time at p50 (how much
later than scheduled the median request left, as the user sees it), late sends (no user waiting when the slot fell due), and the
CPU per request of the locust process over its measured section (user + system, us): each run goes through
``probe_locustfile.py`` (the checkout's own ``OptionsTfsUser``), which samples the process's CPU time and
request count, and the CPU between the first request and the last counts, as in ``overhead.py``
(issue 28: the whole process's CPU added about 0.75 s of Locust start and stop and diluted the ratio).
The table gives medians over the runs and, with a baseline, the ratios this / baseline.
Targets of issue 22: send error p50 < 0.1 ms and p99 < 2 ms at 100-1000 req/s on a quiet machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from overhead import PROBE_LOCUSTFILE, _env, _probe_cpu, start_server, stop_server  # noqa: E402

SERVER_ARGS = ["--shape=-1,4", "--output-size", "1", "--delay-ms", "5", "--workers", "8"]
USERS = 16
COLUMNS = ("send_error_p50_ms", "send_error_p99_ms", "behind_p50_ms", "late", "cpu_us")


def write_trace(path, rate, seconds, seed=1):
    """A trace file of Poisson send times at ``rate`` req/s over ``seconds`` (seeded), one per line."""
    import numpy as np
    times = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, int(rate * seconds * 1.2) + 10))
    times = times[times < seconds]
    Path(path).write_text("".join(f"{t:.6f}\n" for t in times))


def run_once(repo, address, rate, seconds, timeout=120, trace=False):
    """One open-loop locust run of ``repo``'s locustfile at ``rate`` req/s (``trace``: a replay of a Poisson
    trace at that rate, ``--arrival-trace``; the run ends with it); a dict of the COLUMNS (+ requests)."""
    with tempfile.TemporaryDirectory(prefix="tfs-send-error-") as folder:
        summary = os.path.join(folder, "summary.json")
        if trace:
            write_trace(os.path.join(folder, "poisson.trace"), rate, seconds)
            arrivals = ["--arrival-trace", "poisson.trace", "-t", f"{seconds + 60:g}s"]  # -t: a bound only
        else:
            arrivals = ["--arrival-rate", f"{rate:g}", "--arrival", "poisson", "-t", f"{seconds:g}s"]
        command = [sys.executable, "-m", "locust", "-f", str(PROBE_LOCUSTFILE), "--headless",
                   "--host", address, "-u", str(USERS), "-r", str(USERS), *arrivals, "--status-interval", "0",
                   "--json-summary", summary]
        done = subprocess.run(command, cwd=folder, env=_env(repo, TFS_BENCH_PROBE_DIR=folder), capture_output=True,
                              text=True, timeout=timeout)
        if not os.path.isfile(summary):
            raise RuntimeError(f"{repo} at {rate:g} req/s: exit code {done.returncode}: {(done.stderr or done.stdout)[-300:]}")
        with open(summary) as f:
            data = json.load(f)
        cpu_s, probed = _probe_cpu(folder)  # the measured section: first request to last, start and stop left out
    total, open_loop = data["rows"][-1], data["open_loop"]
    return {"requests": total["requests"], "send_error_p50_ms": open_loop["send_error_p50_ms"],
            "send_error_p99_ms": open_loop["send_error_p99_ms"],
            "behind_p50_ms": total["p50_ms"] - open_loop["service_p50_ms"], "late": open_loop["late"],
            "cpu_us": 1e6 * cpu_s / probed}


def table(results, names):
    """Markdown lines: per rate and checkout the medians of COLUMNS over the runs; with two checkouts a
    ratio row (first / second). ``results``: {(name, rate): [run dicts]}; ``names``: checkouts in order."""
    head = "| req/s | checkout | runs | send error p50 ms | send error p99 ms | latency - service p50 ms | late sends | CPU us/request |"
    lines = [head, "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for rate in sorted({rate for _, rate in results}):
        medians = {}
        for name in names:
            runs = results.get((name, rate), [])
            if not runs:
                continue
            medians[name] = {c: statistics.median(r[c] for r in runs) for c in COLUMNS}
            m = medians[name]
            lines.append(f"| {rate:g} | {name} | {len(runs)} | {m['send_error_p50_ms']:.3f} | {m['send_error_p99_ms']:.3f} "
                         f"| {m['behind_p50_ms']:.3f} | {m['late']:g} | {m['cpu_us']:.0f} |")
        if len(medians) == 2:
            a, b = (medians[n] for n in names)
            ratio = {c: (f"{a[c] / b[c]:.2f}" if b[c] else "-") for c in COLUMNS}
            lines.append(f"| {rate:g} | ratio {names[0]} / {names[1]} | | {ratio['send_error_p50_ms']} "
                         f"| {ratio['send_error_p99_ms']} | {ratio['behind_p50_ms']} | {ratio['late']} | {ratio['cpu_us']} |")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-repo", default="", help="another checkout to run alternately (e.g. a git worktree)")
    parser.add_argument("--rates", default="100,300,600,1000", help="comma-separated req/s (default 100,300,600,1000)")
    parser.add_argument("--runs", type=int, default=2, help="runs per rate and checkout (default 2)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per run (default 8)")
    parser.add_argument("--trace", action="store_true", help="this checkout only: a replayed Poisson trace "
                        "(--arrival-trace) beside the Poisson open loop at each rate, ratio trace / poisson")
    args = parser.parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates {args.rates!r}: expected comma-separated numbers, e.g. 100,300")
    if args.runs < 1 or args.seconds <= 0 or any(r <= 0 for r in rates):
        parser.error("--runs >= 1, --seconds > 0 and every rate > 0 expected")
    repos = {"this": ROOT}
    if args.trace and args.baseline_repo:
        parser.error("--trace compares this checkout's replay with its Poisson open loop; drop --baseline-repo")
    if args.baseline_repo:
        if not (Path(args.baseline_repo) / "locustfile.py").is_file():
            parser.error(f"--baseline-repo {args.baseline_repo!r} has no locustfile.py; expected a checkout of this project")
        repos["baseline"] = Path(args.baseline_repo).resolve()
    names = ["trace", "poisson"] if args.trace else list(repos)
    demo = start_server(ROOT, SERVER_ARGS)
    results = {}
    try:
        for run in range(args.runs):
            for rate in rates:
                for name in (names if run % 2 == 0 else names[::-1]):
                    row = run_once(repos.get(name, ROOT), demo.address, rate, args.seconds, trace=name == "trace")
                    results.setdefault((name, rate), []).append(row)
                    print(f"[send-error] run {run + 1} {name} {rate:g} req/s: " + ", ".join(
                        f"{c} {row[c]:.3f}" for c in COLUMNS), file=sys.stderr, flush=True)
    finally:
        stop_server(ROOT, demo)
    print("\n".join(table(results, names)))


if __name__ == "__main__":
    main()
