"""Open-loop arrivals: a schedule of send times at a target rate, and the dispatcher users take them from.

In open-loop mode (``--arrival-rate R``) requests arrive on a schedule that does
not depend on the server: R requests/s for the whole test, split over processes
in proportion to their users (``process_rate``). Inter-arrival times are
exponential (``poisson``, a Poisson process) or all equal to 1/R (``constant``).
Users (greenlets) only bound the requests in flight: a free user asks the process's
``Dispatcher`` (``tfs_user.capacity.dispatcher``) for the next slot when it falls due.
When every user is busy, slots fall due unclaimed and the request goes out late; that
is counted, with how late, and never hidden by lowering the rate (the schedule keeps
its own clock; see ``DispatchStats.warning``).

Latency of an open-loop request is measured from its *scheduled* send time to
the response (corrected for coordinated omission, as wrk2 ``-R`` does); the
service time is measured from the actual send, and reported beside it
(``Slot.latency_ms`` / ``Slot.service_ms``).

Times are ``time.perf_counter()`` seconds unless named ``*_ms``.
"""

import os
import time
from dataclasses import dataclass

import numpy as np

from tfs_user.capacity.arrival_kinds import ARRIVALS, ArrivalError, check_arrival  # noqa: F401 (kept importable from here)
from tfs_user.stats import LatencyStats, widen

DRAW_AHEAD = 4096
"""Inter-arrival times drawn per numpy call."""
LATE_WARN_RATIO = 0.01
"""Warn when more than this share of the sends went out late (no user waiting when they fell due) ..."""
LATE_WARN_MIN = 10
"""... and at least this many did (a single late send at start-up is noise)."""


def process_rate(total_rate, users, total_users):
    """This process's share of ``total_rate`` (req/s): ``total_rate * users / total_users``.

    ``users`` are this process's users, ``total_users`` those of the whole test
    (all workers). Raises ArrivalError for a rate <= 0 or a user count that does not fit.
    """
    if not total_rate > 0:
        raise ArrivalError(f"--arrival-rate {total_rate!r} is not valid; expected requests/s > 0")
    if total_users < 1 or not 0 <= users <= total_users:
        raise ArrivalError(f"{users} users of {total_users} is not a valid share; expected 0 <= users <= total >= 1")
    return total_rate * users / total_users


def process_rng(seed=None, process_key=None, lane=None):
    """A numpy Generator for one process's arrivals.

    ``seed`` (int or None = OS entropy) is the test's seed; ``process_key`` (e.g.
    the worker index; default the pid) makes each process draw its own sequence,
    so two workers never send in lockstep; ``lane`` (an int: a model's number in a
    run of several) gives each model's schedule its own stream. Create it after Locust forks.
    """
    key = os.getpid() if process_key is None else int(process_key)
    spawn_key = (key,) if lane is None else (key, int(lane))
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=spawn_key))


class Intervals:
    """Inter-arrival times in seconds at ``rate`` req/s: exponential (``poisson``), 1/rate (``constant``) or
    gamma-distributed with mean 1/rate and coefficient of variation CV (``gamma:CV``: shape 1/CV^2, scale
    CV^2/rate; CV 1 is Poisson, above 1 bursts and lulls, as aiperf's gamma arrivals)."""

    def __init__(self, rate, arrival="poisson", rng=None):
        check_arrival(arrival)
        if not rate > 0:
            raise ArrivalError(f"arrival rate {rate!r} is not valid; expected requests/s > 0")
        self.rate = float(rate)
        self.arrival = arrival
        self._rng = rng if rng is not None else process_rng()
        self._buffer = np.empty(0)
        self._position = 0

    def next(self):
        """The next inter-arrival time, seconds (float)."""
        if self.arrival == "constant":
            return 1.0 / self.rate
        if self._position >= len(self._buffer):
            name, _, cv = self.arrival.partition(":")
            if name == "gamma":
                shape = 1.0 / float(cv) ** 2
                self._buffer = self._rng.gamma(shape, 1.0 / (self.rate * shape), DRAW_AHEAD)
            else:
                self._buffer = self._rng.exponential(1.0 / self.rate, DRAW_AHEAD)
            self._position = 0
        value = self._buffer[self._position]
        self._position += 1
        return float(value)


@dataclass
class Slot:
    """One scheduled request: its index in the schedule, scheduled and actual send time (perf_counter s)."""

    index: int
    scheduled: float
    sent: float
    late: bool
    """Claimed after its scheduled time: no user was free when it fell due."""
    line: int = None
    """The trace line (0-based) this slot replays (its model and batch size), or None without a trace."""

    def latency_ms(self, end):
        """Open-loop latency, ms: response time ``end`` minus the scheduled send time."""
        return (end - self.scheduled) * 1000.0

    def service_ms(self, end):
        """Service time, ms: response time ``end`` minus the actual send."""
        return (end - self.sent) * 1000.0

    @property
    def send_error_ms(self):
        """Actual minus scheduled send time, ms (>= 0 up to clock granularity)."""
        return (self.sent - self.scheduled) * 1000.0


