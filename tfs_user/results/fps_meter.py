"""Current FPS per request name, and the FPS-over-time series of the web UI and the HTML report."""

import collections
import time

from tfs_user.results.report import AGGREGATED

SAMPLE_INTERVAL_S = 0.5
"""Seconds between samples of the frame counters (current FPS, chart)."""
CURRENT_WINDOW_S = 10.0
"""Current FPS = frames of requests that ended in about the last 10 s (Locust's current RPS uses 10 s)."""
CHART_POINTS = 7200
"""Chart history: one point per sample, 1 h at SAMPLE_INTERVAL_S."""


LOCAL = "local"
"""The source name of this process's own requests (a local runner)."""


class FpsMeter:
    """Current FPS per request name and a chart history, each source rated over its own request end times.

    A source is this process (a local runner, ``sample``) or, on a master, each worker (``add_report``). Per
    source and name a series of cumulative points ``(end s, frames)``: the wall-clock end of the latest
    measured request and the frames of successful requests up to it, from ``(first start, 0)``. A source's
    rate spans its own points of about the last CURRENT_WINDOW_S seconds; a name's current FPS is the sum
    over sources. Rating by end times, not sampling times, keeps a late report right; rating each worker on
    its own keeps a master right while its workers' reports land every 3 s at offsets of their own (one
    series of merged points, the latest end of any worker beside the frames of all, read 100 and 233 FPS
    at a steady 200). The status line's rates do the same (``tfs_user.results.status.SourceRates``).
    """

    def __init__(self):
        self.recorder = None
        self.samples = {}  # (source, name) -> deque of (end s, frames), cumulative
        self.chart = collections.deque(maxlen=CHART_POINTS)  # (wall time s, current FPS of Aggregated)

    def _check_epoch(self, recorder):
        """A new Recorder object (a new test, a reset) starts new series and a new chart."""
        if recorder is not self.recorder:
            self.recorder, self.samples = recorder, {}
            self.chart.clear()

    def add_report(self, source, reported, recorder):
        """Master: worker ``source``'s report ``reported`` (a Recorder of its measured requests since its previous
        report), merged into ``recorder`` (the series belong to it)."""
        self._check_epoch(recorder)
        for name, (first, end, frames) in _points(reported).items():
            series = self.samples.setdefault((source, name), collections.deque([(first, 0)]))
            last_end, last_frames = series[-1]
            _append(series, (max(end, last_end), last_frames + frames))

    def sample(self, recorder, now=None, local=True):
        """One sample: this process's own requests so far (``local``: a local runner; a master's come by
        ``add_report``) and a chart point of the Aggregated current FPS."""
        now = time.time() if now is None else now
        self._check_epoch(recorder)
        if local:
            for name, (first, end, frames) in _points(recorder).items():
                _append(self.samples.setdefault((LOCAL, name), collections.deque([(first, 0)])), (end, frames))
        self.chart.append((now, self.current(AGGREGATED, now)))

    def current(self, name, now=None):
        """Frames/s of ``name`` over about the last CURRENT_WINDOW_S seconds, summed over sources; a source whose
        latest request ended longer ago adds 0."""
        now = time.time() if now is None else now
        return sum(_rate(series, now) for (_, key), series in self.samples.items() if key == name)


def _points(recorder):
    """{name: (first start s, last end s, frames)} of ``recorder``'s names with requests, and AGGREGATED over them."""
    points = {name: (s.first_start, s.last_end, s.frames) for name, s in recorder.names.items() if s.requests}
    if points:
        points[AGGREGATED] = (min(p[0] for p in points.values()), max(p[1] for p in points.values()),
                              sum(p[2] for p in points.values()))
    return points


def _append(series, point):
    """Add a newer point to ``series``; drop points older than the window, keeping one before it, and the first
    start ``(first, 0)`` once two points of requests' ends give a span of their own."""
    if point[0] > series[-1][0]:
        series.append(point)
        if len(series) == 3 and series[0][1] == 0:
            series.popleft()
    while len(series) > 2 and series[1][0] <= point[0] - CURRENT_WINDOW_S:
        series.popleft()


def _rate(series, now):
    """Frames/s between the oldest point within CURRENT_WINDOW_S of the newest and the newest; 0 when stale."""
    end, frames = series[-1]
    if end < now - CURRENT_WINDOW_S:
        return 0.0
    start = next(((e, f) for e, f in series if e >= end - CURRENT_WINDOW_S and e < end), None)
    return (frames - start[1]) / (end - start[0]) if start is not None else 0.0
