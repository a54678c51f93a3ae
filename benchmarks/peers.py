"""Our tool side by side with its peers, perf_analyzer and MLPerf LoadGen, against the same demo server (issue 22).

    python benchmarks/peers.py                # quiet and with one CPU hog, 3 runs each (about 28 min on 2 cores)
    python benchmarks/peers.py --runs 1       # one run per mode
    python benchmarks/peers.py --quick        # smoke: 1 run, quiet, 2 steps each, short steps (about 2 min)

Each peer is built once in its own virtualenv under ``--peers-dir`` (default
``benchmarks/.peers/``, git-ignored): ``perf_analyzer`` (``tritonclient[grpc]==2.51.0``, which
ships ``bin/perf_analyzer``, and ``nvidia-cuda-runtime-cu12`` for its ``LD_LIBRARY_PATH``; it also
needs Debian's ``libb64-0d``) and ``loadgen`` (``mlcommons-loadgen`` and ``grpcio``, running
``benchmarks/peers_loadgen_sut.py``).

For each mode (``quiet``; ``1 hog``: one ``python -c 'while 1: pass'`` beside both tools) and each
run, one demo server (``python -m tfs_user.demo --shape=-1,4 --output-size 1 --delay-ms 5
--workers 8``, null model, 127.0.0.1, free port) serves, in turn (the order flips every run):

- closed loop, 1..8 users: ours (``--sweep users:1,...,8``) vs perf_analyzer
  ``--concurrency-range 1:8:1``; req/s and latency (closed loop: from the actual send);
- open loop, Poisson 100..400 req/s: our service time (from the actual send) vs perf_analyzer
  ``--request-rate-range 100:400:100 --request-distribution poisson`` (it times from the actual
  send too), and our latency from the scheduled send vs LoadGen's Server scenario (also from
  the schedule).

Our steps last ``--step-s`` seconds (the first 20 % is warm-up); perf_analyzer measures three
windows of 80 % / 3 of a step each (``-s 100``: the first three windows count); LoadGen at
least 80 % of a step per rate. The table (medians over runs, ratios ours/peer) is printed and
written to ``benchmarks/results/DATE-peers.md`` (or ``--output``); every run's figures follow it.
"""

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers_run  # noqa: E402
from peers_table import markdown, side_by_side  # noqa: E402

HERE = Path(__file__).resolve().parent
USERS = 16  # our open-loop users bound the requests in flight; perf_analyzer gets as many threads


def _args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke: 1 run, quiet only, 2 steps each, 3 s steps")
    parser.add_argument("--step-s", type=float, default=10.0, help="seconds per step (default 10; --quick 3)")
    parser.add_argument("--modes", default="quiet,1 hog", help="comma-separated: quiet, 1 hog (default both)")
    parser.add_argument("--peers-dir", default=str(HERE / ".peers"), help="where the peers' venvs are built")
    parser.add_argument("--output", default="", help="markdown file (default benchmarks/results/DATE-peers.md)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs {args.runs}: expected an integer >= 1")
    modes = [m.strip() for m in args.modes.split(",")]
    bad = [m for m in modes if m not in ("quiet", "1 hog")]
    if bad:
        parser.error(f"--modes {bad[0]!r}: expected quiet or '1 hog'")
    args.modes = modes
    if args.quick:
        args.runs, args.modes, args.step_s = 1, ["quiet"], 3.0
    return args


def _plan(quick):
    """(closed users, rates) of the steps."""
    return ([1, 4], [100, 300]) if quick else (list(range(1, 9)), [100, 200, 300, 400])


def _range(values):
    """[1, 2, 3] -> '1:3:1' (perf_analyzer's start:end:step of an evenly spaced list)."""
    step = values[1] - values[0] if len(values) > 1 else 1
    return f"{values[0]}:{values[-1]}:{step}"


