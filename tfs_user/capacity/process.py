"""The per-process part of a capacity run (local runner / worker): users' slots and the statistics.

- ``begin``: before each Predict call a user takes a ``Ticket``: in open loop it waits for the
  next scheduled slot of this process's ``arrivals.Dispatcher``; the ticket carries the step
  label at (scheduled) send time, and ``Ticket.finish`` gives the request event's response
  time (open loop: from the scheduled send time) and context.
- statistics fed from the request events (per step, service times, the per-interval sample
  of the time chart); a worker ships them with each report and on the master's step flush;
- worker: the master's load messages (step index, its share of the rate, measuring or not);
- ``watch_schedule``: one warning line when the dispatcher cannot keep the schedule.
"""

import logging
import time
from dataclasses import dataclass

import gevent
from locust.runners import STATE_MISSING, WorkerRunner

from tfs_user.capacity import steps as steps_mod
from tfs_user.capacity.arrivals import DispatchStats, process_rng
from tfs_user.capacity.dispatcher import Dispatcher
from tfs_user.capacity.state import CONTEXT_KEY, MESSAGE_KEY, Load
from tfs_user.phases import Phase, sample_of
from tfs_user.stats import LatencyStats
from tfs_user.transport.engine import precise_sleep

logger = logging.getLogger(__name__)

STEP_FLUSHED_MESSAGE = "tfs_step_flushed"
TRACE_DONE_MESSAGE = "tfs_trace_done"
"""Worker -> master: this worker sent the last request of its share of the trace."""
WARN_CHECK_S = 2.0
"""Local runner / worker: seconds between checks whether the dispatcher keeps the schedule."""
LOAD_WAIT_S = 0.05
"""Worker: poll interval while its share of the rate has not arrived yet."""


def of(environment):
    """The Capacity of ``environment``'s run object, or None (no run, or before ``TfsRun.start``)."""
    return getattr(getattr(environment, "tfs_run", None), "capacity", None)


@dataclass
class Ticket:
    """What a user needs around one Predict call: the slot (open loop) and the step label at send time."""

    slot: object = None
    step: int = 0
    step_measured: bool = False

    active: bool = False

    def finish(self, start, end, start_wall):
        """``(response_time_ms, start_time, context additions)`` of a call sent at ``start`` and answered at
        ``end`` (perf_counter s); ``start_wall`` is the send's wall-clock time (``time.time()``).

        Open loop: response time and start_time are from the scheduled send time (corrected for
        coordinated omission); the context gets ``{CONTEXT_KEY: {step, step_measured, service_ms,
        late}}``. Closed loop: end - start and ``start_wall`` (plus the step in a sweep).
        """
        if not self.active:
            return (end - start) * 1000.0, start_wall, {}
        info = {"step": self.step, "step_measured": self.step_measured}
        if self.slot is None:
            return (end - start) * 1000.0, start_wall, {CONTEXT_KEY: info}
        info.update(service_ms=(end - start) * 1000.0, late=self.slot.late)
        scheduled_wall = start_wall - (start - self.slot.scheduled)
        return self.slot.latency_ms(end), scheduled_wall, {CONTEXT_KEY: info}


def begin(environment, scheduled=True):
    """Before a call: in open loop (and ``scheduled``) wait for the next slot; return the Ticket, or None
    when the run stopped during that wait (nothing is to be sent).

    Warm-up requests pass ``scheduled=False``: they go out at once, outside the schedule.
    """
    c = of(environment)
    if c is None or c.config is None or not c.config.active:
        return Ticket()  # closed loop, no sweep: nothing to add
    slot = None
    if scheduled and c.config.open_loop:
        while not c.load.known or c.load.rate <= 0:  # worker: its share has not arrived yet
            gevent.sleep(LOAD_WAIT_S)
        if c.dispatcher is None:
            seed = None if c.config.seed < 0 else c.config.seed
            key = getattr(c.environment.runner, "worker_index", None)
            intervals = c.config.trace_intervals(c.load.share) if c.config.trace is not None else None
            c.dispatcher = Dispatcher(c.load.rate, c.config.arrival, rng=process_rng(seed, key),
                                      sleep=precise_sleep, intervals=intervals)
            c.dispatch = c.dispatcher.stats
            begun = time.time() - (time.perf_counter() - c.dispatcher.started)  # the measured window begins here
            c.dispatch.bound(start=begun)
            c.run.recorder.bound(start=begun)
        slot = c.dispatcher.take(still_wanted=lambda: not c.run.control.stopping)
        if slot is None:  # the run stopped while this user waited: the slot falls after the run
            return None
        if c.dispatcher.over and not c.replayed:  # the trace's last request (of this process's share) goes out now
            c.replayed = True
            trace_replayed(c)
    # open loop: a request belongs to a step, and to its measured part, by its scheduled time (a late
    # send from the warm-up does not count in the step; one scheduled in the step but sent after it does)
    t = slot.scheduled if slot else time.perf_counter()
    load = c.load_at(t)
    return Ticket(slot, load.index, load.measured(t), True)


def trace_replayed(c):
    """Local runner / worker: this process sent its last trace request: the run ends (local runner), or the
    master hears of it and ends the run when every worker's share is out. The stop waits for the requests in
    flight (``RunControl.drain``), as at any open-loop stop."""
    runner = c.environment.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message(TRACE_DONE_MESSAGE, None)
    else:
        c.run.control.end_run(f"the trace's {c.dispatcher.stats.sent} requests were sent; ending the run")


