"""What users read: the final summary (console lines, CSV, JSON), the status line, SLO checks.

One formatter per output: ``summary_lines`` serves the console and the HTML report,
``csv_rows`` serves ``PREFIX_tfs.csv`` and the web UI's CSV download.

All figures come from ``tfs_user.stats`` (exact, measured requests only).
FPS = frames of successful measured requests / measured window (s), which
equals successful requests/s x batch size.
"""

import csv
import io
import json
import os
import tempfile

from tfs_user.stats import PERCENTILES

AGGREGATED = "Aggregated"

CSV_COLUMNS = [
    ("Name", "name"), ("Requests", "requests"), ("Failures", "failures"), ("Fail ratio", "fail_ratio"),
    ("Frames", "frames"), ("Window s", "window_s"), ("Requests/s", "rps"), ("FPS", "fps"),
    ("Min ms", "min_ms"), ("Mean ms", "mean_ms"),
    *[(f"p{p:g} ms", f"p{p:g}_ms") for p in PERCENTILES],
    ("Max ms", "max_ms"),
]
LATENCY_KEYS = ["min_ms", "mean_ms", *[f"p{p:g}_ms" for p in PERCENTILES], "max_ms"]
"""Latency columns of a summary row, in ms, in table order."""


def summary(recorder):
    """The final figures as a dict: ``rows`` (one per request name, then ``Aggregated``) and run counters."""
    rows = [dict(name=name, **stats.summary()) for name, stats in sorted(recorder.names.items())]
    rows.append(dict(name=AGGREGATED, **recorder.total().summary()))
    return {
        "rows": rows,
        "warmup_requests": recorder.warmup,
        "warmup_failures": recorder.warmup_failures,
        "after_stop_requests": recorder.after_stop,
    }


def ms_text(value):
    """Milliseconds as printed: 3 decimals (microseconds)."""
    return f"{value:.3f}"


def summary_lines(data):
    """The two lines under the table: old-script style totals, and what was left out."""
    total = data["rows"][-1]
    return [
        f"Frames: {total['frames']}  Measured duration: {total['window_s']:.3f} s  FPS: {total['fps']:.1f} frames/s  "
        f"Average latency: {ms_text(total['mean_ms'])} ms  Failures: {total['failures']}/{total['requests']} "
        f"({100 * total['fail_ratio']:.2f} %)",
        f"Left out: {data['warmup_requests']} warm-up requests ({data['warmup_failures']} failed), "
        f"{data['after_stop_requests']} completed after stop",
    ]


def format_summary(data, notes=()):
    """The final summary table, old-script style figures first (frames, duration, FPS, latency, failures)."""
    titles = [key[:-3] for key in LATENCY_KEYS]  # min, mean, p50, ... max
    lines = [
        "",
        "TFS summary (measured requests only; latency of successful requests, ms with microsecond resolution)",
        f"{'Name':<34}{'reqs':>9}{'fails':>7}{'frames':>9}{'req/s':>10}{'FPS':>10}" + "".join(f"{t:>9}" for t in titles),
    ]
    for row in data["rows"]:
        lines.append(
            f"{row['name'][:33]:<34}{row['requests']:>9}{row['failures']:>7}{row['frames']:>9}"
            f"{row['rps']:>10.1f}{row['fps']:>10.1f}"
            + "".join(f"{ms_text(row[k]):>9}" for k in LATENCY_KEYS)
        )
    return "\n".join(lines + summary_lines(data) + list(notes))


def _write_atomically(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def cell_text(value):
    """A summary value as the CSV files write it: names and counts as they are, other numbers to 3 decimals."""
    return str(value) if isinstance(value, (str, int)) else f"{value:.3f}"


def csv_rows(data):
    """The summary as CSV rows (lists of str): the CSV_COLUMNS titles, then one row per name and Aggregated."""
    return [[title for title, _ in CSV_COLUMNS],
            *([cell_text(row[key]) for _, key in CSV_COLUMNS] for row in data["rows"])]


def csv_text(data):
    """The summary as CSV text, as ``PREFIX_tfs.csv`` holds it."""
    text = io.StringIO()
    csv.writer(text).writerows(csv_rows(data))
    return text.getvalue()


def write_csv(path, data):
    """Write ``data['rows']`` with CSV_COLUMNS (ms to 3 decimals, rates to 3 decimals)."""
    _write_atomically(path, lambda f: csv.writer(f).writerows(csv_rows(data)))


def write_json(path, data, violations):
    """Write the summary and the SLO verdict as JSON."""
    document = dict(data, slo_violations=list(violations), passed=not violations)
    _write_atomically(path, lambda f: json.dump(document, f, indent=2))


def slo_violations(data, options):
    """One line per missed threshold (``--slo-p99-ms``, ``--slo-min-fps``, ``--slo-max-fail-ratio``)."""
    total = data["rows"][-1]
    out = []
    if options.slo_p99_ms and total["p99_ms"] > options.slo_p99_ms:
        out.append(f"SLO missed: p99 latency {total['p99_ms']:.3f} ms > --slo-p99-ms {options.slo_p99_ms:g}")
    if options.slo_min_fps and total["fps"] < options.slo_min_fps:
        out.append(f"SLO missed: FPS {total['fps']:.1f} < --slo-min-fps {options.slo_min_fps:g}")
    if options.slo_max_fail_ratio < 1 and total["fail_ratio"] > options.slo_max_fail_ratio:
        out.append(f"SLO missed: fail ratio {total['fail_ratio']:.4f} > --slo-max-fail-ratio {options.slo_max_fail_ratio:g}")
    return out
