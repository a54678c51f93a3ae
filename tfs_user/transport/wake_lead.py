"""How early a native-thread sleep must end so that the greenlet waiting on it is back by its deadline.

``engine.precise_sleep`` (the open-loop dispatcher's wait) sleeps on a native thread; the OS sleep
overshoots by about 0.1 ms here and the hand-off back through gevent's hub adds 0.1-0.2 ms, so its
sends left 0.13-0.25 ms late at the median. It ends the native sleep early by the median of that
overshoot, learnt one wait at a time, and spins through what is left. No gevent here: the tracker
is plain arithmetic.
"""

WAKE_QUANTILE = 0.5
"""The share of waits that come back before their deadline (and spin the rest): the median keeps the
spinning short (CPU per request +1-5 % at 300-1000 req/s, benchmarks/send_error.py; +25 % at 1000 req/s
with 0.75) ..."""
WAKE_LEAD_STEP_S = 5e-6
"""... learning by this step per wait, seconds ..."""
WAKE_LEAD_MAX_S = 5e-4
"""... and never leading (hence spinning, holding the event loop) by more than this, seconds."""


class WakeLead:
    """How early a native-thread sleep must end so the greenlet is back by its deadline: the
    ``WAKE_QUANTILE`` quantile of the wake-up's overshoot (the OS sleep's own overshoot plus the
    hand-off through the hub), tracked one wait at a time (seconds, 0 <= ``lead_s`` <= WAKE_LEAD_MAX_S)."""

    __slots__ = ("lead_s",)

    def __init__(self):
        self.lead_s = 0.0

    def learn(self, overshoot_s):
        """One wait came back ``overshoot_s`` seconds after the time its native sleep ended (its target)."""
        if overshoot_s <= self.lead_s:
            step = WAKE_LEAD_STEP_S * (WAKE_QUANTILE - 1.0)  # back in time: lead a little less
        else:
            step = WAKE_LEAD_STEP_S * WAKE_QUANTILE  # late: lead a little more
        self.lead_s = min(max(self.lead_s + step, 0.0), WAKE_LEAD_MAX_S)
