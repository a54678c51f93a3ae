"""Parsers for the peers' outputs and the side-by-side table of ``benchmarks/peers.py`` (no Locust, no gRPC).

A measurement is a dict ``{"rps": float, "p50": float, "p90": float, "p99": float, "note": str}``:
requests/s and latency percentiles in milliseconds; ``note`` says what the tool warned about
(empty when nothing). Each parser raises ``ValueError`` naming the file and what was expected.

- ``parse_perf_analyzer_csv(text)``: perf_analyzer's ``-f`` CSV -> ``{step: measurement}``, the
  step being the ``Concurrency`` or ``Request Rate`` column (int); latencies are its client-side
  ``p50/p90/p99 latency`` columns in microseconds (they include client send/recv, as it reports).
- ``perf_analyzer_delays(output)``: its console text -> ``{rate: percent delayed}`` from
  "Perf Analyzer was not able to keep up ... N% of the requests were delayed".
- ``parse_loadgen_summary(text)``: ``mlperf_log_summary.txt`` -> one measurement: "Completed
  samples per second" and the "50.00/90.00/99.00 percentile latency (ns)" lines.
- ``ours_steps(summary, latency)``: our ``--json-summary`` of a sweep -> ``{step: measurement}``
  keyed by ``users`` (closed loop) or ``target_rps`` (open loop); ``latency`` is ``"schedule"``
  (``p50_ms``.., from the scheduled send) or ``"service"`` (``service_p50_ms``.., from the actual send).
- ``side_by_side(rows)`` / ``markdown(lines)``: the table (medians over runs, ratios ours/peer).
"""

import csv
import io
import re
import statistics

FIGURES = ("rps", "p50", "p90", "p99")
COMPARISONS = {  # comparison -> (peer, what of ours is compared)
    "closed": ("perf_analyzer", "latency (closed loop)"),
    "rate-service": ("perf_analyzer", "service time (from the actual send)"),
    "rate-schedule": ("LoadGen", "latency from the scheduled send"),
}


def _measurement(rps, p50, p90, p99, note=""):
    return {"rps": float(rps), "p50": float(p50), "p90": float(p90), "p99": float(p99), "note": note}


def parse_perf_analyzer_csv(text, name="perf_analyzer CSV"):
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValueError(f"{name}: no rows; expected perf_analyzer's -f CSV (header and one row per step)")
    key = next((k for k in ("Concurrency", "Request Rate") if k in rows[0]), None)
    wanted = ["Inferences/Second", "p50 latency", "p90 latency", "p99 latency"]
    missing = [k for k in wanted if k not in rows[0]]
    if key is None or missing:
        raise ValueError(f"{name}: columns {list(rows[0])}; expected Concurrency or Request Rate and {wanted}")
    out = {}
    for row in rows:
        step = int(float(row[key]))
        out[step] = _measurement(row["Inferences/Second"], *(float(row[k]) / 1000.0 for k in wanted[1:]))
    return out


_RATE = re.compile(r"^Request Rate: ([\d.]+) inference requests per seconds", re.M)
_DELAYED = re.compile(r"not able to keep up with the desired request rate\. ([\d.]+)% of the requests were delayed")


def perf_analyzer_delays(output):
    delays = {}
    blocks = _RATE.split(output)  # [head, rate, block, rate, block, ...]
    for rate, block in zip(blocks[1::2], blocks[2::2]):
        found = _DELAYED.search(block)
        if found:
            delays[int(float(rate))] = float(found.group(1))
    return delays


_LOADGEN = {
    "rps": r"^Completed samples per second\s*:\s*([\d.]+)",
    "p50": r"^50\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "p90": r"^90\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "p99": r"^99\.00 percentile latency \(ns\)\s*:\s*(\d+)",
}


def parse_loadgen_summary(text, name="LoadGen summary"):
    values = {}
    for figure, pattern in _LOADGEN.items():
        found = re.search(pattern, text, re.M)
        if not found:
            raise ValueError(f"{name}: no line matching {pattern!r}; expected LoadGen's mlperf_log_summary.txt")
        values[figure] = float(found.group(1))
    # LoadGen's VALID verdict also needs enough queries for its early-stopping estimate (hundreds more
    # than a short step has); only the constraints that say the figures themselves are off are noted
    checks = re.findall(r"^\s*(Performance constraints|Min duration|Min queries) satisfied\s*:\s*(\S+)", text, re.M)
    note = "; ".join(f"LoadGen: {what.lower()} not satisfied" for what, answer in checks if answer != "Yes")
    return _measurement(values["rps"], *(values[k] / 1e6 for k in ("p50", "p90", "p99")), note=note)


def ours_steps(summary, latency):
    prefix = {"schedule": "", "service": "service_"}[latency]
    steps = summary.get("steps") or []
    if not steps:
        raise ValueError("our JSON summary has no steps; expected a --sweep run's --json-summary")
    out = {}
    for step in steps:
        key = int(step["target_rps"]) if step.get("target_rps") else int(step["users"])
        values = [step.get(f"{prefix}p{p}_ms") for p in (50, 90, 99)]
        if None in values:  # no successful request in the step: statistics of an empty set are empty
            continue
        notes = [f"{step['failures']} failures"] if step.get("failures") else []
        notes += [f"{step['late_requests']} late"] if step.get("late_requests") else []
        out[key] = _measurement(step["rps"], *values, note=", ".join(notes))
    return out


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def side_by_side(rows):
    """rows: dicts ``mode, comparison, step, run, ours, peer`` (measurements or None) -> table lines.

    One line per (mode, comparison, step), in first-seen order: the median over runs of each
    figure for both tools, the ratio ours/peer of those medians, the runs that had both, and the
    notes of any run. A missing side leaves its cells empty.
    """
    groups = {}
    for row in rows:
        groups.setdefault((row["mode"], row["comparison"], row["step"]), []).append(row)
    lines = []
    for (mode, comparison, step), group in groups.items():
        line = {"mode": mode, "comparison": comparison, "step": step,
                "runs": sum(1 for r in group if r["ours"] and r["peer"])}
        for side in ("ours", "peer"):
            for figure in FIGURES:
                line[f"{side}_{figure}"] = _median([r[side][figure] for r in group if r[side]])
        for figure in FIGURES:
            ours, peer = line[f"ours_{figure}"], line[f"peer_{figure}"]
            line[f"ratio_{figure}"] = ours / peer if ours is not None and peer else None
        notes = sorted({f"{side} run {r['run']}: {r[side]['note']}" for r in group for side in ("ours", "peer")
                        if r[side] and r[side]["note"]})
        line["notes"] = "; ".join(notes)
        lines.append(line)
    return lines


def _cell(value, digits):
    return "" if value is None else f"{value:.{digits}f}"


HEADER = ["mode", "compared", "step", "runs", "ours req/s", "peer req/s", "ratio", "ours p50", "peer p50", "ratio",
          "ours p90", "peer p90", "ratio", "ours p99", "peer p99", "ratio", "notes"]


def markdown(lines):
    """The table as markdown text (latencies in ms, ratios ours/peer)."""
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for line in lines:
        peer, _ = COMPARISONS[line["comparison"]]
        step = f"{line['step']} users" if line["comparison"] == "closed" else f"{line['step']} req/s"
        cells = [line["mode"], f"{line['comparison']} vs {peer}", step, str(line["runs"])]
        for figure in FIGURES:
            digits = 1 if figure == "rps" else 3
            cells += [_cell(line[f"ours_{figure}"], digits), _cell(line[f"peer_{figure}"], digits),
                      _cell(line[f"ratio_{figure}"], 2)]
        cells.append(line["notes"])
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
