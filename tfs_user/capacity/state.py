"""The capacity state of one run: validated options (``CapacityConfig``), load points (``Load``), ``Capacity``.

``Capacity`` is owned by the run object (``TfsRun.capacity``, made in ``TfsRun.start`` through
``tfs_user.capacity.wiring.start``); the modules that act on it take it as their first argument:
``capacity_process`` (users' slots, statistics feeding, worker side), ``capacity_sweep``
(master/local sweep clock, verdicts, load messages), ``capacity_output`` (rows, CSV, JSON, plot).
"""

import functools
import os
import time
from dataclasses import dataclass, field

from tfs_user.capacity import steps as steps_mod, plans as sweep_mod, traces
from tfs_user.capacity.arrivals import DispatchStats, check_arrival
from tfs_user.capacity.lanes import LanePlan
from tfs_user.stats import LatencyStats

CONTEXT_KEY = "tfs_capacity"
"""Key of a request's capacity details in the request event's context (beside ``tfs_user.phases.CONTEXT_KEY``)."""
MESSAGE_KEY = "tfs_capacity"
"""Key of this process's capacity statistics in Locust's worker report."""


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
    trace: object = None
    """--arrival-trace read and checked (``traces.Trace``), or None."""
    trace_speedup: float = 1.0
    trace_loop: bool = False
    lanes: LanePlan = field(default_factory=LanePlan)
    """The open loop's schedules: one, or one per model of ``--models`` (``tfs_user.capacity.lanes``)."""

    @classmethod
    def from_options(cls, options):
        """From Locust's parsed options; raises SweepError/ArrivalError (ValueError) with one line."""
        sweep = sweep_mod.parse_sweep(options.sweep) if options.sweep else None
        rate = float(options.arrival_rate)
        if sweep is not None and sweep.kind == "rate" and rate:
            raise sweep_mod.SweepError(f"--arrival-rate {rate:g} and --sweep {options.sweep!r} both set the rate; "
                                       "expected one of them")
        check_arrival(options.arrival)  # ArrivalError
        iterations = int(getattr(options, "tfs_iterations", -1))
        if sweep is not None and iterations >= 0:  # users would stop in step 1 and the rest of the steps run empty
            raise sweep_mod.SweepError(f"--iterations {iterations} and --sweep {options.sweep!r} do not go together: "
                                       "a sweep runs each step for --step-time; drop --iterations (or set it to -1)")
        step_time = sweep_mod.parse_duration(options.step_time)
        if sweep is not None and step_time < 1.0:
            raise sweep_mod.SweepError(f"--step-time {options.step_time!r} is too short for a sweep; expected at "
                                       "least 1s (Locust changes the load once a second)")
        trace_path = getattr(options, "arrival_trace", "") or ""
        trace = None
        if trace_path:
            for given, what in ((rate, f"--arrival-rate {rate:g}"), (sweep, f"--sweep {options.sweep!r}")):
                if given:
                    raise traces.TraceError(f"--arrival-trace {trace_path!r} and {what} do not go together: the trace "
                                            "sets every send time and the run's length; expected one of them")
            trace = traces.read_trace(trace_path)  # TraceError: one line naming the file and line
        lanes = lane_plan(options, trace, trace_path)  # LaneError: a trace line naming a model not in the run
        return cls(lanes=lanes, arrival_rate=rate, arrival=options.arrival, seed=int(options.arrival_seed), sweep=sweep,
                   step_time_s=step_time, run_all_steps=bool(options.sweep_all_steps), plot=options.plot,
                   users=int(options.num_users or 1), slo=sweep_mod.Slo.from_options(options), trace=trace,
                   trace_speedup=float(getattr(options, "trace_speedup", 1.0)),
                   trace_loop=bool(getattr(options, "trace_loop", False)))

    def trace_intervals(self, share=(0, 1), lines=None):
        """The gaps of this process's share of the trace (of its ``lines``: one model's); only with a trace."""
        return traces.TraceIntervals(self.trace, self.trace_speedup, self.trace_loop, share, lines)

    @property
    def remedy(self):
        """The option that lowers the open loop's rate (named when the schedule is not kept)."""
        return "--trace-speedup" if self.trace is not None else "--arrival-rate"

    @property
    def target_rate(self):
        """The test's target rate, req/s: --arrival-rate, or the trace's mean rate at its speed-up (0 = closed loop)."""
        return self.trace_intervals().rate if self.trace is not None else self.arrival_rate

    @property
    def open_loop(self):
        return self.arrival_rate > 0 or self.trace is not None or (self.sweep is not None and self.sweep.kind == "rate")

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
    share: tuple = (0, 1)
    """(this process's rank, processes): which lines of a trace it replays (every n-th from its rank)."""
    lanes: dict = None
    """Worker: {lane key: (req/s, (rank, count) or None)}, its part of each lane (``lanes.split``) as the master
    sent it; None = not heard yet (a local runner's is the whole plan, ``schedules.parts``)."""
    start_at: float = None
    """A trace's time 0 for every worker, wall-clock s (the master's moment, ``trace_start``); None = not yet."""

    def measured(self, t):
        """Whether a request sent (open loop: scheduled) at perf_counter ``t`` counts in the step."""
        return t >= self.measure_at


