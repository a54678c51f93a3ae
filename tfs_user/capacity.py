"""Open-loop arrivals and load sweeps inside a Locust run (``--arrival-rate``, ``--sweep``, ``--plot``).

Per environment, a ``Capacity`` object holds this process's part:

- local runner / worker: the ``arrivals.Dispatcher`` users take scheduled slots
  from (``begin``/``Ticket.finish`` around each Predict call), the current load
  point (step index, this process's share of the rate), and the statistics fed
  from the request events: per step (``steps.StepRecorder``), service times,
  the dispatcher's late sends, and a per-interval sample for the time chart.
- master / local runner: the sweep clock (``CapacityShape``, a Locust load
  shape ticking once a second), the step verdicts (a step is closed, its last
  requests and the workers' reports collected, and judged before the next step
  starts), the load messages to workers (``tfs_load``: step index, whether the
  step's figures have started, this worker's share of the rate), and the final
  rows, console table, ``PREFIX_tfs_steps.csv``, JSON and plot.

Registered by ``TfsRun.start`` (``start``); the run's own statistics (``Recorder``)
stay where they are. In open loop the request event's response_time and
start_time are from the scheduled send time, so they get the corrected latency too.
"""

import logging
import time
from dataclasses import dataclass, field

import gevent
from locust.runners import (STATE_INIT, STATE_MISSING, STATE_STOPPED, WORKER_REPORT_INTERVAL, LocalRunner,
                            MasterRunner, WorkerRunner)

from tfs_user import steps as steps_mod, sweep as sweep_mod
from tfs_user.phases import Phase, sample_of
from tfs_user.arrivals import ARRIVALS, DispatchStats, Dispatcher, process_rate, process_rng
from tfs_user.stats import LatencyStats
from tfs_user.sweep_shape import SweepShape

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
STEP_FLUSHED_MESSAGE = "tfs_step_flushed"
SAMPLE_INTERVAL_S = 1.0
"""Local runner: seconds between samples of the time chart (a master samples once per worker report)."""
WARN_CHECK_S = 2.0
"""Local runner / worker: seconds between checks whether the dispatcher keeps the schedule."""
LOAD_WAIT_S = 0.05
"""Worker: poll interval while its share of the rate has not arrived yet."""


@dataclass(frozen=True)
class CapacityConfig:
    """The capacity options, validated. ``arrival_rate`` req/s for the whole test (0 = closed loop)."""

    arrival_rate: float = 0.0
    arrival: str = "poisson"
    seed: int = -1
    """-1 = fresh OS entropy per run."""
    sweep: sweep_mod.Sweep = None
    step_time_s: float = 10.0
    run_all_steps: bool = False
    plot: str = ""
    users: int = 1
    """--users: the users of a rate sweep or open-loop run."""
    slo: sweep_mod.Slo = field(default_factory=sweep_mod.Slo)

    @classmethod
    def from_options(cls, options):
        """From Locust's parsed options; raises SweepError/ArrivalError (ValueError) with one line."""
        sweep = sweep_mod.parse_sweep(options.sweep) if options.sweep else None
        rate = float(options.arrival_rate)
        if sweep is not None and sweep.kind == "rate" and rate:
            raise sweep_mod.SweepError(f"--arrival-rate {rate:g} and --sweep {options.sweep!r} both set the rate; "
                                       "expected one of them")
        if options.arrival not in ARRIVALS:
            raise sweep_mod.SweepError(f"--arrival {options.arrival!r} is not known; expected one of {', '.join(ARRIVALS)}")
        step_time = sweep_mod.parse_duration(options.step_time)
        if sweep is not None and step_time < 1.0:
            raise sweep_mod.SweepError(f"--step-time {options.step_time!r} is too short for a sweep; expected at "
                                       "least 1s (Locust changes the load once a second)")
        return cls(arrival_rate=rate, arrival=options.arrival, seed=int(options.arrival_seed), sweep=sweep,
                   step_time_s=step_time, run_all_steps=bool(options.sweep_all_steps), plot=options.plot,
                   users=int(options.num_users or 1), slo=sweep_mod.Slo.from_options(options))

    @property
    def open_loop(self):
        return self.arrival_rate > 0 or (self.sweep is not None and self.sweep.kind == "rate")

    @property
    def active(self):
        return self.open_loop or self.sweep is not None or bool(self.plot)

    def plan(self):
        if self.sweep is None:
            return []
        return sweep_mod.plan(self.sweep, self.step_time_s, users=self.users, rate=self.arrival_rate)