class DispatchStats:
    """What a dispatcher did, mergeable across processes (``to_message``/``from_message``).

    ``send_error`` holds actual-minus-scheduled send time (ms) of every send
    (the scheduling error), ``lateness`` the same for late sends only.
    ``target_rps`` is summed on merge (each process holds its share). ``unsent`` counts slots that
    fell due and were never sent: no user took them before the run stopped or the rate changed. A send is late
    when no user was already waiting for its slot as it fell due: all users busy, or the event loop behind.
    """

    def __init__(self, target_rps=0.0):
        self.target_rps = target_rps
        self.sent = 0
        self.late = 0
        self.unsent = 0
        self.send_error = LatencyStats()
        self.lateness = LatencyStats()
        self.edges = (None, None)
        """The schedule's start and the stop, wall-clock s (``tfs_user.stats.Recorder.bound``)."""

    def bound(self, start=None, end=None):
        """The schedule started at ``start`` / stopped at ``end`` (wall-clock s)."""
        self.edges = widen(self.edges, start, end)

    def record(self, slot):
        wall = time.time()
        error = max(slot.send_error_ms, 0.0)
        self.sent += 1
        self.send_error.record(error, True, 1, wall, wall)
        if slot.late:
            self.late += 1
            self.lateness.record(error, True, 1, wall, wall)

    def merge(self, other):
        self.target_rps += other.target_rps
        self.sent += other.sent
        self.late += other.late
        self.unsent += other.unsent
        self.send_error.merge(other.send_error)
        self.lateness.merge(other.lateness)
        self.bound(*other.edges)

    def summary(self):
        """Dict: target_rps, sent, unsent, achieved_rps (sent over the schedule's span, from its start to the
        stop: the run's measured window; None without both edges), late, late_ratio, lateness p50/p99/max ms
        (None without late sends), send_error_p50_ms and _p99_ms (actual minus scheduled send time of every send)."""
        start, end = self.edges
        window = end - start if start is not None and end is not None else 0.0
        empty = self.lateness.ok == 0
        return {
            "target_rps": self.target_rps,
            "sent": self.sent,
            "unsent": self.unsent,
            "achieved_rps": self.sent / window if window > 0 else None,
            "late": self.late,
            "late_ratio": self.late / self.sent if self.sent else None,
            "late_p50_ms": None if empty else self.lateness.percentile_ms(50),
            "late_p99_ms": None if empty else self.lateness.percentile_ms(99),
            "late_max_ms": None if empty else self.lateness.max_ms,
            "send_error_mean_ms": self.send_error.sum_ms / self.sent if self.sent else None,
            "send_error_p50_ms": self.send_error.percentile_ms(50) if self.sent else None,
            "send_error_p99_ms": self.send_error.percentile_ms(99) if self.sent else None,
        }

    def warning(self, remedy="--arrival-rate", lag_p99_ms=None):
        """One line when the schedule was not kept (too many late sends, or due requests never sent), else None;
        ``remedy`` is the option to lower (a trace's: --trace-speedup). ``lag_p99_ms``: the run's event-loop lag
        p99 (``tfs_user.loop_lag``), if measured: as large as the median late send's lateness, the event loop
        rather than busy users explains it, and the advice says so (not "add users")."""
        many_late = self.late >= LATE_WARN_MIN and self.late > LATE_WARN_RATIO * self.sent
        if not many_late and not self.unsent:
            return None
        s = self.summary()
        late = (f"{self.late} of {self.sent} requests ({100 * s['late_ratio']:.1f} %) sent late, no user waiting when "
                f"they fell due (late by p50 {s['late_p50_ms']:.1f} ms, p99 {s['late_p99_ms']:.1f} ms, max "
                f"{s['late_max_ms']:.1f} ms)" if self.late else f"no request of {self.sent} sent late")
        were = "was" if self.unsent == 1 else "were"
        unsent = (f"; {self.unsent} more fell due and {were} never sent (no user sent {'it' if self.unsent == 1 else 'them'}"
                  " before the stop or the next step)" if self.unsent else "")
        behind = self.late and lag_p99_ms is not None and lag_p99_ms >= s["late_p50_ms"]
        advice = (f"the event loop ran late (lag p99 {lag_p99_ms:.1f} ms): use more processes (--processes) or lower "
                  f"{remedy}" if behind else f"add users or lower {remedy}")
        return f"open-loop schedule not kept: {late}{unsent}; latencies include the wait; {advice}"

    def to_message(self):
        return {"target_rps": self.target_rps, "sent": self.sent, "late": self.late, "unsent": self.unsent,
                "send_error": self.send_error.to_message(), "lateness": self.lateness.to_message(),
                "edges": list(self.edges)}

    @classmethod
    def from_message(cls, data):
        stats = cls(data["target_rps"])
        stats.sent, stats.late, stats.unsent = data["sent"], data["late"], data["unsent"]
        stats.send_error = LatencyStats.from_message(data["send_error"])
        stats.lateness = LatencyStats.from_message(data["lateness"])
        stats.edges = tuple(data.get("edges", (None, None)))
        return stats