def one_run(mode, run, paths, request_file, args, rows, problems):
    users, rates = _plan(args.quick)
    hog = peers_run.Hog(1 if mode == "1 hog" else 0)
    server = None
    try:
        server = peers_run.Server()
        address = server.address

        def ours_closed():
            both, error = peers_run.run_ours(address, "users:" + ",".join(map(str, users)), max(users), args.step_s)
            return {"closed": (both["schedule"], error)}  # closed loop: from the actual send

        def ours_rate():
            both, error = peers_run.run_ours(address, "rate:" + ",".join(map(str, rates)), USERS, args.step_s)
            return {"rate-service": (both["service"], error), "rate-schedule": (both["schedule"], None)}

        def pa_closed():
            return {"closed": peers_run.run_perf_analyzer(paths["perf_analyzer"], address, _range(users), None,
                                                          args.step_s, max(users))}

        def pa_rate():
            return {"rate-service": peers_run.run_perf_analyzer(paths["perf_analyzer"], address, None, _range(rates),
                                                                args.step_s, USERS)}

        def loadgen():
            seed = 1000 * args.modes.index(mode) + run  # a fresh Poisson path per run, as ours draws one
            return {"rate-schedule": peers_run.run_loadgen(paths["loadgen"], address, rates, args.step_s, request_file,
                                                           seed)}

        # ours once per section; its open-loop sweep gives both service time and latency from the schedule
        pairs = [(ours_closed, [pa_closed]), (ours_rate, [pa_rate, loadgen])]
        ours, peer, load = {}, {}, {}
        for mine, theirs in pairs:
            order = [(True, mine)] + [(False, t) for t in theirs]
            for is_ours, job in (order if run % 2 else order[::-1]):
                name = job.__name__
                peers_run.log(f"{mode}, run {run}: {name}")
                t0 = time.monotonic()
                for comparison, (steps, error) in job().items():
                    if error:
                        problems.append(f"{mode}, run {run}, {name}: {error}")
                        peers_run.log(f"  {error}")
                    (ours if is_ours else peer)[comparison] = steps
                    load[(is_ours, comparison)] = os.getloadavg()[0]  # the machine is shared: beside each figure
                peers_run.log(f"  {name} took {time.monotonic() - t0:.0f} s")
    finally:
        if server:
            server.stop()
        hog.stop()
    for comparison in ("closed", "rate-service", "rate-schedule"):
        for step in (users if comparison == "closed" else rates):
            rows.append({"mode": mode, "comparison": comparison, "step": step, "run": run,
                         "ours": ours.get(comparison, {}).get(step), "peer": peer.get(comparison, {}).get(step),
                         "load": (load.get((True, comparison)), load.get((False, comparison)))})


def _runs_table(rows):
    """Every run's figures, one line per (mode, comparison, step, run)."""
    out = ["| mode | compared | step | run | ours req/s | ours p50 | ours p90 | ours p99 | ours load | peer req/s | "
           "peer p50 | peer p90 | peer p99 | peer load |", "|" + "---|" * 14]
    for r in rows:
        cells = [r["mode"], r["comparison"], str(r["step"]), str(r["run"])]
        for side, load in zip(("ours", "peer"), r.get("load", (None, None))):
            m = r[side]
            cells += [f"{m['rps']:.1f}", *(f"{m[k]:.3f}" for k in ("p50", "p90", "p99"))] if m else [""] * 4
            cells.append(f"{load:.1f}" if load is not None else "")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None):
    args = _args(argv)
    try:
        paths = {name: peers_run.build_peer(args.peers_dir, name) for name in peers_run.PEERS}
        peers_run.perf_analyzer_command(paths["perf_analyzer"])  # libb64-0d present?
    except RuntimeError as e:
        print(f"peers.py: {e}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.timezone.utc)
    rows, problems = [], []
    with tempfile.TemporaryDirectory(prefix="peers-") as folder:
        request_file = peers_run.write_request(folder)
        for mode in args.modes:
            for run in range(1, args.runs + 1):
                one_run(mode, run, paths, request_file, args, rows, problems)
    load = os.getloadavg()
    text = "\n".join([
        f"# Peers side by side, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{' '.join(['python benchmarks/peers.py', *(argv if argv is not None else sys.argv[1:])])}`; "
        f"{args.runs} run(s) per mode, steps of {args.step_s:g} s; nproc {os.cpu_count()}, "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.",
        "Demo server: `--shape=-1,4 --output-size 1 --delay-ms 5 --workers 8`. Latencies in ms; medians over "
        "runs; ratio = ours / peer. closed: both from the actual send; rate-service: our service time vs "
        "perf_analyzer; rate-schedule: our latency from the scheduled send vs LoadGen's.",
        "Like with like, and where not: our Poisson path is drawn afresh each run and LoadGen's from a seed that "
        "changes per run; perf_analyzer 2.51 has no seed option and replays one fixed Poisson path in every run, "
        "so its rate rows' req/s is that one path's count (a Poisson count over W s at r req/s varies by about "
        "sqrt(r W)). Ours drop each step's first 20 % (warm-up); perf_analyzer reports its last three stable "
        "windows (which may include a step's start) and LoadGen times from its test's start: their figures "
        "include each step's start. Load average (1 min) beside each figure in 'Every run', at the end of the "
        "tool's run.",
        "",
        markdown(side_by_side(rows)),
        "",
        *(["Problems:", *(f"- {p}" for p in problems), ""] if problems else []),
        "## Every run",
        "",
        _runs_table(rows),
        "",
    ])
    print(text)
    output = Path(args.output) if args.output else HERE / "results" / f"{started:%Y-%m-%d}-peers.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    peers_run.log(f"written to {output}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
