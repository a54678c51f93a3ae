"""Exact latency statistics: HDR histograms per request name, mergeable across workers.

Latencies are recorded in microseconds in an ``HdrHistogram`` with 3
significant digits: values up to 2.047 ms are exact to 1 us, larger ones within
0.1 %. Count, sum, min and max are kept exactly beside it. The latency
distribution covers successful measured requests; failures are counted (and
still bound the measured window) but do not enter the percentiles.

The measured window runs from the start of the first measured request to the
end of the last one, in wall-clock seconds (``time.time()``) so that windows
from several worker processes or hosts can be merged (hosts need synchronized
clocks, e.g. NTP). Durations themselves come from ``time.perf_counter``.
"""

import math
import time
from decimal import Decimal
from fractions import Fraction

import numpy as np
from hdrh.histogram import HdrHistogram

from tfs_user.results.windows import Windows

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def nearest_rank(percent, count):
    """The 1-based nearest rank of ``percent`` (0-100) among ``count`` >= 1 values: ceil(percent/100 * count),
    at least 1, at most ``count``.

    Computed exactly from the decimal the percent is written as (99.9 is 999/10, so p99.9 of 20000 is
    rank 19980, where float arithmetic gives 19980.000000000004 and rank 19981). This is numpy's
    ``method="inverted_cdf"`` and HdrHistogram Java's rule; ``hdrh`` rounds half up instead
    (``int(p*n/100 + 0.5)``), which reads p99 of 160 values as the 158th.
    """
    exact = Fraction(Decimal(repr(float(percent)))) * count / 100
    return min(max(math.ceil(exact), 1), count)


def _new_histogram():
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


