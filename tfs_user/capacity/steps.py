"""Per-step statistics of a sweep: exact (HDR) figures per step, merged across workers, and their reports.

``StepRecorder`` keeps, per step index, a ``tfs_user.stats.LatencyStats`` of
the measured requests (open loop: latency from the scheduled send time) and,
in open loop, one of their service times (from the actual send). Requests in a
step's warm-up are only counted. It merges like ``stats.Recorder``
(``to_message``/``from_message``), so a master sums its workers' steps.

Rows (``step_rows``) join a step plan with the merged figures; statistics of an
empty set are None (an empty CSV cell, JSON null), never 0.
"""

import csv
import json
import time

from tfs_user import loop_lag
from tfs_user.capacity import plans as sweep_mod
from tfs_user.results.report import _write_atomically, target_text
from tfs_user.server_metrics.entries import STEP_KEYS as SERVER_KEYS
from tfs_user.stats import LatencyStats

STEP_COLUMNS = [
    ("Step", "step"), ("Users", "users"), ("Target req/s", "target_rps"), ("Requests", "requests"),
    ("Failures", "failures"), ("Requests/s", "rps"), ("FPS", "fps"), ("p50 ms", "p50_ms"), ("p90 ms", "p90_ms"),
    ("p99 ms", "p99_ms"), ("p99.9 ms", "p99.9_ms"), ("Max ms", "max_ms"), ("Within SLO", "within_slo"),
    ("Loop lag p99 ms", "loop_lag_p99_ms"), ("Loop lag max ms", "loop_lag_max_ms"),
    ("Server requests", "server_requests"), ("Server request ms", "server_request_ms"),
    ("Server queue ms", "server_queue_ms"), ("Server inference ms", "server_inference_ms"),
]
# SERVER_KEYS: step row keys of the server's figures (``--server-metrics``; None without), filled in by
# ``tfs_user.capacity.output`` from ``tfs_user.server_metrics.entries.step_columns``


class StepStats:
    """One step of one process (or merged): ``latency`` and ``service`` LatencyStats, warm-up count,
    late sends (open loop: measured requests sent late: no user was waiting when they fell due), and
    ``loop_lag``, the event-loop lag samples (ms) taken in the step's measured part."""

    def __init__(self):
        self.latency = LatencyStats(windowed=True)
        self.service = LatencyStats()
        self.loop_lag = LatencyStats()
        self.warmup = 0
        self.late = 0
        self.edge_lag_s = 0.0
        """Worker: how late it heard of the step's start or end from the master, the most, s (``--server-metrics``)."""

    def merge(self, other):
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        self.loop_lag.merge(other.loop_lag)
        self.warmup += other.warmup
        self.late += other.late
        self.edge_lag_s = max(self.edge_lag_s, other.edge_lag_s)

    def to_message(self):
        return {"latency": self.latency.to_message(), "service": self.service.to_message(), "warmup": self.warmup,
                "late": self.late, "loop_lag": self.loop_lag.to_message(), "edge_lag_s": self.edge_lag_s}

    @classmethod
    def from_message(cls, data):
        stats = cls()
        stats.latency = LatencyStats.from_message(data["latency"])
        stats.service = LatencyStats.from_message(data["service"])
        stats.loop_lag = LatencyStats.from_message(data["loop_lag"])
        stats.warmup = data["warmup"]
        stats.late = data["late"]
        stats.edge_lag_s = data.get("edge_lag_s", 0.0)
        return stats


BETWEEN = 0
"""Pseudo-step of the measured requests sent between steps (``StepRecorder.between``)."""


class StepRecorder:
    """Step index (int, from 1; 0 = between steps) -> StepStats."""

    def __init__(self):
        self.steps = {}

    def _get(self, index):
        stats = self.steps.get(index)
        if stats is None:
            stats = self.steps[index] = StepStats()
        return stats

    def record(self, index, latency_ms, ok, frames, start, end, service_ms=None):
        """One measured request of step ``index``: latency ms (open loop: from the schedule), success, frames,
        wall-clock start/end s; ``service_ms`` (open loop) the time from the actual send."""
        stats = self._get(index)
        stats.latency.record(latency_ms, ok, frames, start, end)
        if service_ms is not None:
            stats.service.record(service_ms, ok, frames, start, end)

    def record_lag(self, index, lag_ms):
        """One event-loop lag sample (ms) taken in the measured part of step ``index``."""
        wall = time.time()
        self._get(index).loop_lag.record(lag_ms, True, 0, wall, wall)

    def record_warmup(self, index):
        self._get(index).warmup += 1

    def record_between(self):
        """One measured request sent between two steps (kept as the warm-up count of pseudo-step 0)."""
        self._get(BETWEEN).warmup += 1

    @property
    def between(self):
        """Measured requests that belong to no step: sent while a step was judged, before the next began."""
        stats = self.steps.get(BETWEEN)
        return stats.warmup if stats is not None else 0

    def record_edge_lag(self, index, lag_s):
        """Worker: it heard of an edge (start or end) of step ``index`` ``lag_s`` seconds after the master set it."""
        stats = self._get(index)
        stats.edge_lag_s = max(stats.edge_lag_s, lag_s)

    def record_late(self, index):
        self._get(index).late += 1

    def merge(self, other):
        for index, stats in other.steps.items():
            self._get(index).merge(stats)

    def is_empty(self):
        return not self.steps

    def to_message(self):
        # msgpack keeps int keys, but a list of pairs is safer across serializers
        return [[index, stats.to_message()] for index, stats in sorted(self.steps.items())]

    @classmethod
    def from_message(cls, data):
        recorder = cls()
        recorder.steps = {int(index): StepStats.from_message(d) for index, d in data}
        return recorder


