"""The periodic status line of headless runs and its history file ``PREFIX_tfs_history.csv``.

Every ``--status-interval`` seconds while the test runs (the run object's status loop): one
console line (users, current req/s and FPS, p50/p99 so far, failures) and the same figures as a CSV
row. The rates come from each source's own request end times (``SourceRates``): a master hears each
worker every 3 s, at offsets of its own, so counting reports as they arrive read 0 or 1.5 times the
rate. Imports neither Locust nor gRPC.
"""

import csv
import time

from tfs_user.results.report import cell_text, ms_text, percent_text

HISTORY_COLUMNS = ["Timestamp", "Users", "Requests", "Failures", "Frames", "Requests/s", "FPS", "p50 ms", "p99 ms"]
LOCAL = "local"
"""The source name of this process's own requests (a local runner)."""
STALE_S = 10.0
"""A source whose latest request ended longer ago than this (wall clock, s) counts 0 (it stopped sending)."""


class SourceRates:
    """Current req/s and FPS, summed over sources (workers, or this process), each from its own end times.

    Each source gives points ``(last end s, ok, frames)``, cumulative: a worker's report adds its
    requests since the previous one and moves its last end. A source's rate is the difference of
    its newest point and the point it had at the previous reading, over that span of its own end
    times. With no new point since, a worker's rate from before holds (its next report has not come
    yet); this process's own total is always current, so its rate is then 0.
    A reading for another statistics object (a reset, a new test) starts afresh.
    """

    def __init__(self):
        self._epoch = None  # the Recorder the points belong to
        self._points = {}  # source -> newest (last end s, ok, frames)
        self._marks = {}  # source -> its point at the previous reading
        self._rates = {}  # source -> (req/s, frames/s) at the previous reading
        self._current = set()  # sources whose points are complete up to now (this process's own)

    def _check_epoch(self, epoch):
        if epoch is not self._epoch:
            self._epoch, self._points, self._marks, self._rates, self._current = epoch, {}, {}, {}, set()

    def add_report(self, source, stats, epoch):
        """A worker's report: ``stats`` (LatencyStats) of its requests since its previous report, for ``epoch``
        (the Recorder it is merged into)."""
        self._check_epoch(epoch)
        if not stats.requests:
            return
        end, ok, frames = self._points.get(source) or (stats.first_start, 0, 0)
        self._marks.setdefault(source, (stats.first_start, 0, 0))  # the first span starts at its first start
        self._points[source] = (max(end, stats.last_end), ok + stats.ok, frames + stats.frames)

    def set_total(self, source, stats, epoch):
        """A source's cumulative ``stats`` (LatencyStats of all its requests so far), for ``epoch``."""
        self._check_epoch(epoch)
        self._current.add(source)
        if stats.requests:
            self._marks.setdefault(source, (stats.first_start, 0, 0))
            self._points[source] = (stats.last_end, stats.ok, stats.frames)

    def read(self, epoch, now=None):
        """(req/s, frames/s) summed over sources; a source counts 0 once its last request ended over STALE_S ago."""
        self._check_epoch(epoch)
        now = time.time() if now is None else now
        rps = fps = 0.0
        for source, point in self._points.items():
            mark = self._marks[source]
            if point[0] > mark[0]:
                span = point[0] - mark[0]
                self._rates[source] = ((point[1] - mark[1]) / span, (point[2] - mark[2]) / span)
                self._marks[source] = point
            elif source in self._current:
                self._rates[source] = (0.0, 0.0)
            if point[0] >= now - STALE_S:
                rate = self._rates.get(source, (0.0, 0.0))
                rps, fps = rps + rate[0], fps + rate[1]
        return rps, fps


class StatusLine:
    """Periodic one-line status: users, current req/s and FPS (``SourceRates``), p50/p99 so far, failures.

    ``rates`` is fed by the master's worker reports; None = a local runner (this process is the source).
    """

    def __init__(self, rates=None):
        self._local = rates is None
        self.rates = SourceRates() if rates is None else rates

    def format(self, recorder, users, now=None):
        total = recorder.total()
        if self._local:
            self.rates.set_total(LOCAL, total, recorder)
        rps, fps = self.rates.read(recorder, now)
        ratio = total.failures / total.requests if total.requests else None
        line = (f"[tfs] users {users} | {rps:.1f} req/s | {fps:.1f} FPS | p50 {ms_text(total.percentile_ms(50))} ms | "
                f"p99 {ms_text(total.percentile_ms(99))} ms | failures {total.failures} ({percent_text(ratio)} %)")
        history = [f"{time.time():.3f}", users, total.requests, total.failures, total.frames,
                   f"{rps:.3f}", f"{fps:.3f}", cell_text(total.percentile_ms(50)), cell_text(total.percentile_ms(99))]
        return line, history


class HistoryFile:
    """``PREFIX_tfs_history.csv``: the HISTORY_COLUMNS header, then one row per status line; ``close()`` closes it."""

    def __init__(self, path):
        self._file = open(path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(HISTORY_COLUMNS)

    def write(self, row):
        self._writer.writerow(row)
        self._file.flush()

    def close(self):
        self._file.close()
