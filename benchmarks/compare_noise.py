"""Does the baseline comparison cry wolf, does it sleep? A/A and A/B pairs of 10 s runs (issue 32).

    python benchmarks/compare_noise.py run --out results/compare-tune --rounds 8            # runs only
    python benchmarks/compare_noise.py run --out results/compare-hog --rounds 20 --conditions A,A2 --hog
    python benchmarks/compare_noise.py table results/compare-report [results/compare-hog]   # the tables
    python benchmarks/compare_noise.py table --baseline-runs 3 results/compare-report       # several-run baseline

``run``: ``--rounds`` rounds; each round runs every condition once, one after the other, as
``locust --headless --demo-server`` (``-u USERS``, ``-t SECONDS``), each writing
``OUT/rNN-COND.json`` (the JSON summary). Conditions (demo server arguments):

    A, A2  --delay-ms 5                         (two identical runs: the A/A pair; all with a [1,4] model)
    slow   --delay-ms 5.5                       (a server 10 % slower)
    fast   --delay-ms 4.5                       (a server 10 % faster)
    p99    --delay-ms 5 --slow-every 50 --slow-delay-ms D  (2 % slow requests: p99 about 30 % worse; D is set
           from the same round's A run, D = 1.3 x its p99 - (its p50 - 5 ms), so that the slow requests'
           latency is 1.3 x the baseline's p99 whatever the machine's state)

``--hog`` keeps one CPU hog (a busy Python loop, its own process) running for the whole set.
``table``: compares each round's ``A`` (the baseline) with each other condition of the same round
through ``tfs_user.results.compare`` with the default thresholds, and prints, per condition, how many
pairs each figure called worse / better, the load average the runs saw (1-minute, min-max), and the
figures' median change. Runs of one round are minutes apart at most: a pair sees the same machine
state as a CI job's baseline and merge-request run would at best.

``table --baseline-runs K``: a baseline of several runs from the same files (no new runs): for each
round after the first K, the ``A`` runs of the K rounds before it are the baseline, and every condition
of the round is judged against it, ``A`` too (one more A/A pair per round). It adds the median of
what each figure was allowed (the larger of threshold, window noise and between-run noise).
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

MODEL = "--shape=-1,4 --output-size 1"
"""A [1,4] model: the server's delay, not the payload, makes the latency."""
CONDITIONS = {
    "A": "--delay-ms 5",
    "A2": "--delay-ms 5",
    "slow": "--delay-ms 5.5",
    "fast": "--delay-ms 4.5",
    "p99": "--delay-ms 5 --slow-every 50 --slow-delay-ms {slow_delay_ms:.3f}",
}
P99_WORSE = 1.3
"""The p99 condition's slow requests take this many times the round's baseline p99."""


def condition_args(name, out, r):
    """The demo server arguments of condition ``name`` in round ``r`` (p99: from that round's A run)."""
    args = CONDITIONS[name]
    if "{slow_delay_ms" not in args:
        return args
    base = json.loads((out / f"r{r:02d}-A.json").read_text())["rows"][-1]
    overhead_ms = base["p50_ms"] - 5.0  # what the client, gRPC and the machine add to the server's delay
    return args.format(slow_delay_ms=max(P99_WORSE * base["p99_ms"] - overhead_ms, 5.0))
USERS = 4
SECONDS = 10


def run_once(path, server_args, users, seconds):
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "-u", str(users),
               "-r", str(users), "-t", f"{seconds}s", "--demo-server", "--demo-server-args", f"{MODEL} {server_args}",
               "--status-interval", "0", "--json-summary", str(path), "--only-summary"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    done = subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True, timeout=seconds + 120)
    if not path.is_file():
        raise RuntimeError(f"{path.name}: exit code {done.returncode}: {(done.stderr or done.stdout)[-400:]}")


def start_hog():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)