@dataclass
class Load:
    """The load point this process runs now: step index (0 = no sweep), this process's rate share (req/s)."""

    index: int = 0
    rate: float = 0.0
    measure_at: float = float("inf")
    """perf_counter from which requests count in the step (its warm-up is before)."""
    known: bool = False

    def measured(self, t):
        """Whether a request sent (open loop: scheduled) at perf_counter ``t`` counts in the step."""
        return t >= self.measure_at


class Capacity:
    """This environment's capacity state (see the module docstring)."""

    def __init__(self):
        self.config = None
        self.plan = []
        self._loads = [(float("-inf"), Load())]  # (perf_counter from, Load), latest last
        self.dispatcher = None
        self.reset()
        self.samples = []
        self.greenlets = []
        self.shape = None
        self.final = None
        self.run = None

    LOAD_HISTORY = 16

    @property
    def load(self):
        """The load point this process runs now."""
        return self._loads[-1][1]

    @load.setter
    def load(self, value):
        self._loads = self._loads[-self.LOAD_HISTORY:] + [(time.perf_counter(), value)]

    def load_at(self, t):
        """The load point that was in effect at perf_counter ``t`` (open loop: a slot's scheduled time)."""
        for since, load in reversed(self._loads):
            if since <= t:
                return load
        return self._loads[0][1]

    def reset(self):
        """New test: empty statistics (the dispatcher is made again on the first slot)."""
        self.steps = steps_mod.StepRecorder()
        self.dispatch = DispatchStats()
        self.service = LatencyStats()
        self.interval = LatencyStats()
        self.verdicts = {}  # master/local: step index -> row as judged when the step closed
        self.stopped_after = None
        self.entered = 0  # master/local: highest step index entered
        self.point = (0, 0.0, float("inf"))  # master/local: (step index or 0, the test's target req/s, measure from)
        self.sent_loads = {}  # master: worker id -> load last sent
        self.flushed = set()  # master: workers whose step report arrived
        self.warned = False
        self.dispatcher = None
        self.started = time.perf_counter()
        self.samples = []
        self.final = None


CONTEXT_KEY = "tfs_capacity"
"""Key of a request's capacity details in the request event's context (beside ``tfs_user.phases.CONTEXT_KEY``)."""
MESSAGE_KEY = "tfs_capacity"
"""Key of this process's capacity statistics in Locust's worker report."""


def capacity(environment):
    """The Capacity of ``environment``, made on first use."""
    c = getattr(environment, "tfs_capacity", None)
    if c is None:
        c = environment.tfs_capacity = Capacity()
    return c


# ---- users: one ticket per request -------------------------------------------------------------------


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
    """Before a call: in open loop (and ``scheduled``) wait for the next slot; return the Ticket.

    Warm-up requests pass ``scheduled=False``: they go out at once, outside the schedule.
    """
    c = capacity(environment)
    if c.config is None or not c.config.active:
        return Ticket()  # closed loop, no sweep: nothing to add
    slot = None
    if scheduled and c.config.open_loop:
        while not c.load.known or c.load.rate <= 0:  # worker: its share has not arrived yet
            gevent.sleep(LOAD_WAIT_S)
        if c.dispatcher is None:
            seed = None if c.config.seed < 0 else c.config.seed
            key = getattr(environment.runner, "worker_index", None)
            c.dispatcher = Dispatcher(c.load.rate, c.config.arrival, rng=process_rng(seed, key))
            c.dispatch = c.dispatcher.stats
        elif c.dispatcher.rate != c.load.rate:
            c.dispatcher.set_rate(c.load.rate)
        slot = c.dispatcher.take()
    # open loop: a request belongs to a step, and to its measured part, by its scheduled time (a late
    # send from the warm-up does not count in the step; one scheduled in the step but sent after it does)
    t = slot.scheduled if slot else time.perf_counter()
    load = c.load_at(t)
    return Ticket(slot, load.index, load.measured(t), True)


