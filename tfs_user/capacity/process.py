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

from tfs_user import loop_lag
from tfs_user.capacity import output, schedules, steps as steps_mod, trace_start
from tfs_user.capacity.arrivals import DispatchStats
from tfs_user.capacity.lanes import ANY
from tfs_user.capacity.state import CONTEXT_KEY, MESSAGE_KEY, Load
from tfs_user.phases import Phase, sample_of
from tfs_user.results.report import target_text
from tfs_user.stats import LatencyStats

logger = logging.getLogger(__name__)

STEP_FLUSHED_MESSAGE = "tfs_step_flushed"
TRACE_DONE_MESSAGE = "tfs_trace_done"
"""Worker -> master: this worker sent the last request of its share of the trace."""
WARN_CHECK_S = 2.0
"""Local runner / worker: seconds between checks whether the dispatcher keeps the schedule."""
TRACE_CHECK_S = 0.1
"""Local runner / worker: seconds between checks whether a trace's models without a user here are over."""
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
    batch_size: int = 0
    """The batch size a trace line asks for (its ``batch_size`` column); 0 = the user's own choice."""

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


def begin(environment, scheduled=True, lane=ANY):
    """Before a call: in open loop (and ``scheduled``) wait for the next slot of the user's ``lane`` (its user
    class name: its model's schedule when the run has one per model); return the Ticket, or None when the run
    stopped during that wait (nothing is to be sent).

    Warm-up requests pass ``scheduled=False``: they go out at once, outside the schedule.
    """
    c = of(environment)
    if c is None or c.config is None or not c.config.active:
        return Ticket()  # closed loop, no sweep: nothing to add
    slot, size = None, 0
    if scheduled and c.config.open_loop:
        wanted = lambda: not c.run.control.stopping  # noqa: E731
        moment = trace_start.needs_moment(c, isinstance(c.environment.runner, WorkerRunner))
        if moment:  # a worker's lanes of a trace all start at the master's moment
            trace_start.ready(c)
        # worker: its share (and its part of each model's schedule and a trace's moment, before they open) not yet
        while not c.load.known or c.load.rate <= 0 or (not c.lanes and (
                schedules.parts(c) is None or (moment and c.load.start_at is None))):
            if not wanted():
                return None
            gevent.sleep(LOAD_WAIT_S)
        if not c.lanes:
            schedules.open_lanes(c, schedules.parts(c), trace_start.start_of(c) if moment else None)
            check_trace_over(c)  # a share without lines (a 1-line trace on 2 workers) is over as it opens
        slot = schedules.take(c, c.config.lanes.key_of(lane), wanted)
        if slot is None:  # the run stopped while this user waited: the slot falls after the run
            return None
        if moment:
            trace_start.first_send(c, slot, c.environment.runner.worker_index)
        check_trace_over(c)  # the trace's last request (of this process's share) goes out now
        if slot.line is not None and c.config.lanes.batch_sizes:
            size = c.config.lanes.batch_sizes[slot.line]
    # open loop: a request belongs to a step, and to its measured part, by its scheduled time (a late
    # send from the warm-up does not count in the step; one scheduled in the step but sent after it does)
    t = slot.scheduled if slot else time.perf_counter()
    load = c.load_at(t)
    return Ticket(slot, load.index, load.measured(t), True, size)


def check_trace_over(c):
    """Local runner / worker: end the run (or tell the master) once this process's part of the trace is out."""
    if c.config.trace is not None and not c.replayed and not c.run.control.stopping and schedules.trace_done(c):
        c.replayed = True
        trace_replayed(c)


def trace_replayed(c):
    """Local runner / worker: this process sent its last trace request: the run ends (local runner), or the
    master hears of it and ends the run when every worker's share is out. The stop waits for the requests in
    flight (``RunControl.drain``), as at any open-loop stop."""
    runner = c.environment.runner
    lines, sent = schedules.trace_counts(c)
    if isinstance(runner, WorkerRunner):
        runner.send_message(TRACE_DONE_MESSAGE, {"lines": lines, "sent": sent})
    else:
        c.run.control.end_run(output.trace_end_line(lines, sent))


