"""This process's open-loop schedules: one ``Dispatcher`` per lane (``tfs_user.capacity.lanes``), each with its own
seeded stream and its own ``DispatchStats``.

Every lane of a process opens at the same moment, when its first user asks for a scheduled slot (as the one
schedule did before lanes), so the models' schedules run side by side (a worker replaying a trace: every lane's
time 0 is the master's moment for all workers, ``trace_start``); a lane whose rate on this process is
0 then (its users run on other workers) opens when it gets a part. ``take`` hands a user the next slot of its
lane; ``end`` counts each lane's due slots no user took as never sent; ``trace_done`` says when this
process's part of a trace is out (every lane over, or due with no user of its model here to send it).
Times are ``time.perf_counter()`` seconds.
"""

import logging
import time

import gevent

from tfs_user.capacity.arrivals import process_rng
from tfs_user.capacity.dispatcher import Dispatcher
from tfs_user.capacity.lanes import ANY
from tfs_user.transport.engine import precise_sleep

logger = logging.getLogger(__name__)

WAIT_S = 0.05
"""A user of a lane this process has no part of yet polls this often (a worker hears its part with each load)."""


def parts(c, load=None):
    """{key: (req/s, (rank, count) or None)}: this process's part of every lane at ``load`` (default now); None
    while a worker has not heard it from the master. A local runner's part is the whole plan."""
    load = c.load if load is None else load
    if load.lanes is not None:
        return load.lanes
    if c.run.worker:
        return None
    rates = c.config.lanes.rates(load.rate)
    return {key: (rate, (0, 1)) for key, rate in rates.items()}


def _make(c, key, rate, share, start=None):
    config = c.config
    seed = None if config.seed < 0 else config.seed
    worker = getattr(c.environment.runner, "worker_index", None)
    number = config.lanes.keys.index(key) if config.lanes.per_model else None  # the ANY lane: the stream of old
    intervals = None
    if config.trace is not None:
        lines = config.lanes.lines(key) if config.lanes.per_model else None
        intervals = config.trace_intervals(share or (0, 1), lines=lines if share is not None else ())
    dispatcher = Dispatcher(rate, config.arrival, rng=process_rng(seed, worker, number), sleep=precise_sleep,
                            intervals=intervals, start=start)
    c.lanes[key] = dispatcher
    c.dispatches[key] = dispatcher.stats
    begun = time.time() - (time.perf_counter() - dispatcher.started)  # the measured window begins here
    dispatcher.stats.bound(start=begun)
    return begun


def open_lanes(c, now_parts, start=None):
    """Open this process's lanes (first scheduled request): a trace's every lane, a rate's those with a part; all
    with time 0 at ``start`` (perf_counter s: a worker's trace starts at the master's moment, ``trace_start``) or
    now (None: each as it is made, so a constant schedule's first slot is its maker's, not late)."""
    for key, (rate, share) in sorted(now_parts.items()):
        if key not in c.lanes and (c.config.trace is not None or rate > 0):
            begun = _make(c, key, rate, share, start)
            c.run.recorder.bound(start=begun)


def update(c, before, load):
    """A new load point: each lane's new part of the rate (a new step restarts its schedule; the slots of the
    old one that fell due and were not sent are its unsent), and a lane that got its first part opens."""
    if not c.lanes or load.rate <= 0:
        return
    new, old = parts(c, load), parts(c, before) or {}
    if new is None:
        return
    for key, (rate, share) in new.items():
        dispatcher = c.lanes.get(key)
        if dispatcher is None:
            if rate > 0 and c.config.trace is None:
                _make(c, key, rate, share)
        elif rate != old.get(key, (None,))[0] or load.index != before.index:
            dispatcher.set_rate(rate)


def take(c, key, still_wanted):
    """The next slot of lane ``key`` for a user (waits for its turn and for the slot), or None when the run
    stopped meanwhile. A lane this process has no part of yet: waits until it has one (or the stop)."""
    while key not in c.lanes:
        if not still_wanted():
            return None
        gevent.sleep(WAIT_S)  # ``update`` opens it with the load that gives it a part
    return c.lanes[key].take(still_wanted=still_wanted)


def end(c, stopped_at):
    """The run stops at ``stopped_at``: each lane's due slots that no user took are counted as never sent.
    Returns the wall-clock stop (the measured window's end)."""
    stopped_wall = time.time() - (time.perf_counter() - stopped_at)
    for key, dispatcher in c.lanes.items():
        c.dispatches[key].unsent += dispatcher.end(stopped_at)
        c.dispatches[key].bound(end=stopped_wall)
    return stopped_wall


def users_here(c, key):
    """This process's users of lane ``key`` (ANY: all its users)."""
    counts = getattr(c.environment.runner, "user_classes_count", None) or {}
    return sum(counts.values()) if key == ANY else counts.get(key, 0)


def trace_done(c):
    """Whether this process's part of the trace is out: every lane over (its last slot taken), or its last
    slot due with no user of its model here (those slots are counted unsent at the stop, with a warning)."""
    now = time.perf_counter()
    return bool(c.lanes) and all(d.over or (now >= d.final_due and not users_here(c, key))
                                 for key, d in c.lanes.items())


def trace_counts(c):
    """(this process's lines of the trace, how many of them it sent) over all its lanes."""
    return sum(d.lines for d in c.lanes.values()), sum(d.sent for d in c.lanes.values())



def without_users(c):
    """[(model, req/s or None for a trace)] of the lanes that have a part here and no user of their model."""
    out = []
    for key, dispatcher in c.lanes.items():
        if dispatcher.rate > 0 and not dispatcher.over and not users_here(c, key):
            trace = c.config.trace is not None
            out.append((c.config.lanes.model_of(key) or "of this run", None if trace else dispatcher.stats.target_rps))
    return out
