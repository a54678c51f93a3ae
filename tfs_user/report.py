"""What users read: the periodic status line, the final summary, CSV and JSON files, SLO checks.

All figures come from ``tfs_user.stats`` (exact, measured requests only).
FPS = frames of successful measured requests / measured window (s), which
equals successful requests/s x batch size.
"""

import csv
import json
import os
import tempfile
import time

from tfs_user.stats import PERCENTILES

AGGREGATED = "Aggregated"

CSV_COLUMNS = [
    ("Name", "name"), ("Requests", "requests"), ("Failures", "failures"), ("Fail ratio", "fail_ratio"),
    ("Frames", "frames"), ("Window s", "window_s"), ("Requests/s", "rps"), ("FPS", "fps"),
    ("Min ms", "min_ms"), ("Mean ms", "mean_ms"),
    *[(f"p{p:g} ms", f"p{p:g}_ms") for p in PERCENTILES],
    ("Max ms", "max_ms"),
]
HISTORY_COLUMNS = ["Timestamp", "Users", "Requests", "Failures", "Frames", "Requests/s", "FPS", "p50 ms", "p99 ms"]


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


def _ms(value):
    return f"{value:.3f}"


def format_summary(data, notes=()):
    """The final summary table, old-script style figures first (frames, duration, FPS, latency, failures)."""
    total = data["rows"][-1]
    lines = [
        "",
        "TFS summary (measured requests only; latency of successful requests, ms with microsecond resolution)",
        f"{'Name':<34}{'reqs':>9}{'fails':>7}{'frames':>9}{'req/s':>10}{'FPS':>10}"
        f"{'min':>9}{'mean':>9}{'p50':>9}{'p90':>9}{'p95':>9}{'p99':>9}{'p99.9':>9}{'max':>9}",
    ]
    for row in data["rows"]:
        lines.append(
            f"{row['name'][:33]:<34}{row['requests']:>9}{row['failures']:>7}{row['frames']:>9}"
            f"{row['rps']:>10.1f}{row['fps']:>10.1f}"
            + "".join(f"{_ms(row[k]):>9}" for k in ("min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99.9_ms", "max_ms"))
        )
    lines += [
        f"Frames: {total['frames']}  Measured duration: {total['window_s']:.3f} s  FPS: {total['fps']:.1f} frames/s  "
        f"Average latency: {_ms(total['mean_ms'])} ms  Failures: {total['failures']}/{total['requests']} "
        f"({100 * total['fail_ratio']:.2f} %)",
        f"Left out: {data['warmup_requests']} warm-up requests ({data['warmup_failures']} failed), "
        f"{data['after_stop_requests']} completed after stop",
    ]
    lines += list(notes)
    return "\n".join(lines)


class StatusLine:
    """Periodic one-line status: users, current req/s and FPS (since the last line), p50/p99 so far, failures."""

    def __init__(self):
        self._last = (time.monotonic(), 0, 0)  # (time, ok, frames) at the previous line

    def format(self, recorder, users):
        total = recorder.total()
        now = time.monotonic()
        rps = fps = 0.0
        if total.ok < self._last[1]:  # statistics were reset (a new test)
            self._last = (now, 0, 0)
        if now > self._last[0]:
            elapsed = now - self._last[0]
            rps = (total.ok - self._last[1]) / elapsed
            fps = (total.frames - self._last[2]) / elapsed
        self._last = (now, total.ok, total.frames)
        ratio = total.failures / total.requests if total.requests else 0.0
        line = (f"[tfs] users {users} | {rps:.1f} req/s | {fps:.1f} FPS | p50 {_ms(total.percentile_ms(50))} ms | "
                f"p99 {_ms(total.percentile_ms(99))} ms | failures {total.failures} ({100 * ratio:.2f} %)")
        history = [f"{time.time():.3f}", users, total.requests, total.failures, total.frames,
                   f"{rps:.3f}", f"{fps:.3f}", _ms(total.percentile_ms(50)), _ms(total.percentile_ms(99))]
        return line, history


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


def write_csv(path, data):
    """Write ``data['rows']`` with CSV_COLUMNS (ms to 3 decimals, rates to 3 decimals)."""

    def write(f):
        out = csv.writer(f)
        out.writerow([title for title, _ in CSV_COLUMNS])
        for row in data["rows"]:
            out.writerow([row[key] if isinstance(row[key], (str, int)) else f"{row[key]:.3f}" for _, key in CSV_COLUMNS])

    _write_atomically(path, write)


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
