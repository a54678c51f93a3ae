"""Event-loop lag: how late this process's event loop ran a greenlet that was due, in ms.

Every response reaches its user through the gevent hub (``tfs_user.transport.engine``): when the
users, our statistics or Locust keep the loop busy, or the machine gives the process no CPU, the
user runs late, and every latency this process measures carries that wait. The probe is a
greenlet that sleeps ``INTERVAL_S`` on gevent's timer and records how late it ran: the lag. It
includes the timer's own granularity (libev waits in whole milliseconds: 0-1 ms on an idle loop),
hence WARN_MIN_MS. A probe that woke through a native thread instead (``engine.precise_sleep``)
read finer but cost 10-20 % of the main job's FPS here: each wake-up took the GIL from the busy
main thread.

It runs in every process that runs users (local runner, workers) from ``test_start`` to
``test_stop``; the figures travel with the ``tfs_user.stats.Recorder`` (and per sweep step with
the step statistics) and merge on the master. ``warning`` is the one line a run prints when the
load generator itself was the bottleneck, the way perf_analyzer warns when its own overhead
passes 10 %.

This module imports no gevent until ``probe`` runs (the summary formatters use its functions).
"""

import time

INTERVAL_S = 0.02
"""Seconds between the probe's wake-ups: 50 samples/s. Measured here: about 230 us of CPU per wake-up
of an idle process (1 % of a core), less in a busy one, whose loop is awake anyway."""
WARN_SHARE = 0.10
"""Warn when the lag's p99 passes this share of the measured median latency ..."""
WARN_MIN_MS = 2.0
"""... and this many ms (the timer's granularity alone reaches 1 ms: below 2 ms a fast server's figures
would warn on an idle machine)."""


def probe(record, interval_s=INTERVAL_S, sleep=None, clock=time.perf_counter):
    """Run until killed: every ``interval_s`` seconds sleep (default ``gevent.sleep``) and call
    ``record(lag_ms)`` with how late this greenlet ran (float ms >= 0). Call it in the process
    that runs the users, as a greenlet of its own.
    """
    if sleep is None:
        import gevent

        sleep = gevent.sleep
    while True:
        due = clock() + interval_s
        sleep(interval_s)
        record(max(clock() - due, 0.0) * 1000.0)


class Probe:
    """The probe of one process's test: ``start()`` at ``test_start`` (again for a new test), ``stop()``
    at ``test_stop``; samples go to ``record(lag_ms)``."""

    def __init__(self, record):
        self.record = record
        self._greenlet = None

    def start(self):
        import gevent

        self.stop()
        self._greenlet = gevent.spawn(probe, self.record)

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None


def figures(stats):
    """The lag figures of a ``tfs_user.stats.LatencyStats`` of lag samples: dict loop_lag_samples (int),
    loop_lag_p50_ms, loop_lag_p99_ms, loop_lag_max_ms (float ms; None without samples)."""
    has = stats.ok > 0
    return {
        "loop_lag_samples": stats.ok,
        "loop_lag_p50_ms": stats.percentile_ms(50) if has else None,
        "loop_lag_p99_ms": stats.percentile_ms(99) if has else None,
        "loop_lag_max_ms": stats.max_ms if has else None,
    }


def warning(lag_p99_ms, latency_p50_ms):
    """One line when the event loop's lag was a large part of what was measured, else None.

    Large: p99 lag above WARN_MIN_MS and above WARN_SHARE of the median latency (ms; None
    without figures gives None).
    """
    if lag_p99_ms is None or latency_p50_ms is None:
        return None
    if lag_p99_ms <= WARN_MIN_MS or lag_p99_ms <= WARN_SHARE * latency_p50_ms:
        return None
    return (f"load generator was a bottleneck: its event loop ran due work late by p99 {lag_p99_ms:.3f} ms, "
            f"over {100 * WARN_SHARE:.0f} % of the p50 latency {latency_p50_ms:.3f} ms, and latencies include that wait; "
            "use fewer users per process (--processes N, more workers) or a machine with spare CPU")
