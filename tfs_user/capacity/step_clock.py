"""The master's (or local runner's) sweep control: the step clock, step verdicts and the workers' load.

``CapacityShape`` is the sweep's Locust load shape; entering a step sets the load point every
process runs (``set_point``: step index, the test's target rate, when the step's figures start),
sent to workers as ``tfs_load`` messages with each worker's share of the rate (``send_loads``,
kept current by ``broadcast_loads`` as users spawn). Closing a step waits for its requests in
flight, collects the workers' step reports (``tfs_step_flush`` / ``tfs_step_flushed``) and judges
it before the next step starts. ``sample`` takes the time chart's samples.
"""

import logging
import time

import gevent
from locust.runners import STATE_INIT, STATE_MISSING, STATE_STOPPED, LocalRunner, MasterRunner

from tfs_user.capacity import lanes as lanes_mod, steps as steps_mod, plans as sweep_mod
from tfs_user.capacity.arrivals import process_rate
from tfs_user.capacity.state import Load
from tfs_user.results.report import target_text
from tfs_user.stats import LatencyStats
from tfs_user.capacity.shape import SweepShape

logger = logging.getLogger(__name__)

LOAD_MESSAGE = "tfs_load"
BROADCAST_INTERVAL_S = 0.2
"""Master: how often it checks whether a worker's share of the rate changed."""
TICK_SLACK_S = 0.1
"""Locust ticks a shape about once a second: a step ends at the first tick less than this before its end."""
STEP_GRACE_S = 0.5
"""After a step ends: time its requests in flight get to complete before it is judged, seconds."""
FLUSH_TIMEOUT_S = 5.0
"""Master: how long it waits for the workers' step reports."""
STEP_FLUSH_MESSAGE = "tfs_step_flush"
FIRST_STEP_WAIT_S = 15.0
"""The first step starts once its users run (a worker prepares its requests at its first spawn, which
took 3.5 s of a 2 s step under load), or after this long whatever the count."""


class CapacityShape(SweepShape):
    """The load shape of a sweep, ticked by Locust once a second.

    Each step runs ``duration_s`` from the tick that entered it. When it is
    over, the step is closed: requests sent from then on carry no step, the
    requests in flight get ``STEP_GRACE_S`` to finish (a master also collects
    its workers' reports), the step is judged, and the sweep either ends (an
    SLO missed) or enters the next step at the next tick. So a step's verdict
    never depends on a later step, no step starts after the first miss, and
    every step starts at a tick's start and lasts ``duration_s`` (entered in
    the closing tick, after the grace, it ran until a tick ``STEP_GRACE_S`` too
    late: --step-time + 0.5 s).
    """

    def __init__(self, capacity, plan):
        super().__init__()
        self.capacity = capacity
        self.steps = plan
        self.entered = None
        self.entered_at = 0.0
        self.closed = False  # the entered step was closed at the last tick: the next one starts at this one
        self.waiting_since = None  # when the first step began to wait for its users

    def reset_time(self):
        """Locust restarts the clock in ``start_shape`` and again (master) in ``start``, after the first
        tick: the current step restarts with it."""
        super().reset_time()
        self.entered_at = 0.0

    def tick(self):
        if self.runner is not None and self.runner.state in (STATE_INIT, STATE_STOPPED):
            self.entered, self.stopped, self.closed = None, False, False  # a new test: from step 1 again
            self.waiting_since = None
        if self.stopped:
            return None
        step = self.entered
        if step is None:
            step = self.steps[0]
            if not self._users_running(step.users):
                return step.users, self.spawn_rate or min(max(float(step.users), 1.0) * 10.0, 100.0)
        elif self.closed:
            self.closed = False
            step = self.steps[step.index]  # indexes start at 1: the next one
        elif self.get_run_time() >= self.entered_at + step.duration_s - TICK_SLACK_S:
            if not close_step(self.capacity, step) or step.index >= len(self.steps):
                self.stopped = True
                return None
            self.closed = True  # between steps until the next tick
            return step.users, self.spawn_rate or min(max(float(step.users), 1.0) * 10.0, 100.0)
        if step is not self.entered:
            self.entered, self.entered_at = step, self.get_run_time()
            enter_step(self.capacity, step)
        return step.users, self.spawn_rate or min(max(float(step.users), 1.0) * 10.0, 100.0)


    def _users_running(self, users):
        """Whether ``users`` run (a master counts its workers' reports: they spawn after their pre-flight)."""
        runner = self.runner
        if runner is None:
            return True
        if self.waiting_since is None:
            self.waiting_since = time.perf_counter()
        return runner.user_count >= users or time.perf_counter() - self.waiting_since >= FIRST_STEP_WAIT_S