# ---- statistics from the request events --------------------------------------------------------------


def _on_request(environment, response_time, exception, context=None, start_time=None, **kwargs):
    """Local runner / worker: record one of our measured request events into the capacity statistics."""
    c = capacity(environment)
    sample = sample_of(context)
    if sample is None or sample.phase is not Phase.MEASURED or not c.config.active:
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


def _on_report_to_master(environment, data):
    """Worker: ship this process's capacity statistics since the last report, then start afresh."""
    c = capacity(environment)
    if c.config is None or not c.config.active:
        return
    data[MESSAGE_KEY] = {"steps": c.steps.to_message(), "dispatch": c.dispatch.to_message(),
                         "service": c.service.to_message(), "interval": c.interval.to_message()}
    c.steps, c.service, c.interval = steps_mod.StepRecorder(), LatencyStats(), LatencyStats()
    c.dispatch = DispatchStats(c.dispatch.target_rps)
    if c.dispatcher is not None:
        c.dispatcher.stats = c.dispatch


def _on_worker_report(environment, data):
    """Master: add a worker's capacity statistics."""
    if MESSAGE_KEY not in data:
        return
    c = capacity(environment)
    data = data[MESSAGE_KEY]
    c.steps.merge(steps_mod.StepRecorder.from_message(data["steps"]))
    worker_dispatch = DispatchStats.from_message(data["dispatch"])
    worker_dispatch.target_rps = 0.0  # the target is the test's, not a sum of reports
    c.dispatch.merge(worker_dispatch)
    c.service.merge(LatencyStats.from_message(data["service"]))
    c.interval.merge(LatencyStats.from_message(data["interval"]))


# ---- the sweep clock and the load messages (master / local) ------------------------------------------


class CapacityShape(SweepShape):
    """The load shape of a sweep, ticked by Locust once a second.

    Each step runs ``duration_s`` from the tick that entered it. When it is
    over, the step is closed: requests sent from then on carry no step, the
    requests in flight get ``STEP_GRACE_S`` to finish (a master also collects
    its workers' reports), the step is judged, and the sweep either ends (an
    SLO missed) or enters the next step. So a step's verdict never depends on
    a later step, and no step starts after the first miss.
    """

    def __init__(self, environment, plan):
        super().__init__()
        self.environment = environment
        self.steps = plan
        self.entered = None
        self.entered_at = 0.0

    def reset_time(self):
        """Locust restarts the clock in ``start_shape`` and again (master) in ``start``, after the first
        tick: the current step restarts with it."""
        super().reset_time()
        self.entered_at = 0.0

    def tick(self):
        if self.runner is not None and self.runner.state in (STATE_INIT, STATE_STOPPED):
            self.entered, self.stopped = None, False  # a new test: from step 1 again
        if self.stopped:
            return None
        step = self.entered
        if step is None:
            step = self.steps[0]
        elif self.get_run_time() >= self.entered_at + step.duration_s - TICK_SLACK_S:
            if not close_step(self.environment, step) or step.index >= len(self.steps):
                self.stopped = True
                return None
            step = self.steps[step.index]  # indexes start at 1: the next one
        if step is not self.entered:
            self.entered, self.entered_at = step, self.get_run_time()
            enter_step(self.environment, step)
        return step.users, self.spawn_rate or min(max(float(step.users), 1.0) * 10.0, 100.0)


