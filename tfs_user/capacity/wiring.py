"""Open-loop arrivals and load sweeps inside a Locust run (``--arrival-rate``, ``--sweep``, ``--plot``): wiring.

The run object owns the state (``TfsRun.capacity``, a ``capacity_state.Capacity`` made in
``TfsRun.start``); ``start`` registers its listeners and worker messages on the run's
environment, ``on_test_start`` resets it for each test and starts its greenlets. The work is
done by modules of one job each:

- ``capacity_process`` (local runner / worker): users' slots and tickets (``begin``), the
  statistics fed from request events, worker reports, the master's load messages;
- ``capacity_sweep`` (master / local runner): the sweep clock (``CapacityShape``), step
  verdicts, load messages to workers, the time chart's samples;
- ``capacity_output`` (master / local runner, at quitting): rows, console lines, steps CSV,
  JSON keys, plot (``finish``), and the sweep's verdict (``sweep_violations``).

In open loop the request event's response_time and start_time are from the scheduled send
time, so Locust's own statistics get the corrected latency too.
"""

import gevent
from locust.runners import WORKER_REPORT_INTERVAL, LocalRunner, MasterRunner, WorkerRunner

from tfs_user.capacity import process, step_clock as sweep, trace_start
from tfs_user.capacity.output import add_to_model_rows, charts, finish, live_rows, sweep_violations  # noqa: F401
from tfs_user.capacity.process import Ticket, begin  # noqa: F401  (used by tfs_user.user)
from tfs_user.capacity.process import record_lag  # noqa: F401  (used by tfs_user.run)
from tfs_user.capacity.state import CONTEXT_KEY, MESSAGE_KEY, Capacity, CapacityConfig, Load  # noqa: F401

SAMPLE_INTERVAL_S = 1.0
"""Local runner: seconds between samples of the time chart (a master samples once per worker report)."""


def start(c, runner):
    """At Locust ``init`` (from ``TfsRun.start``): register the listeners of ``c`` (the run's Capacity) on its environment.

    Local runner / master: validate the options (raises ValueError, one line) and, with
    ``--sweep``, install the sweep's load shape. Workers read the options at ``test_start``
    (they arrive with the first spawn message).
    """
    environment = c.environment
    events = environment.events
    events.test_start.add_listener(lambda **kw: on_test_start(c))
    if isinstance(runner, MasterRunner):
        events.worker_report.add_listener(lambda client_id, data, **kw: process.on_worker_report(c, data))
    else:
        events.request.add_listener(lambda **kw: process.on_request(c, **kw))
        c.run.control.at_stop.append(lambda stopped_at: process.end_schedule(c, stopped_at))
    if isinstance(runner, WorkerRunner):
        events.test_stop.add_listener(lambda **kw: setattr(c, "load", Load()))  # the next test's loads come anew
        events.report_to_master.add_listener(lambda client_id, data, **kw: process.on_report_to_master(c, data))
        runner.register_message(sweep.LOAD_MESSAGE, lambda msg, **kw: process.on_load_message(c, msg))
        runner.register_message(sweep.STEP_FLUSH_MESSAGE, lambda msg, **kw: process.on_step_flush(c, msg))
        return
    if isinstance(runner, MasterRunner):
        runner.register_message(process.STEP_FLUSHED_MESSAGE, lambda msg, **kw: sweep.on_step_flushed(c, msg))
        runner.register_message(process.TRACE_DONE_MESSAGE, lambda msg, **kw: process.on_trace_done(c, msg))
        runner.register_message(trace_start.TRACE_START_MESSAGE, lambda msg, **kw: trace_start.on_message(c, msg))
    configure(c, runner)


def configure(c, runner):
    """Local runner / master: read ``c``'s options from the environment's ``parsed_options`` and, for a
    sweep, install its load shape (else remove ours). At ``init``, and again when the web UI's start
    form changed the options (``tfs_user.web.ui``), so that a sweep typed into the form takes effect.
    Raises ValueError (one line) for a bad combination; then nothing changes.
    """
    environment = c.environment
    config = CapacityConfig.from_options(environment.parsed_options)
    c.config, c.plan = config, config.plan()
    if config.sweep is not None:
        c.shape = sweep.CapacityShape(c, c.plan)
        c.shape.runner = runner
        environment.shape_class = c.shape
    elif c.shape is not None:  # a sweep given before (command line or an earlier form) and now cleared
        if environment.shape_class is c.shape:
            environment.shape_class = None
        c.shape = None


def on_test_start(c):
    """At ``test_start``: reset; start the load messages (master), samples (master/local), schedule watch.

    A worker reads the options here (they arrived with the spawn message); a bad one is a fatal
    error of the run (``RunControl.report_error``).
    """
    environment = c.environment
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
    point = c.point if c.shape is not None and c.shape.entered is not None else (0, c.config.target_rate, float("inf"))
    entered = c.entered if c.shape is not None and c.shape.entered is not None else 0
    edges = c.step_edges if entered else {}
    c.reset()
    if not c.config.active:
        return
    c.entered, c.point, c.step_edges = entered, point, edges
    if isinstance(runner, LocalRunner):
        c.load = Load(point[0], point[1], point[2], c.config.sweep is None or entered > 0)
    elif isinstance(runner, WorkerRunner) and not c.load.known:
        # the master's first tick entered step 1 and sent its load before this worker's first spawn (and
        # so this test_start): resetting it counted step 1's warm-up as between steps (801 between, 0 warm-up)
        c.load = Load()
    if isinstance(runner, MasterRunner):
        c.greenlets.append(gevent.spawn(sweep.broadcast_loads, c))
        if c.config.trace is not None:  # one time 0 for every worker's share of the trace
            c.greenlets.append(gevent.spawn(trace_start.choose, c, sweep.send_loads))
    if not isinstance(runner, WorkerRunner):
        interval = WORKER_REPORT_INTERVAL if isinstance(runner, MasterRunner) else SAMPLE_INTERVAL_S
        c.greenlets.append(gevent.spawn(sweep.sample, c, interval))
    if c.config.open_loop and not isinstance(runner, MasterRunner):
        c.greenlets.append(gevent.spawn(process.watch_schedule, c))
        if c.config.trace is not None:
            c.greenlets.append(gevent.spawn(process.watch_trace, c))