class Capacity:
    """One run's capacity state (see the module docstring): the run object ``run`` and its Locust
    ``environment``, the options, the step plan, this process's load point and statistics."""

    def __init__(self, run):
        self.run = run
        self.environment = run.environment
        self.config = None
        self.plan = []
        self._loads = [(float("-inf"), Load())]  # (perf_counter from, Load), latest last
        self.lanes = {}
        self.reset()
        self.samples = []
        self.greenlets = []
        self.shape = None
        self.final = None

    LOAD_HISTORY = 16

    @property
    def load(self):
        """The load point this process runs now."""
        return self._loads[-1][1]

    @load.setter
    def load(self, value):
        """A new load point; a new rate or step starts the dispatcher's schedule afresh now (the slots of the old
        one that fell due and were not sent are its unsent: a step's backlog never goes out in the next)."""
        before = self.load
        self._loads = self._loads[-self.LOAD_HISTORY:] + [(time.perf_counter(), value)]
        if self.lanes:
            from tfs_user.capacity import schedules  # gevent: only once schedules run

            schedules.update(self, before, value)

    @property
    def dispatch(self):
        """Every lane's DispatchStats merged (the run's open-loop figures)."""
        total = DispatchStats()
        for stats in self.dispatches.values():
            total.merge(stats)
        return total

    def load_at(self, t):
        """The load point that was in effect at perf_counter ``t`` (open loop: a slot's scheduled time)."""
        for since, load in reversed(self._loads):
            if since <= t:
                return load
        return self._loads[0][1]

    def reset(self):
        """New test: empty statistics (the dispatcher is made again on the first slot)."""
        self.steps = steps_mod.StepRecorder()
        self.dispatches = {}  # lane key -> DispatchStats (this process's, or on a master every worker's merged)
        self.service = LatencyStats()
        self.interval = LatencyStats()
        self.verdicts = {}  # master/local: step index -> row as judged when the step closed
        self.step_edges = {}  # master/local: step index -> (measured part's start, its end or None), wall-clock s
        self.stopped_after = None
        self.entered = 0  # master/local: highest step index entered
        self.point = (0, 0.0, float("inf"))  # master/local: (step index or 0, the test's target req/s, measure from)
        self.sent_loads = {}  # master: worker id -> load last sent
        self.lost = {}  # master: worker id -> (worker index, step index it was lost in, 0 = outside any step)
        self.flushed = set()  # master: workers whose step report arrived
        self.warned = False
        self.lanes = {}  # lane key -> Dispatcher (local runner / worker), made at the first scheduled request
        self.replayed = False  # local / worker: this process sent its share of the trace
        self.replayed_by = {}  # master: worker id -> (its lines of the trace, how many it sent) once its part is out
        self.trace_start = None  # master: the trace's time 0 for every worker, wall-clock s (trace_start.choose)
        self.trace_starts = {}  # master: worker index -> (ready_ms, start_offset_ms) (trace_start.on_message)
        self.trace_parts = None  # master: each worker's lines of the trace as split at the moment (step_clock.send_loads)
        self.trace_ready = None  # worker: when its first user asked for a trace slot, wall-clock s
        self.trace_reported = False  # worker: its first trace send was reported to the master
        self.started = time.perf_counter()
        self.samples = []
        self.final = None


def lane_plan(options, trace=None, trace_path=""):
    """The run's ``LanePlan`` from ``--models`` (several: a schedule per model) and ``--model-name``."""
    from tfs_user.models import parse_models  # plain: the --models text was checked by its option already

    return LanePlan.make(parse_models(getattr(options, "models", "") or ""), getattr(options, "model_name", ""),
                         trace, trace_path)


def trace_batch_sizes(options):
    """The batch sizes ``--arrival-trace``'s ``batch_size`` column asks of the model ``options.model_name`` (the
    options of one user class), sorted; () without a trace or that column. A bad trace is reported by the run's
    capacity options (``CapacityConfig.from_options``), not here: () then."""
    path = getattr(options, "arrival_trace", "") or ""
    if not path:
        return ()
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return ()
    plan = _trace_plan(path, stamp, getattr(options, "models", "") or "", options.model_name)
    return plan.sizes_of(options.model_name) if plan is not None else ()


@functools.lru_cache(maxsize=8)
def _trace_plan(path, stamp, models_text, model_name):
    from types import SimpleNamespace

    try:
        trace = traces.read_trace(path)
        return lane_plan(SimpleNamespace(models=models_text, model_name=model_name), trace, path)
    except ValueError:
        return None