def on_trace_done(c, msg, **kwargs):
    """Master: a worker's part of the trace is out; end the run when that of every connected worker with a part
    of it is (a worker without a user has none: ``lanes.split``)."""
    runner = c.environment.runner
    data = msg.data or {}
    c.replayed_by[msg.node_id] = (data.get("lines", 0), data.get("sent", 0))
    parts = c.trace_parts  # the workers that got lines of the trace (one without a user, or that joined later: none)
    workers = [w for w, client in runner.clients.items() if client.state != STATE_MISSING and
               (parts is None or any(share is not None for _, share in parts.get(w, {}).values()))]
    if set(c.replayed_by).issuperset(workers):
        lines, sent = (sum(counts) for counts in zip(*c.replayed_by.values()))
        s = "s" if len(workers) != 1 else ""
        c.run.control.end_run(output.trace_end_line(lines, sent, f" (on the {len(workers)} worker{s} with users)"))


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
    if c.lanes:
        c.run.recorder.bound(end=schedules.end(c, stopped_at))  # the measured window ends here


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
    data[MESSAGE_KEY] = {"steps": c.steps.to_message(),
                         "dispatch": {key: stats.to_message() for key, stats in c.dispatches.items()},
                         "service": c.service.to_message(), "interval": c.interval.to_message()}
    c.steps, c.service, c.interval = steps_mod.StepRecorder(), LatencyStats(), LatencyStats()
    for key, stats in c.dispatches.items():
        c.dispatches[key] = c.lanes[key].stats = DispatchStats(stats.target_rps)


def on_worker_report(c, data):
    """Master: add a worker's capacity statistics."""
    if MESSAGE_KEY not in data:
        return
    data = data[MESSAGE_KEY]
    c.steps.merge(steps_mod.StepRecorder.from_message(data["steps"]))
    for key, message in data["dispatch"].items():
        worker_dispatch = DispatchStats.from_message(message)
        worker_dispatch.target_rps = 0.0  # the target is the test's, not a sum of reports
        c.dispatches.setdefault(key, DispatchStats()).merge(worker_dispatch)
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
    lanes = data.get("lanes")
    lanes = None if lanes is None else {key: (rate, tuple(share) if share else None) for key, (rate, share) in lanes.items()}
    c.load = Load(data["index"], data["rate"], measure_at, True, tuple(data.get("share", (0, 1))), lanes,
                  data.get("start_at"))


def watch_schedule(c):
    """Local/worker: one warning line when this process's schedules cannot be kept, and one per model whose
    schedule has a part here but no user here to send it."""
    told = set()
    while True:
        gevent.sleep(WARN_CHECK_S)
        if not c.warned and c.lanes:
            warning = c.dispatch.warning(c.config.remedy, loop_lag.figures(c.run.recorder.loop_lag)["loop_lag_p99_ms"])
            if warning:
                logger.warning(warning)
                c.warned = True
        for model, rate in schedules.without_users(c):
            if model not in told:
                told.add(model)
                part = "its lines of the trace fall" if rate is None else f"its {target_text(rate)} req/s fall"
                logger.warning("open loop: model %s has no user in this process: %s due and are counted as never "
                               "sent; give it users (-u at least one per model on each process, or --config-users)",
                               model, part)


def watch_trace(c):
    """Local/worker, replaying a trace: the run ends when this process's part is out, also when its users are gone
    (or a model without a user here has the last lines): nobody takes those, they fall due unsent."""
    while not c.replayed:
        gevent.sleep(TRACE_CHECK_S)
        # a user may have sent the last line meanwhile; after a stop (-t, Ctrl-C) a model's users are gone and
        # its lines not yet due are not the trace's end
        check_trace_over(c)