class LatencyStats:
    """Measured requests of one request name: latency distribution, counts, frames, window.

    ``windowed``: also keep per-window statistics (``tfs_user.results.windows``) for comparisons.
    """

    def __init__(self, windowed=False):
        self.windows = Windows() if windowed else None
        self.histogram = _new_histogram()
        self.ok = 0
        self.failures = 0
        self.frames = 0
        self.sum_ms = 0.0
        self.min_ms = float("inf")
        self.max_ms = 0.0
        self.first_start = float("inf")
        self.last_end = 0.0

    def record(self, response_time_ms, ok, frames, start, end):
        """Add one measured request: latency in ms, success flag, frames it carried, wall-clock start/end in s."""
        self.first_start = min(self.first_start, start)
        self.last_end = max(self.last_end, end)
        if self.windows is not None:
            self.windows.record(response_time_ms, ok, frames, start, end)
        if not ok:
            self.failures += 1
            return
        self.ok += 1
        self.frames += frames
        self.sum_ms += response_time_ms
        self.min_ms = min(self.min_ms, response_time_ms)
        self.max_ms = max(self.max_ms, response_time_ms)
        self.histogram.record_value(min(max(round(response_time_ms * 1000), LOWEST_US), HIGHEST_US))

    def merge(self, other):
        """Add another LatencyStats (e.g. a worker's) into this one."""
        if self.windows is not None and other.windows is not None:
            self.windows.merge(other.windows)
        self.histogram.add(other.histogram)
        self.ok += other.ok
        self.failures += other.failures
        self.frames += other.frames
        self.sum_ms += other.sum_ms
        self.min_ms = min(self.min_ms, other.min_ms)
        self.max_ms = max(self.max_ms, other.max_ms)
        self.first_start = min(self.first_start, other.first_start)
        self.last_end = max(self.last_end, other.last_end)

    @property
    def requests(self):
        return self.ok + self.failures

    @property
    def window_s(self):
        """Measured window in s: first measured start to last measured end (0 before any request)."""
        return self.window_between()

    def window_between(self, start=None, end=None):
        """The measured window in s from ``start`` to ``end`` (wall clock; None = the first measured start /
        the last measured end). An open loop gives its schedule's edges: n requests of a schedule at rate r
        over its span read r, where first start to last end spans n - 1 gaps (0 before any request)."""
        if not self.requests:
            return 0.0
        start = self.first_start if start is None else min(start, self.first_start)
        end = self.last_end if end is None else end
        return max(end - start, 0.0)

    def percentile_ms(self, percent):
        """Latency at ``percent`` (0-100) in ms, from the histogram; None without successes (an empty set).

        The histogram answers with the highest value of the bucket (up to 0.1 %
        above the sample); it is clamped to the exact min/max.
        """
        if not self.ok:
            return None
        return self._values_at([percent])[percent]

    def _values_at(self, percents):
        """{percent: ms} by nearest rank (``nearest_rank``) over the histogram, in one pass; p <= 0 is the
        exact min, p >= 100 the exact max. The value is the highest of the rank's HDR bucket, clamped to
        the exact min/max (HdrHistogram's precision, never a neighbouring rank), in whole microseconds."""
        histogram = self.histogram
        cumulative = np.cumsum(np.ctypeslib.as_array(histogram.counts)[: histogram.counts_len])
        count = int(cumulative[-1])
        values = {}
        for p in percents:
            if p <= 0 or p >= 100:
                values[p] = self.min_ms if p <= 0 else self.max_ms
                continue
            index = int(np.searchsorted(cumulative, nearest_rank(p, count)))  # first bucket reaching the rank
            top = histogram.get_highest_equivalent_value(histogram.get_value_from_index(index))
            values[p] = round(self._clamp(top / 1000.0), 3)  # whole us, the unit recorded: what is printed is judged
        return values

    def _clamp(self, value_ms):
        return min(max(value_ms, self.min_ms), self.max_ms)

    def summary(self, start=None, end=None):
        """Dict of the figures users read: counts, frames, window_s, rps, fps, latency in ms; the window's
        edges as ``window_between`` takes them.

        Statistics of an empty set are None, never 0: latency without a successful request,
        rates without a measured window, the fail ratio without requests.
        """
        window = self.window_between(start, end)
        row = {
            "requests": self.requests,
            "failures": self.failures,
            "fail_ratio": self.failures / self.requests if self.requests else None,
            "frames": self.frames,
            "window_s": window,
            "rps": self.ok / window if window > 0 else None,
            "fps": self.frames / window if window > 0 else None,
            "min_ms": self.min_ms if self.ok else None,
            "mean_ms": self.sum_ms / self.ok if self.ok else None,
        }
        values = self._values_at(PERCENTILES) if self.ok else {}
        for p in PERCENTILES:
            row[f"p{p:g}_ms"] = values[p] if self.ok else None
        row["max_ms"] = self.max_ms if self.ok else None
        return row

    def to_message(self):
        """msgpack-serializable dict (histogram HDR-encoded) for Locust's worker report."""
        return {
            "hist": self.histogram.encode() if self.ok else b"",
            "ok": self.ok,
            "failures": self.failures,
            "frames": self.frames,
            "sum_ms": self.sum_ms,
            "min_ms": self.min_ms if self.ok else None,
            "max_ms": self.max_ms,
            "first_start": self.first_start if self.requests else None,
            "last_end": self.last_end,
            "windows": self.windows.to_message() if self.windows is not None else None,
        }

    @classmethod
    def from_message(cls, data):
        stats = cls()
        if data.get("windows") is not None:
            stats.windows = Windows.from_message(data["windows"])
        if data["hist"]:
            stats.histogram = HdrHistogram.decode(data["hist"])
        stats.ok = data["ok"]
        stats.failures = data["failures"]
        stats.frames = data["frames"]
        stats.sum_ms = data["sum_ms"]
        stats.min_ms = data["min_ms"] if data["min_ms"] is not None else float("inf")
        stats.max_ms = data["max_ms"]
        stats.first_start = data["first_start"] if data["first_start"] is not None else float("inf")
        stats.last_end = data["last_end"]
        return stats


def part_name(name, label):
    """The row of a mixed run's part: ``Predict resnet [batch 8]`` for name ``Predict resnet``, label ``batch 8``."""
    return f"{name} [{label}]"


def part_order(row_name):
    """Sort key of part rows: by kind, then numerically where the value is a number (batch 1, 8, 32)."""
    label = row_name.rpartition(" [")[2].rstrip("]")
    kind, _, value = label.partition(" ")
    return (kind, 0, int(value), "") if value.isdigit() else (kind, 1, 0, value)