def run(args):
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    conditions = args.conditions.split(",")
    hog = start_hog() if args.hog else None
    try:
        for r in range(args.first, args.first + args.rounds):
            for name in conditions:
                path = out / f"r{r:02d}-{name}.json"
                if path.is_file():
                    continue
                run_once(path, condition_args(name, out, r), args.users, args.seconds)
                print(f"{time.strftime('%H:%M:%S')} {path.name} load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        if hog is not None:
            os.kill(hog.pid, signal.SIGKILL)
            hog.wait()


def baselines(runs, k):
    """{round: [baseline summaries]}: the round's own A (k None), else the A runs of the k rounds before it."""
    a_runs = runs.get("A", {})
    if not k:
        return {r: [doc] for r, doc in a_runs.items()}
    rounds = sorted(a_runs)
    return {r: [a_runs[q] for q in rounds[i - k:i]] for i, r in enumerate(rounds) if i >= k}


def table(args):
    from tfs_user.results import compare

    k = args.baseline_runs
    for folder in args.folders:
        folder = Path(folder)
        runs = {}
        for path in sorted(folder.glob("r*-*.json")):
            r, name = path.stem.split("-", 1)
            runs.setdefault(name, {})[r] = json.loads(path.read_text())
        base_of = baselines(runs, k)
        where = f"the A runs of the {k} rounds before" if k else "A of the same round"
        print(f"\n{folder}  (baseline: {where}; default thresholds)")
        figures = [f.name for f in compare.FIGURES]
        print("| condition | pairs | " + " | ".join(f"{f} worse/better" for f in figures)
              + " | any worse | median change p50 / p99 / FPS | load avg (1 min) |"
              + (" median allowed p50 / p99 / FPS |" if k else ""))
        print("|---|---|" + "---|" * len(figures) + "---|---|---|" + ("---|" if k else ""))
        for name, by_round in runs.items():
            if name == "A" and not k:
                continue
            pairs = [(base_of[r], new) for r, new in sorted(by_round.items()) if r in base_of]
            if not pairs:
                continue
            worse = {f: 0 for f in figures}
            better = {f: 0 for f in figures}
            any_worse = 0
            changes = {f: [] for f in figures}
            allowed = {f: [] for f in figures}
            loads = []
            for base, new in pairs:
                result = compare.compare(base, new)
                rows = [row for row in result.rows if row.step is None]
                for row in rows:
                    worse[row.figure] += row.verdict == compare.WORSE
                    better[row.figure] += row.verdict == compare.BETTER
                    if row.change is not None:
                        changes[row.figure].append(row.change)
                    if row.allowed is not None:
                        allowed[row.figure].append(row.allowed)
                any_worse += any(row.verdict == compare.WORSE for row in rows)
                loads += [d["run"]["load_average"][0] for d in (*base, new)]

            def medians(values, sign):
                return " / ".join(f"{statistics.median(values[f]):{sign}.1f} %" if values[f] else "-"
                                  for f in ("p50", "p99", "fps"))

            print(f"| {name} | {len(pairs)} | " + " | ".join(f"{worse[f]}/{better[f]}" for f in figures)
                  + f" | {any_worse} | {medians(changes, '+')} | {min(loads):.1f}-{max(loads):.1f} |"
                  + (f" {medians(allowed, '')} |" if k else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--first", type=int, default=1, help="number of the first round (resume or extend a set)")
    p.add_argument("--conditions", default=",".join(CONDITIONS))
    p.add_argument("--users", type=int, default=USERS)
    p.add_argument("--seconds", type=int, default=SECONDS)
    p.add_argument("--hog", action="store_true")
    p.set_defaults(func=run)
    t = sub.add_parser("table")
    t.add_argument("folders", nargs="+")
    t.add_argument("--baseline-runs", type=int, default=0, metavar="K",
                   help="judge each round after the first K against the A runs of the K rounds before it "
                        "(a baseline of several runs) instead of its own A")
    t.set_defaults(func=table)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
