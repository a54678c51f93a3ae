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

from tfs_user import loop_lag
from tfs_user.transport.endpoints import header_lines
from tfs_user.stats import PERCENTILES, part_order

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
    """The final figures as a dict: ``rows`` (one per request name, each followed by its mixed run's part rows
    (``part_of`` the name: ``Predict resnet [batch 8]``), then ``Aggregated`` over the names) and run counters."""
    edges = recorder.edges  # open loop: the schedule's span (tfs_user.stats.Recorder.bound)
    rows = []
    for name, stats in sorted(recorder.names.items()):  # each name's row, then its mixed run's part rows
        rows.append(dict(name=name, **stats.summary(*edges)))
        parts = sorted((n for n in recorder.parts if n.startswith(f"{name} [")), key=part_order)
        rows.extend(dict(name=n, part_of=name, **recorder.parts[n].summary(*edges)) for n in parts)
    rows.append(dict(name=AGGREGATED, **recorder.total().summary(*edges)))
    lag = loop_lag.figures(recorder.loop_lag)
    return {
        "rows": rows,
        "warmup_requests": recorder.warmup,
        "warmup_failures": recorder.warmup_failures,
        "after_stop_requests": recorder.after_stop,
        **lag,
        "loop_lag_warning": loop_lag.warning(lag["loop_lag_p99_ms"], rows[-1]["p50_ms"]),
    }


EMPTY = "-"
"""How the console shows a statistic of an empty set (CSV: an empty cell; JSON: null)."""


def ms_text(value):
    """Milliseconds as printed: 3 decimals (microseconds); ``-`` for None (an empty set)."""
    return EMPTY if value is None else f"{value:.3f}"


def rate_text(value, decimals=1):
    """A rate (req/s, frames/s) as printed; ``-`` for None."""
    return EMPTY if value is None else f"{value:.{decimals}f}"


def target_text(value):
    """A target rate (req/s) as printed: as given when whole or nearly (40, 26.67, 0.333), not 26.6667."""
    return f"{round(value, 2):g}" if abs(value) >= 1 else f"{value:.3g}"


def percent_text(ratio):
    """A ratio (0..1) as a percentage with 2 decimals; ``-`` for None."""
    return EMPTY if ratio is None else f"{100 * ratio:.2f}"


def plural(count, noun):
    """``1 warm-up request``, ``2 warm-up requests``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary_lines(data):
    """The lines under the table: old-script style totals, what was left out, the event loop's lag
    (and its warning when the load generator was a bottleneck)."""
    total = data["rows"][-1]
    lag = (f"Event loop lag (how late due work ran in the load generator, sampled every {1000 * loop_lag.INTERVAL_S:g} ms): "
           f"p50 {ms_text(data.get('loop_lag_p50_ms'))} ms, p99 {ms_text(data.get('loop_lag_p99_ms'))} ms, "
           f"max {ms_text(data.get('loop_lag_max_ms'))} ms")
    return [
        f"Frames: {total['frames']}  Measured duration: {total['window_s']:.3f} s  FPS: {rate_text(total['fps'])} frames/s  "
        f"Average latency: {ms_text(total['mean_ms'])} ms  Failures: {total['failures']}/{total['requests']} "
        f"({percent_text(total['fail_ratio'])} %)",
        f"Left out: {plural(data['warmup_requests'], 'warm-up request')} ({data['warmup_failures']} failed), "
        f"{data['after_stop_requests']} completed after stop",
        lag,
        *([f"Warning: {data['loop_lag_warning']}"] if data.get("loop_lag_warning") else []),
    ]


def format_summary(data, notes=()):
    """The final summary table, old-script style figures first (frames, duration, FPS, latency, failures)."""
    titles = [key[:-3] for key in LATENCY_KEYS]  # min, mean, p50, ... max
    width = max([34, *(len(row["name"]) + 1 for row in data["rows"])])  # names with an endpoint are long
    lines = [
        "",
        "TFS summary (measured requests only; latency of successful requests, ms with microsecond resolution)",
        *header_lines(data),
        f"{'Name':<{width}}{'reqs':>9}{'fails':>7}{'frames':>9}{'req/s':>10}{'FPS':>10}" + "".join(f"{t:>9}" for t in titles),
    ]
    for row in data["rows"]:
        lines.append(
            f"{row['name']:<{width}}{row['requests']:>9}{row['failures']:>7}{row['frames']:>9}"
            f"{rate_text(row['rps']):>10}{rate_text(row['fps']):>10}"
            + "".join(f"{ms_text(row[k]):>9}" for k in LATENCY_KEYS)
        )
    return "\n".join(lines + summary_lines(data) + list(notes))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_path_problem(option, path, example="run.json"):
    """Why ``path`` (an output file of ``option``) cannot be written, as one line; None when it can. Checked
    before the test (and by ``python -m tfs_user.compare`` before it writes anything), so that a run never ends
    with its figures unwritten (seen: a traceback, then exit 0) and no folder is made by a typo."""
    if not path:
        return None
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        return f"{option} {path!r} is a folder; expected a file path (e.g. {os.path.join(path, example)!r})"
    if not os.path.isdir(folder):
        return f"{option} {path!r}: folder {folder!r} does not exist; expected an existing folder (create it first)"
    if not os.access(folder, os.W_OK):
        return f"{option} {path!r}: folder {folder!r} is not writable; expected a folder this user can write in"
    return None


def _write_atomically(path, write):
    """Write ``path`` through a temporary file renamed over it (never half-written), with the
    permissions an ordinary ``open`` gives (0666 less the umask, like Locust's own files)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", newline="") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def cell_text(value, decimals=3):
    """A summary value as the CSV files write it: names and counts as they are, other numbers to ``decimals``
    (3) decimals, an empty cell for None (a statistic of an empty set)."""
    if value is None:  # a statistic of an empty set
        return ""
    return str(value) if isinstance(value, (str, int)) else f"{value:.{decimals}f}"


RATIO_DECIMALS = 6
"""The fail ratio's decimals in the CSV: 1 failure in 5000 reads 0.000200 beside --slo-max-fail-ratio 0.0001."""


def csv_rows(data):
    """The summary as CSV rows (lists of str): the CSV_COLUMNS titles, then one row per name and Aggregated."""
    return [[title for title, _ in CSV_COLUMNS],
            *([cell_text(row[key], RATIO_DECIMALS if key == "fail_ratio" else 3) for _, key in CSV_COLUMNS]
              for row in data["rows"])]


def csv_text(data):
    """The summary as CSV text, as ``PREFIX_tfs.csv`` holds it."""
    text = io.StringIO()
    csv.writer(text).writerows(csv_rows(data))
    return text.getvalue()


def write_csv(path, data):
    """Write ``data['rows']`` with CSV_COLUMNS (ms to 3 decimals, rates to 3 decimals)."""
    _write_atomically(path, lambda f: csv.writer(f).writerows(csv_rows(data)))


def write_json(path, data, verdict):
    """Write the summary and the verdict (``tfs_user.results.verdict.Verdict``) as JSON: ``passed``, ``exit_code``,
    ``slo_violations``; statistics of an empty set are null."""
    document = dict(data, slo_violations=list(verdict.violations), passed=verdict.passed, exit_code=verdict.exit_code)
    _write_atomically(path, lambda f: json.dump(document, f, indent=2))
