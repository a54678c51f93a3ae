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


class FpsMeter:
    """Current FPS per request name and a chart history, from samples of the Recorder.

    A sample per name is ``(last_end, frames)``: the wall-clock end (s) of the
    latest measured request and the frames counted up to it. Rates between two
    samples use the requests' own end times, not the sampling times, so they
    stay right on a master where workers' data arrive in 3 s steps.
    """

    def __init__(self):
        self.recorder = None
        self.samples = {}  # name -> deque of (last_end s, frames)
        self.chart = collections.deque(maxlen=CHART_POINTS)  # (wall time s, current FPS of Aggregated)

    def sample(self, recorder, now=None):
        """Take one sample of ``recorder``; a new Recorder object (a new test) starts a new series and chart."""
        now = time.time() if now is None else now
        if recorder is not self.recorder:
            self.recorder, self.samples = recorder, {}
            self.chart.clear()
        points = {name: (s.last_end, s.frames) for name, s in recorder.names.items() if s.requests}
        if points:
            points[AGGREGATED] = (max(e for e, _ in points.values()), sum(f for _, f in points.values()))
        for name, point in points.items():
            series = self.samples.setdefault(name, collections.deque())
            if not series or point[0] > series[-1][0]:
                series.append(point)
            while len(series) > 2 and series[1][0] <= point[0] - CURRENT_WINDOW_S:
                series.popleft()
        self.chart.append((now, self.current(AGGREGATED, now)))

    def current(self, name, now=None):
        """Frames/s of ``name`` over about the last CURRENT_WINDOW_S seconds; 0 when none ended in that time."""
        now = time.time() if now is None else now
        series = self.samples.get(name)
        if not series or series[-1][0] < now - CURRENT_WINDOW_S:
            return 0.0
        end, frames = series[-1]
        start = next(((e, f) for e, f in series if e >= end - CURRENT_WINDOW_S and e < end), None)
        if start is None:  # one sample only: rate since the first measured request
            stats = self.recorder.names.get(name) if name != AGGREGATED else self.recorder.total()
            window = end - stats.first_start if stats else 0.0
            return frames / window if window > 0 else 0.0
        return (frames - start[1]) / (end - start[0])