def _or_none(value, present):
    return value if present else None


def step_row(step, stats, slo, edges=None):
    """The figures of one step: dict with the STEP_COLUMNS keys (target_rps None in closed loop) plus fail_ratio, window_s, frames,
    service p50/p90/p99 ms (open loop), warmup_requests, late_requests, loop lag p99/max ms; None for statistics
    of an empty set. ``edges``: the measured part's (start, end) in wall-clock s (None = not known: the first
    measured start, the last measured end); the window, req/s and FPS run edge to edge."""
    stats = stats or StepStats()
    lat = stats.latency
    edges = edges or (None, None)
    has_ok = lat.ok > 0
    has_window = lat.window_between(*edges) > 0
    summary = lat.summary(*edges)
    row = {
        "step": step.index,
        "users": step.users,
        "target_rps": step.rate or None,  # closed loop: no target
        "requests": lat.requests,
        "failures": lat.failures,
        "fail_ratio": _or_none(summary["fail_ratio"], lat.requests > 0),
        "frames": lat.frames,
        "window_s": _or_none(summary["window_s"], has_window),
        "rps": _or_none(summary["rps"], has_window),
        "fps": _or_none(summary["fps"], has_window),
    }
    for key in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms"):
        row[key] = _or_none(summary[key], has_ok)
    service_ok = stats.service.ok > 0
    for p in (50, 90, 99):
        row[f"service_p{p}_ms"] = stats.service.percentile_ms(p) if service_ok else None
    row["warmup_requests"] = stats.warmup
    row["late_requests"] = stats.late
    lag = loop_lag.figures(stats.loop_lag)
    row["loop_lag_p99_ms"], row["loop_lag_max_ms"] = lag["loop_lag_p99_ms"], lag["loop_lag_max_ms"]
    row["edge_lag_s"] = stats.edge_lag_s  # workers: the most they heard late of the step's edges
    row.update({key: None for key in SERVER_KEYS}, server={})
    row["within_slo"] = sweep_mod.within_slo(row, slo)
    row["slo_misses"] = sweep_mod.slo_misses(row, slo) if slo.given else []
    return row


def step_rows(steps, recorder, slo, last_index=None, edges=None, judged=None):
    """Rows for the planned ``steps`` up to ``last_index`` (default: every step that has figures); ``edges``
    {step index: (start, end)} as ``step_row`` takes them; ``judged`` {step index: row}: a closed step's row
    as it was judged, reported as it is (a request recorded after the verdict does not change it)."""
    if last_index is None:
        last_index = max(recorder.steps, default=0)
    edges, judged = edges or {}, judged or {}
    return [judged.get(step.index) or step_row(step, recorder.steps.get(step.index), slo, edges.get(step.index))
            for step in steps if step.index <= last_index]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def write_steps_csv(path, rows):
    """``PREFIX_tfs_steps.csv``: one row per step with STEP_COLUMNS; empty cell for an empty set's statistic."""

    def write(f):
        out = csv.writer(f)
        out.writerow([title for title, _ in STEP_COLUMNS])
        for row in rows:
            out.writerow([_cell(row.get(key)) for _, key in STEP_COLUMNS])

    _write_atomically(path, write)


def json_steps(rows):
    """The JSON ``steps`` list: the rows as they are (None -> null)."""
    return [dict(row) for row in rows]


def format_steps(rows, best=None):
    """The console table of steps (one line per step), then the best-step line if given."""
    open_loop = any(row["target_rps"] for row in rows)
    timing = ("open loop: latency from the scheduled send time, svc p90 = service time from the actual send"
              if open_loop else "closed loop: latency from the actual send")
    server = any(row.get("server") for row in rows)  # --server-metrics: the server's count and mean times
    lines = ["", f"TFS steps (measured part of each step; latency ms, {timing}"
             + ("; srv = the server's own count and mean times, ms" if server else "") + ")",
             f"{'step':>5}{'users':>7}{'target/s':>10}{'reqs':>9}{'fails':>7}{'req/s':>10}{'FPS':>10}"
             f"{'p50':>10}{'p90':>10}{'p99':>10}{'p99.9':>10}{'max':>10}{'svc p90':>10}"
             + (f"{'srv reqs':>10}{'srv req':>10}{'srv queue':>10}{'srv infer':>10}" if server else "") + "  SLO"]
    for row in rows:
        def num(key, width=10, digits=3):
            value = row.get(key)
            return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"
        verdict = {True: "ok", False: "missed: " + "; ".join(row["slo_misses"]), None: ""}[row["within_slo"]]
        target = f"{target_text(row['target_rps']):>10}" if row["target_rps"] else f"{'closed':>10}"
        requests = row.get("server_requests")
        lines.append(f"{row['step']:>5}{row['users']:>7}{target}{row['requests']:>9}{row['failures']:>7}"
                     f"{num('rps', digits=1)}{num('fps', digits=1)}{num('p50_ms')}{num('p90_ms')}{num('p99_ms')}"
                     f"{num('p99.9_ms')}{num('max_ms')}{num('service_p90_ms')}"
                     + (f"{'-' if requests is None else requests:>10}{num('server_request_ms')}"
                        f"{num('server_queue_ms')}{num('server_inference_ms')}" if server else "") + f"  {verdict}")
    if best:
        lines.append(best)
    return "\n".join(lines)


def dumps(rows):
    """JSON text of the steps (for tests and the web UI)."""
    return json.dumps(json_steps(rows))