def _set_point(environment, index, rate, warmup_s):
    """Master/local: the load point every process runs now (step index, the test's target rate);
    the step's figures start after ``warmup_s``, at the same moment in every worker (the master says when)."""
    c = capacity(environment)
    measure_at = time.perf_counter() + warmup_s if index else float("inf")
    c.point = (index, rate, measure_at)
    if isinstance(environment.runner, LocalRunner):
        c.load = Load(index, rate, measure_at, True)
    elif isinstance(environment.runner, MasterRunner):
        _send_loads(environment)
        if index:
            c.greenlets.append(gevent.spawn_later(warmup_s, _send_loads, environment))


def enter_step(environment, step):
    c = capacity(environment)
    c.entered = step.index
    logger.info("sweep step %d/%d: %d user%s%s", step.index, len(c.plan), step.users, "s" if step.users != 1 else "",
                f", target {step.rate:g} req/s" if step.rate else " (closed loop)")
    _set_point(environment, step.index, step.rate or c.config.arrival_rate, step.warmup_s)


def close_step(environment, step):
    """End ``step``: no new request joins it, wait for its last ones (and workers' reports), judge it.

    Returns False when the sweep should end (the step missed a given SLO and not every step was asked for).
    """
    c = capacity(environment)
    _set_point(environment, 0, c.point[1], 0.0)  # between steps: same load, no step
    gevent.sleep(STEP_GRACE_S)
    if isinstance(environment.runner, MasterRunner):
        _collect_reports(environment)
    row = steps_mod.step_row(step, c.steps.steps.get(step.index), c.config.slo)
    c.verdicts[step.index] = row
    if sweep_mod.should_stop(row, c.config.slo, c.config.run_all_steps):
        c.stopped_after = step.index
        logger.info("sweep step %d missed the SLO (%s); ending the sweep (--sweep-all-steps runs every step)",
                    step.index, "; ".join(row["slo_misses"]))
        return False
    return True


def _collect_reports(environment):
    """Master: ask every worker for its statistics now and wait for them (at most FLUSH_TIMEOUT_S)."""
    c = capacity(environment)
    runner = environment.runner
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


def _on_step_flush(environment, msg, **kwargs):
    """Worker: send this process's statistics now (the master is closing a step)."""
    runner = environment.runner
    data = {}
    environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
    runner.send_message("stats", data)
    runner.send_message(STEP_FLUSHED_MESSAGE, None)


def _on_step_flushed(environment, msg, **kwargs):
    capacity(environment).flushed.add(msg.node_id)


def _send_loads(environment):
    """Master: send each worker the step and its share of the rate (in proportion to its users) if changed."""
    c = capacity(environment)
    runner = environment.runner
    clients = {w: sum(client.user_classes_count.values()) for w, client in runner.clients.items()}
    total = sum(clients.values())
    index, rate, measure_at = c.point
    measuring = time.perf_counter() >= measure_at
    for worker, users in clients.items():
        share = process_rate(rate, users, total) if total and rate else 0.0
        load = (index, share, measuring)
        if c.sent_loads.get(worker) != load:
            runner.send_message(LOAD_MESSAGE, {"index": index, "rate": share, "measuring": measuring}, client_id=worker)
            c.sent_loads[worker] = load


def _broadcast_loads(environment):
    """Master: keep the workers' shares in step with their user counts (spawning changes them)."""
    while True:
        _send_loads(environment)
        gevent.sleep(BROADCAST_INTERVAL_S)


def _on_load_message(environment, msg, **kwargs):
    c = capacity(environment)
    data = msg.data
    if not data["measuring"]:
        measure_at = float("inf")
    elif c.load.index == data["index"] and c.load.known and c.load.measure_at < float("inf"):
        measure_at = c.load.measure_at
    else:  # the master says the step's figures start now (the same moment for every worker)
        measure_at = time.perf_counter()
    c.load = Load(data["index"], data["rate"], measure_at, True)


def _sample(environment, interval):
    """Master/local: every ``interval`` s, (t s, FPS, p50 ms, p99 ms) of the requests since the last sample."""
    c = capacity(environment)
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