def set_point(c, index, rate, warmup_s):
    """Master/local: the load point every process runs now (step index, the test's target rate);
    the step's figures start after ``warmup_s``, at the same moment in every worker (the master says when)."""
    measure_at = time.perf_counter() + warmup_s if index else float("inf")
    c.point = (index, rate, measure_at)
    if index:  # the step's rates are over its measured part, edge to edge (tfs_user.capacity.steps.step_row)
        c.step_edges[index] = (time.time() + warmup_s, None)
    if isinstance(c.environment.runner, LocalRunner):
        c.load = Load(index, rate, measure_at, True)
    elif isinstance(c.environment.runner, MasterRunner):
        send_loads(c)
        if index:
            c.greenlets.append(gevent.spawn_later(warmup_s, measure_now, c, index))


def measure_now(c, index):
    """Master, when step ``index``'s warm-up ends: tell the workers the step's figures start now.

    gevent's timer can fire a little before ``measure_at`` by ``perf_counter`` (the loop's clock is
    read once per iteration); then ``send_loads`` saw "not yet", sent nothing, and workers started
    measuring at the next broadcast, up to BROADCAST_INTERVAL_S late (seen: 0.1 s of a step missing).
    """
    point, rate, measure_at = c.point
    if point == index:
        c.point = (point, rate, min(measure_at, time.perf_counter()))
        c.step_edges[index] = (min(c.step_edges.get(index, (time.time(), None))[0], time.time()), None)
    send_loads(c)


def enter_step(c, step):
    c.entered = step.index
    logger.info("sweep step %d/%d: %d user%s%s", step.index, len(c.plan), step.users, "s" if step.users != 1 else "",
                f", target {target_text(step.rate)} req/s" if step.rate else " (closed loop)")
    set_point(c, step.index, step.rate or c.config.arrival_rate, step.warmup_s)
    c.run.server.step_start(step.index, step.warmup_s)  # --server-metrics: the step's window starts after its warm-up


def close_step(c, step):
    """End ``step``: no new request joins it, wait for its last ones (and workers' reports), judge it.

    Returns False when the sweep should end (the step missed a given SLO and not every step was asked for).
    """
    set_point(c, 0, c.point[1], 0.0)  # between steps: same load, no step; the open loop's schedule starts afresh
    c.step_edges[step.index] = (c.step_edges.get(step.index, (None, None))[0], time.time())
    c.run.server.step_end(step.index)  # before the grace: requests sent from now on are in no step
    gevent.sleep(STEP_GRACE_S)
    if isinstance(c.environment.runner, MasterRunner):
        collect_reports(c)
    row = steps_mod.step_row(step, c.steps.steps.get(step.index), c.config.slo, c.step_edges.get(step.index))
    c.verdicts[step.index] = row
    if sweep_mod.should_stop(row, c.config.slo, c.config.run_all_steps):
        c.stopped_after = step.index
        logger.info("sweep step %d missed the SLO (%s); ending the sweep (--sweep-all-steps runs every step)",
                    step.index, "; ".join(row["slo_misses"]))
        return False
    return True


def collect_reports(c):
    """Master: ask every worker for its statistics now and wait for them (at most FLUSH_TIMEOUT_S)."""
    runner = c.environment.runner
    workers = [w for w, client in runner.clients.items() if client.state != STATE_MISSING]
    c.flushed = set()
    for worker in workers:
        runner.send_message(STEP_FLUSH_MESSAGE, None, client_id=worker)
    with gevent.Timeout(FLUSH_TIMEOUT_S, False):
        while not c.flushed.issuperset(w for w in workers if w in runner.clients):
            gevent.sleep(0.01)
    missing = [w for w in workers if w not in c.flushed]
    if missing:
        logger.warning("no step report from worker(s) %s within %g s; the step's figures miss their last requests",
                       ", ".join(missing), FLUSH_TIMEOUT_S)