class Recorder:
    """All TFS statistics of one process (or, on a master, of all its workers).

    ``names`` maps request name -> LatencyStats of measured requests;
    ``warmup`` and ``warmup_failures`` count warm-up requests; ``after_stop``
    counts requests that completed after the runner began to stop (left out);
    ``loop_lag`` holds the event-loop lag samples, ms (``tfs_user.loop_lag``);
    ``parts`` maps part row name -> LatencyStats for a mixed run's rows (``Predict resnet [batch 8]``): each
    request counts in its name's row and in each of its parts' rows, which ``total`` leaves out.
    """

    def __init__(self):
        self.names = {}
        self.parts = {}
        self.warmup = 0
        self.warmup_failures = 0
        self.after_stop = 0
        self.loop_lag = LatencyStats()
        self.edges = (None, None)
        """Open loop: the measured schedule's start and end, wall-clock s (None = not set; ``bound``)."""

    def bound(self, start=None, end=None):
        """Open loop: the measured window starts at the schedule's ``start`` / ends at the stop ``end``
        (wall-clock s; the earliest start and latest end of every process count)."""
        self.edges = widen(self.edges, start, end)

    def record(self, name, response_time_ms, ok, frames, start, end, parts=()):
        """One measured request under ``name`` and, for each label in ``parts``, under ``part_name(name, label)``."""
        stats = self.names.get(name)
        if stats is None:
            stats = self.names[name] = LatencyStats(windowed=True)
        stats.record(response_time_ms, ok, frames, start, end)
        for label in parts:
            key = part_name(name, label)
            stats = self.parts.get(key)
            if stats is None:
                stats = self.parts[key] = LatencyStats()
            stats.record(response_time_ms, ok, frames, start, end)

    def record_lag(self, lag_ms):
        """One event-loop lag sample, ms."""
        wall = time.time()
        self.loop_lag.record(lag_ms, True, 0, wall, wall)

    def total(self, windowed=False):
        """LatencyStats of all names merged; ``windowed`` merges their windows too (the final summary only:
        about 1 ms per window, too slow for a live status line)."""
        total = LatencyStats(windowed=windowed)
        for stats in self.names.values():
            total.merge(stats)
        return total

    def merge(self, other):
        for name, stats in other.names.items():
            self.names.setdefault(name, LatencyStats(windowed=True)).merge(stats)
        for name, stats in other.parts.items():
            self.parts.setdefault(name, LatencyStats()).merge(stats)
        self.warmup += other.warmup
        self.warmup_failures += other.warmup_failures
        self.after_stop += other.after_stop
        self.loop_lag.merge(other.loop_lag)
        self.bound(*other.edges)

    def to_message(self):
        return {
            "names": {name: stats.to_message() for name, stats in self.names.items()},
            "parts": {name: stats.to_message() for name, stats in self.parts.items()},
            "warmup": self.warmup,
            "warmup_failures": self.warmup_failures,
            "after_stop": self.after_stop,
            "loop_lag": self.loop_lag.to_message(),
            "edges": list(self.edges),
        }

    @classmethod
    def from_message(cls, data):
        recorder = cls()
        recorder.names = {name: LatencyStats.from_message(d) for name, d in data["names"].items()}
        recorder.parts = {name: LatencyStats.from_message(d) for name, d in data.get("parts", {}).items()}
        recorder.warmup = data["warmup"]
        recorder.warmup_failures = data["warmup_failures"]
        recorder.after_stop = data["after_stop"]
        recorder.loop_lag = LatencyStats.from_message(data["loop_lag"])
        recorder.edges = tuple(data.get("edges", (None, None)))
        return recorder

    def is_empty(self):
        return not (self.names or self.warmup or self.after_stop or self.loop_lag.ok or self.edges != (None, None))


def widen(edges, start=None, end=None):
    """Window edges ``(start, end)`` (wall-clock s, None = not set) taking ``start`` and ``end`` in too: the
    earliest start, the latest end."""
    first, last = edges
    first = start if first is None else first if start is None else min(first, start)
    last = end if last is None else last if end is None else max(last, end)
    return first, last