def _watch_schedule(environment):
    """Local/worker: one warning line when this process's dispatcher cannot keep the schedule."""
    c = capacity(environment)
    while not c.warned:
        gevent.sleep(WARN_CHECK_S)
        warning = c.dispatcher.stats.warning() if c.dispatcher is not None else None
        if warning:
            logger.warning(warning)
            c.warned = True


# ---- lifecycle ---------------------------------------------------------------------------------------


def start(run, runner):
    """At Locust ``init`` (from ``TfsRun.start``): register the capacity listeners on the run's environment.

    Local runner / master: validate the options (raises ValueError, one line) and, with
    ``--sweep``, install the sweep's load shape. Workers read the options at ``test_start``
    (they arrive with the first spawn message).
    """
    environment = run.environment
    events = environment.events
    c = capacity(environment)
    c.run = run
    events.test_start.add_listener(lambda **kw: _on_test_start(environment))
    if isinstance(runner, MasterRunner):
        events.worker_report.add_listener(lambda client_id, data, **kw: _on_worker_report(environment, data))
    else:
        events.request.add_listener(lambda **kw: _on_request(environment, **kw))
    if isinstance(runner, WorkerRunner):
        events.report_to_master.add_listener(lambda client_id, data, **kw: _on_report_to_master(environment, data))
        runner.register_message(LOAD_MESSAGE, _on_load_message)
        runner.register_message(STEP_FLUSH_MESSAGE, _on_step_flush)
        return
    c.config = CapacityConfig.from_options(environment.parsed_options)
    c.plan = c.config.plan()
    if isinstance(runner, MasterRunner):
        runner.register_message(STEP_FLUSHED_MESSAGE, _on_step_flushed)
    if c.config.sweep is not None:
        c.shape = CapacityShape(environment, c.plan)
        c.shape.runner = runner
        environment.shape_class = c.shape


def _on_test_start(environment):
    """At ``test_start``: reset; start the load messages (master), samples (master/local), schedule watch.

    A worker reads the options here (they arrived with the spawn message); a bad one is a fatal
    error of the run (``RunControl.report_error``).
    """
    c = capacity(environment)
    runner = environment.runner
    if c.config is None or isinstance(runner, WorkerRunner):
        try:
            c.config = CapacityConfig.from_options(environment.parsed_options)
        except ValueError as e:
            c.config = CapacityConfig()
            c.run.control.report_error(str(e))
            return
        c.plan = c.config.plan()
    for greenlet in c.greenlets:
        greenlet.kill(block=False)
    c.greenlets = []
    # a sweep's first tick enters step 1 just before Locust fires test_start: keep it
    point = c.point if c.shape is not None and c.shape.entered is not None else (0, c.config.arrival_rate, float("inf"))
    entered = c.entered if c.shape is not None and c.shape.entered is not None else 0
    c.reset()
    if not c.config.active:
        return
    c.entered, c.point = entered, point
    if isinstance(runner, LocalRunner):
        c.load = Load(point[0], point[1], point[2], c.config.sweep is None or entered > 0)
    elif isinstance(runner, WorkerRunner):
        c.load = Load()
    if isinstance(runner, MasterRunner):
        c.greenlets.append(gevent.spawn(_broadcast_loads, environment))
    if not isinstance(runner, WorkerRunner):
        interval = WORKER_REPORT_INTERVAL if isinstance(runner, MasterRunner) else SAMPLE_INTERVAL_S
        c.greenlets.append(gevent.spawn(_sample, environment, interval))
    if c.config.open_loop and not isinstance(runner, MasterRunner):
        c.greenlets.append(gevent.spawn(_watch_schedule, environment))


