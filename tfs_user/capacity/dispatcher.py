"""The open loop's dispatcher: hands one process's scheduled slots to its users (greenlets) as they fall due.

A free user asks for the next slot, and one free user at a time waits for it; a slot is handed
out only when it falls due, so a rate change (or a step's edge) takes effect on the wire at once
and a user stopped while waiting holds no slot of the old schedule (before, idle users claimed
their next slots ahead and U idle users held U/rate seconds of the old schedule). Times are
``time.perf_counter()`` seconds.
"""

import math
import time

import gevent
import gevent.event
import gevent.queue

from tfs_user.capacity.arrivals import DispatchStats, Intervals, Slot

NAP_MARGIN_S = 0.005
"""The waiting user naps on an event a rate change can cut short until this long before its slot, then
sleeps the rest on time (``sleep``, e.g. ``engine.precise_sleep``); gevent's timers overshoot by ~0.7 ms."""


class Dispatcher:
    """Hands out the scheduled send times of one process to its users (greenlets).

    ``take()`` waits for its turn (one free user at a time waits for the next slot), waits until the
    slot falls due and claims it then; a slot that fell due before any user was free is late (all
    users were busy) and goes out at once. No slot is claimed ahead of its time, so ``set_rate`` and
    ``end`` replace every slot not yet sent. The schedule never slows down: late slots pile up, they
    are not dropped.
    """

    def __init__(self, rate, arrival="poisson", rng=None, start=None, clock=time.perf_counter, sleep=gevent.sleep,
                 intervals=None):
        # intervals: a gap source given whole (a trace's ``TraceIntervals``: ``next()`` -> s, ``inf`` when over;
        # ``rate``, ``arrival``, ``replay``) instead of drawing from ``Intervals(rate, arrival, rng)``
        self._intervals = intervals if intervals is not None else Intervals(rate, arrival, rng)
        self._clock = clock
        self._sleep = sleep
        self._claimed = 0
        self._turn = _Turn()
        self._changes = 0
        self._changed = gevent.event.Event()
        self._waiting = False  # a user is waiting for the next slot (napping or sleeping)
        self._held = None  # (index, scheduled): the slot that fell due while a user waited for it, kept for it
        self._fresh = start is None  # a constant schedule made now: its first slot is due as it is made, by its maker
        begin = clock() if start is None else start
        self.started = begin
        """When the schedule began (``clock`` s)."""
        self._next = begin + self._first_interval()
        self._line = self._line_now()  # the trace line of the slot at ``_next`` (None without a trace)
        self.stats = DispatchStats(self._intervals.rate)
        self.sent = 0
        """Slots handed out since the start (``stats`` is started afresh at each worker report)."""

    def _line_now(self):
        return getattr(self._intervals, "index", None)

    @property
    def final_due(self):
        """When the schedule's last slot falls due (``clock`` s; inf for an endless schedule)."""
        return self.started + getattr(self._intervals, "last_s", float("inf"))

    def _first_interval(self):
        # constant: the first request goes out at the start; poisson: after an exponential wait
        return 0.0 if self._intervals.arrival == "constant" else self._intervals.next()

    @property
    def rate(self):
        """Target rate of this dispatcher, req/s."""
        return self._intervals.rate

    def set_rate(self, rate, at=None):
        """Start a new schedule at ``rate`` from ``at`` (default now) on, e.g. for the next step of a sweep
        (the same rate closes the old schedule at a step's edge).

        The slots of the old schedule that fell due by ``at`` and were not sent are counted as unsent;
        the user waiting for the next slot wakes and waits for the new schedule's first one.
        """
        if getattr(self._intervals, "replay", False):  # a trace keeps its send times whatever this process's share
            self.stats.target_rps = self._intervals.rate
            return
        at = self._clock() if at is None else at
        self.stats.unsent += self.end(at, hold=True)  # due slots no user took: counted, not dropped silently
        if not rate > 0:  # this process has no part of the rate now (its users of a model left): no slot falls due
            self._next, self.stats.target_rps = math.inf, 0.0
            return
        self._intervals = Intervals(rate, self._intervals.arrival, self._intervals._rng)
        self._next = at + self._first_interval()
        self.stats.target_rps = self._intervals.rate

    def end(self, at, hold=False):
        """How many slots fell due by ``at`` (perf_counter s) that no user took (all were busy); they are
        skipped. The run stops, or the rate changes, at ``at``: later slots are not counted. ``hold`` (a rate
        change, a step's edge): a slot that fell due while a user waited for it is that user's (its wake-up
        was late; it goes out, counted as sent). At the stop nothing is held: what is not out is unsent."""
        overdue = 0
        if hold and self._waiting and self._held is None and self._next <= at:
            self._held = (self._claimed, self._next, self._line)
            self._advance()
        while self._next <= at:
            overdue += 1
            self._advance()
        self._changes += 1
        changed, self._changed = self._changed, gevent.event.Event()
        changed.set()  # the waiting user looks at the schedule again
        return overdue

    def _advance(self):
        self._claimed += 1
        self._next += self._intervals.next()
        self._line = self._line_now()

    @property
    def lines(self):
        """How many slots a trace's replay has in one pass (this process's lines; 0 without a trace)."""
        return getattr(self._intervals, "sends", 0)

    @property
    def over(self):
        """The schedule has no more slots (a trace replayed to its end, not looping): every slot was taken."""
        return self._next == math.inf

    def lag_s(self):
        """How far the oldest unclaimed slot is overdue, seconds (0 when on schedule)."""
        return max(self._clock() - self._next, 0.0)

    def take(self, still_wanted=None):
        """Wait for this user's turn and for the next slot to fall due, claim it and return the Slot (sent =
        now); ``late`` when it was already due as the user got to it (no user was free).

        ``still_wanted()`` (optional) is asked after the wait: False (the run stopped meanwhile) returns
        None, and the slot (due after the stop) is not counted as sent. A user stopped while its slot was
        held for it (``end``) leaves that slot unsent.
        """
        with self._turn:
            waited, wait = False, 0.0  # waited: this user was free before its slot fell due (under any schedule)
            try:
                while self._held is None:
                    changes = self._changes
                    wait = self._next - self._clock()
                    if wait <= 0:
                        break
                    waited = self._waiting = True
                    if wait > NAP_MARGIN_S:
                        self._changed.wait(wait - NAP_MARGIN_S if wait < math.inf else None)  # cut short by set_rate / end
                        continue
                    self._sleep(wait)
                    if changes == self._changes:
                        break
            except BaseException:  # stopped while waiting (GreenletExit): a slot held for it is never sent
                if self._held is not None:
                    self.stats.unsent += 1
                    self._held = None
                raise
            finally:
                self._waiting = False
            kept, self._held = self._held, None
            if kept is None:
                index, scheduled, line = self._claimed, self._next, self._line
                self._advance()
            else:
                index, scheduled, line = kept
            late = not waited and wait < 0 and not self._fresh  # due before a user was free to wait for it
            self._fresh = False
        if kept is None and still_wanted is not None and not still_wanted():
            return None
        slot = Slot(index, scheduled, self._clock(), late=late, line=line)
        self.sent += 1
        self.stats.record(slot)
        return slot


class _Turn:
    """One greenlet at a time, the others wait in order (a one-token queue: a release wakes one waiter;
    gevent.lock would import gevent.monkey, which plain modules keep out)."""

    def __init__(self):
        self._token = gevent.queue.Queue(maxsize=1)
        self._token.put(None)

    def __enter__(self):
        self._token.get()

    def __exit__(self, *exc):
        self._token.put(None)
        return False