def on_step_flushed(c, msg, **kwargs):
    c.flushed.add(msg.node_id)


def send_loads(c):
    """Master: send each worker the step, its share of the rate (in proportion to its users) and its part of each
    lane (a model's rate in proportion to its users of that model, ``lanes.split``) if changed. A trace is split
    once every worker has spawned its users (workers wait for it), among the workers that have users, and kept
    so (its lines go out once whatever the users do later)."""
    runner = c.environment.runner
    ordered = sorted(runner.clients, key=runner.get_worker_index)
    classes = {w: dict(runner.clients[w].user_classes_count) for w in ordered}
    clients = {w: sum(counts.values()) for w, counts in classes.items()}
    total = sum(clients.values())
    index, rate, measure_at = c.point
    now = time.perf_counter()
    measuring = now >= measure_at
    measure_from = time.time() + (measure_at - now) if measure_at < float("inf") else None  # wall clock
    ranks = {w: rank for rank, w in enumerate(ordered)}
    trace = c.config.trace is not None
    settled = not trace or getattr(runner, "spawning_completed", True)  # a trace: among the workers with users
    parts = lanes_mod.split(c.config.lanes, 0.0 if trace else rate, classes) if settled else {}
    if trace and settled and c.trace_start is not None:
        # the lines are split once, at the moment: a worker that joins later (Locust rebalances users to it) gets
        # none, or it would send lines the others still send (seen: 90 sends of a 60-line trace)
        c.trace_parts = c.trace_parts if c.trace_parts is not None else parts
        parts = {w: c.trace_parts.get(w) or {key: (0.0, None) for key in c.config.lanes.keys} for w in clients}
    for worker, users in clients.items():
        share = process_rate(rate, users, total) if total and rate else 0.0
        lines = (ranks[worker], len(clients))  # a trace's lines: every len-th from the rank
        lanes = ({key: (part, list(at) if at else None) for key, (part, at) in parts[worker].items()}
                 if worker in parts else None)  # None: not split yet (a trace waits for every worker's users)
        load = (index, share, measuring, lines, repr(lanes), c.trace_start)
        if c.sent_loads.get(worker) != load:
            runner.send_message(LOAD_MESSAGE, {"index": index, "rate": share, "measuring": measuring,
                                               "measure_from": measure_from, "share": list(lines), "lanes": lanes,
                                               "start_at": c.trace_start,  # a trace's time 0 (trace_start)
                                               "sent": time.time()}, client_id=worker)  # sent: workers time the lag
            c.sent_loads[worker] = load


def broadcast_loads(c):
    """Master: keep the workers' shares in step with their user counts (spawning changes them); note lost workers."""
    while True:
        note_lost_workers(c)
        send_loads(c)
        gevent.sleep(BROADCAST_INTERVAL_S)


def note_lost_workers(c):
    """Master: remember each worker that went missing (no heartbeat) with the step it was lost in.

    The step is the one entered when Locust marked the worker missing (after about 3 s without a
    heartbeat, Locust's ``HEARTBEAT_LIVENESS`` x ``HEARTBEAT_INTERVAL``); 0 before the first step.
    """
    runner = c.environment.runner
    for worker, client in list(runner.clients.items()):
        if client.state == STATE_MISSING and worker not in c.lost:
            c.lost[worker] = (runner.get_worker_index(worker), c.entered)
            if c.config.sweep is not None:
                logger.warning("worker %s lost in sweep step %d", worker, c.entered)


def sample(c, interval):
    """Master/local: every ``interval`` s, (t s, FPS, p50 ms, p99 ms) of the requests since the last sample."""
    last = time.perf_counter()
    while True:
        gevent.sleep(interval)
        now = time.perf_counter()
        stats, c.interval = c.interval, LatencyStats()
        fps = stats.frames / (now - last)
        p50 = stats.percentile_ms(50) if stats.ok else None
        p99 = stats.percentile_ms(99) if stats.ok else None
        c.samples.append((now - c.started, fps, p50, p99))
        last = now