def finish(environment):
    """Master/local at quitting: the final figures as a dict for the JSON (``steps``, ``open_loop``,
    ``best_step``), and the lines for the console; writes the steps CSV and the plot."""
    c = capacity(environment)
    if c.config is None or not c.config.active:
        return None
    for greenlet in c.greenlets:
        greenlet.kill(block=False)
    config = c.config
    options = environment.parsed_options
    out = {}
    lines = []
    rows = []
    if config.sweep is not None:
        last = c.stopped_after or max(c.entered, max(c.steps.steps, default=0))
        rows = steps_mod.step_rows(c.plan, c.steps, config.slo, last_index=last)
        best_line = sweep_mod.best_line(rows, config.slo)
        best = sweep_mod.best_step(rows)
        out["steps"] = steps_mod.json_steps(rows)
        out["best_step"] = best["step"] if best else None
        out["sweep_stopped_after"] = c.stopped_after
        lines.append(steps_mod.format_steps(rows, best_line))
        if c.stopped_after is not None:
            lines.append(f"Sweep ended after step {c.stopped_after} of {len(c.plan)}: it missed the SLO")
        if options.csv_prefix:
            steps_mod.write_steps_csv(f"{options.csv_prefix}_tfs_steps.csv", rows)
    if config.open_loop:
        summary = open_loop_summary(c)
        out["open_loop"] = summary
        lines.append(format_open_loop(summary))
        warning = c.dispatch.warning()
        if warning:
            lines.append(warning)
    if config.plot:
        from tfs_user import plot  # matplotlib: imported only when a plot is asked for
        plot.write_plot(config.plot, rows, [s for s in c.samples if s[2] is not None],
                        best_line=sweep_mod.best_line(rows, config.slo) if rows else None,
                        slo_p99_ms=config.slo.p99_ms)
        lines.append(f"Plot written to {config.plot}")
    c.final = (out, lines)
    return c.final


def open_loop_summary(c):
    """Dict: target/achieved rates, late sends, scheduling error, service-time percentiles (None = empty set)."""
    dispatch = c.dispatch.summary()
    service = c.service
    has = service.ok > 0
    return {
        "arrival": c.config.arrival,
        "target_rps": c.config.arrival_rate or None,
        "sent": dispatch["sent"],
        "sent_rps": dispatch["achieved_rps"],
        "late": dispatch["late"],
        "late_ratio": dispatch["late_ratio"],
        "late_p50_ms": dispatch["late_p50_ms"],
        "late_p99_ms": dispatch["late_p99_ms"],
        "late_max_ms": dispatch["late_max_ms"],
        "send_error_p99_ms": dispatch["send_error_p99_ms"],
        "service_p50_ms": service.percentile_ms(50) if has else None,
        "service_p90_ms": service.percentile_ms(90) if has else None,
        "service_p99_ms": service.percentile_ms(99) if has else None,
        "schedule_kept": c.dispatch.warning() is None,
    }


def _f(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_open_loop(s):
    target = f"target {s['target_rps']:g} req/s" if s["target_rps"] else "target per step"
    return (f"Open loop ({s['arrival']}, {target}): sent {s['sent']} requests at {_f(s['sent_rps'], 1)} req/s; "
            f"late (all users busy) {s['late']}"
            + (f" (p50 {_f(s['late_p50_ms'])} ms, p99 {_f(s['late_p99_ms'])} ms, max {_f(s['late_max_ms'])} ms)"
               if s["late"] else "")
            + f"; scheduling error p99 {_f(s['send_error_p99_ms'])} ms; latency is from the scheduled send time; "
            f"service time (from the actual send) p50 {_f(s['service_p50_ms'])} ms, p90 {_f(s['service_p90_ms'])} ms, "
            f"p99 {_f(s['service_p99_ms'])} ms")


def sweep_violations(environment):
    """With a sweep and SLOs: the run passes when some step met them (one line if none did), else None
    (no sweep: the run-level SLO checks apply)."""
    c = capacity(environment)
    if c.config is None or c.config.sweep is None or not c.config.slo.given or c.final is None:
        return None
    out, _ = c.final
    if out.get("best_step"):
        return []
    return ["SLO missed: no sweep step met the SLO"]
