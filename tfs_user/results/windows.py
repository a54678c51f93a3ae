"""Windows within a run (batch means): the figures a comparison needs to judge its own noise.

Latencies within a run are not independent (a stall, a GC, a neighbour on the machine touch many
neighbouring requests), so a comparison never treats n requests as n samples: it takes one figure
per time window (p50, p90, p99, FPS, fail ratio) and judges the spread of those (``compare``).

Windows are aligned to the wall clock (``time.time()``): window ``i`` of width ``w`` covers
``[i*w, (i+1)*w)``, so windows of several worker processes or hosts merge by index. A process keeps
at most ``MAX_WINDOWS``; past that the width doubles (pairs of windows merge, ``i -> i // 2``), and
a merge of two ``Windows`` of different widths first coarsens the finer one: long runs stay bounded
in memory (one HDR histogram per window, about 0.2 MB) and still give tens of windows.
"""

import math

WINDOW_S = 1.0
"""Width of a window, s, until a run holds more than MAX_WINDOWS of them."""
MAX_WINDOWS = 64
MIN_SHARE = 0.5
"""A window counts for the noise only when the measured requests span at least this share of it
(the first and last window of a run are partial)."""


class Windows:
    """Per-window LatencyStats (``tfs_user.stats``) of one request name or step; ``width_s`` = WINDOW_S * 2**k."""

    def __init__(self, width_s=WINDOW_S):
        self.width_s = width_s
        self.by_index = {}

    def record(self, response_time_ms, ok, frames, start, end):
        """One measured request (as ``LatencyStats.record``), filed under the window its end falls in."""
        index = math.floor(end / self.width_s)
        stats = self.by_index.get(index)
        if stats is None:
            from tfs_user.stats import LatencyStats

            stats = self.by_index[index] = LatencyStats()
            if len(self.by_index) > MAX_WINDOWS:
                self._coarsen(self.width_s * 2)
                self.record(response_time_ms, ok, frames, start, end)
                return
        stats.record(response_time_ms, ok, frames, start, end)

    def _coarsen(self, width_s):
        """Merge windows until they are ``width_s`` wide (a power-of-two multiple of the present width)."""
        factor = round(width_s / self.width_s)
        merged = {}
        for index, stats in sorted(self.by_index.items()):
            if not stats.requests:
                continue
            into = merged.get(index // factor)
            if into is None:
                merged[index // factor] = stats
            else:
                into.merge(stats)
        self.by_index = merged
        self.width_s = width_s

    def merge(self, other):
        """Add another Windows (a worker's) into this one, at the coarser of the two widths."""
        if other.width_s > self.width_s:
            self._coarsen(other.width_s)
        elif other.width_s < self.width_s:
            copy = Windows(other.width_s)
            copy.by_index = dict(other.by_index)
            copy._coarsen(self.width_s)
            other = copy
        from tfs_user.stats import LatencyStats

        for index, stats in other.by_index.items():
            self.by_index.setdefault(index, LatencyStats()).merge(stats)
        while len(self.by_index) > MAX_WINDOWS:
            self._coarsen(self.width_s * 2)

    def to_message(self):
        return {"width_s": self.width_s, "windows": {str(i): s.to_message() for i, s in self.by_index.items()}}

    @classmethod
    def from_message(cls, data):
        from tfs_user.stats import LatencyStats

        windows = cls(data["width_s"])
        windows.by_index = {int(i): LatencyStats.from_message(d) for i, d in data["windows"].items()}
        return windows

    def figures(self, first_start, last_end):
        """JSON-ready list, one dict per window in time order: ``start`` (wall-clock s), ``span_s`` (the part of
        the window inside the measured window ``first_start``..``last_end``), requests, failures, fail_ratio,
        ``fps`` (frames / span), ``p50_ms``, ``p90_ms``, ``p99_ms`` (None without successes), ``full`` (span at
        least MIN_SHARE of the width: the windows a comparison uses)."""
        out = []
        for index, stats in sorted(self.by_index.items()):
            start = index * self.width_s
            span = min(start + self.width_s, last_end) - max(start, first_start)
            row = stats.summary()
            out.append({
                "start": start, "span_s": round(span, 6), "requests": row["requests"], "failures": row["failures"],
                "fail_ratio": row["fail_ratio"], "fps": row["frames"] / span if span > 0 else None,
                "p50_ms": row["p50_ms"], "p90_ms": row["p90_ms"], "p99_ms": row["p99_ms"],
                "full": span >= MIN_SHARE * self.width_s,
            })
        return out