def on_trace_done(c, msg, **kwargs):
    """Master: a worker sent its share of the trace; end the run when every connected worker has."""
    runner = c.environment.runner
    c.replayed_by.add(msg.node_id)
    workers = [w for w, client in runner.clients.items() if client.state != STATE_MISSING]
    if c.replayed_by.issuperset(workers):
        c.run.control.end_run(f"all {len(workers)} workers sent their share of the trace; ending the run")


# ---- statistics from the request events --------------------------------------------------------------


def on_request(c, response_time, exception, context=None, start_time=None, **kwargs):
    """Local runner / worker: record one of our measured request events into the capacity statistics."""
    sample = sample_of(context)
    if sample is None or sample.phase is not Phase.MEASURED or c.config is None or not c.config.active:
        return
    info = context.get(CONTEXT_KEY) or {}
    ok = exception is None
    frames, start, end = sample.frames, start_time, start_time + response_time / 1000.0
    service = info.get("service_ms")
    c.interval.record(response_time, ok, frames, start, end)
    if service is not None:
        c.service.record(service, ok, frames, start, end)
    index = info.get("step", 0)
    if index:
        if info.get("step_measured"):
            c.steps.record(index, response_time, ok, frames, start, end, service)
            if info.get("late"):
                c.steps.record_late(index)
        else:
            c.steps.record_warmup(index)
    elif c.config.sweep is not None:  # sent while a step was judged and before the next began: no step's
        c.steps.record_between()


def end_schedule(c, stopped_at):
    """Local runner / worker, when the run begins to stop: the slots that fell due by ``stopped_at``
    (perf_counter s) and that no user took are counted as unsent (``DispatchStats.unsent``)."""
    if c.dispatcher is not None:
        c.dispatch.unsent += c.dispatcher.end(stopped_at)
        stopped_wall = time.time() - (time.perf_counter() - stopped_at)  # the measured window ends here
        c.dispatch.bound(end=stopped_wall)
        c.run.recorder.bound(end=stopped_wall)


def record_lag(c, lag_ms):
    """Local runner / worker: an event-loop lag sample (ms, ``tfs_user.loop_lag``) goes to the sweep step whose
    measured part is running now (none between steps, in a step's warm-up, or without a sweep)."""
    if c is None or c.config is None or c.config.sweep is None:
        return
    now = time.perf_counter()
    load = c.load_at(now)
    if load.index and load.measured(now):
        c.steps.record_lag(load.index, lag_ms)


def on_report_to_master(c, data):
    """Worker: ship this process's capacity statistics since the last report, then start afresh."""
    if c.config is None or not c.config.active:
        return
    data[MESSAGE_KEY] = {"steps": c.steps.to_message(), "dispatch": c.dispatch.to_message(),
                         "service": c.service.to_message(), "interval": c.interval.to_message()}
    c.steps, c.service, c.interval = steps_mod.StepRecorder(), LatencyStats(), LatencyStats()
    c.dispatch = DispatchStats(c.dispatch.target_rps)
    if c.dispatcher is not None:
        c.dispatcher.stats = c.dispatch


def on_worker_report(c, data):
    """Master: add a worker's capacity statistics."""
    if MESSAGE_KEY not in data:
        return
    data = data[MESSAGE_KEY]
    c.steps.merge(steps_mod.StepRecorder.from_message(data["steps"]))
    worker_dispatch = DispatchStats.from_message(data["dispatch"])
    worker_dispatch.target_rps = 0.0  # the target is the test's, not a sum of reports
    c.dispatch.merge(worker_dispatch)
    c.service.merge(LatencyStats.from_message(data["service"]))
    c.interval.merge(LatencyStats.from_message(data["interval"]))


def on_step_flush(c, msg, **kwargs):
    """Worker: send this process's statistics now (the master is closing a step)."""
    runner = c.environment.runner
    data = {}
    c.environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
    runner.send_message("stats", data)
    runner.send_message(STEP_FLUSHED_MESSAGE, None)


def on_load_message(c, msg, **kwargs):
    data = msg.data
    lag_s = max(0.0, time.time() - data.get("sent", time.time()))  # how late this worker hears of a step's edge
    if data["index"] and data["measuring"]:
        c.steps.record_edge_lag(data["index"], lag_s)  # its start
    elif not data["index"] and c.load.index:
        c.steps.record_edge_lag(c.load.index, lag_s)  # its end
    measure_from = data.get("measure_from")
    if c.load.index == data["index"] and c.load.known and c.load.measure_at < float("inf"):
        measure_at = c.load.measure_at
    elif measure_from is not None:  # the master's moment (the same for every worker), however late this message
        measure_at = time.perf_counter() + (measure_from - time.time())  # (seen: 1.5 s late while users spawned)
    elif not data["measuring"]:
        measure_at = float("inf")
    else:  # the master says the step's figures start now
        measure_at = time.perf_counter()
    c.load = Load(data["index"], data["rate"], measure_at, True, tuple(data.get("share", (0, 1))))


def watch_schedule(c):
    """Local/worker: one warning line when this process's dispatcher cannot keep the schedule."""
    while not c.warned:
        gevent.sleep(WARN_CHECK_S)
        warning = c.dispatcher.stats.warning(c.config.remedy) if c.dispatcher is not None else None
        if warning:
            logger.warning(warning)
            c.warned = True
