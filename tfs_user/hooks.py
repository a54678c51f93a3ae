"""Locust event listeners that tie options, users, statistics and reports together.

Registered once, on import (``tfs_user.user`` imports this module), on Locust's
global ``events``. Per process:

- init: register options' consumers; on a local/master runner start the demo
  server if asked, validate settings and data, check the server answers
  (headless), start the status printer; on a master, listen for worker messages.
- test_start / test_stopping: reset statistics and progress, mark stop time.
- request: record our events (context ``tfs``) into the process Recorder.
- report_to_master / worker_report: ship and merge Recorders (HDR-encoded).
- quitting: final statistics, CSV/JSON files, SLO exit code; quit: print them.
"""

import logging
import os
import sys

import gevent
from locust import events
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from tfs_user import capacity, control, demo_process, report
from tfs_user.client import wait_until_reachable
from tfs_user.data import DataError
from tfs_user.options import OptionError, Settings, add_options
from tfs_user.prepare import check_data, prepare
from tfs_user.stats import Recorder

logger = logging.getLogger(__name__)

PREFLIGHT_TIMEOUT_S = 5.0


class _State:
    """Per-environment state of this plugin."""

    def __init__(self):
        self.recorder = Recorder()
        self.demo = None
        self.final = None
        self.notes = []
        self.status_greenlet = None


state = control.per_environment(_State)
"""The plugin state of an environment; ``state(env).recorder`` holds the TFS statistics."""


def _ours(options):
    """Whether ``options`` carry this plugin's options (False when used as a library without them)."""
    return options is not None and hasattr(options, "batch_size") and hasattr(options, "slo_p99_ms")


LOCUST_CSV_SUFFIXES = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv")


def _fail(environment, message):
    """Fatal error before the test: one line on stderr, demo server stopped, exit code 2.

    Locust opens its CSV files before ``init``; the still-empty ones are removed
    so that a run that never started leaves nothing behind.
    """
    demo_process.stop(state(environment).demo)
    prefix = environment.parsed_options.csv_prefix
    for path in [f"{prefix}{suffix}" for suffix in LOCUST_CSV_SUFFIXES] if prefix else []:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            os.remove(path)
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


@events.init_command_line_parser.add_listener
def _on_parser(parser, **kwargs):
    add_options(parser)


@events.init.add_listener
def _on_init(environment, runner=None, **kwargs):
    options = environment.parsed_options
    if not _ours(options) or runner is None:
        return
    _listen_for_statistics(environment)
    if isinstance(runner, WorkerRunner):
        control.register_worker_messages(environment)
        capacity.init(environment, options)
        return
    s = state(environment)
    if options.demo_server:
        try:
            s.demo = demo_process.start(options.demo_server_args)
        except demo_process.DemoServerError as e:
            _fail(environment, str(e))
        environment.host = options.host = s.demo.address
    try:
        settings = Settings.from_options(options, environment.host)
        has_data = check_data(settings, master=isinstance(runner, MasterRunner))
        capacity.init(environment, options)
    except (OptionError, DataError, ValueError) as e:
        _fail(environment, str(e))
    if isinstance(runner, MasterRunner):
        control.register_master_messages(environment)
    if options.headless or options.autostart:
        try:
            wait_until_reachable(settings.target, PREFLIGHT_TIMEOUT_S, settings.transport)
            prepare(settings, load=has_data)
        except (ConnectionError, ValueError) as e:
            _fail(environment, str(e))
        if options.status_interval > 0:
            s.status_greenlet = gevent.spawn(_print_status, environment, options.status_interval)


def _print_status(environment, interval):
    status = report.StatusLine()
    runner = environment.runner
    history = None
    prefix = environment.parsed_options.csv_prefix
    while True:
        gevent.sleep(interval)
        if runner.state not in (STATE_RUNNING, STATE_SPAWNING):
            continue
        line, row = status.format(state(environment).recorder, runner.user_count)
        print(line, flush=True)
        if prefix:
            if history is None:
                history = open(f"{prefix}_tfs_history.csv", "w", newline="")
                history.write(",".join(report.HISTORY_COLUMNS) + "\n")
            history.write(",".join(str(v) for v in row) + "\n")
            history.flush()


@events.test_start.add_listener
def _on_test_start(environment, **kwargs):
    options = environment.parsed_options
    if not _ours(options):
        return
    state(environment).recorder = Recorder()
    control.on_test_start(environment, iterations_limited=int(options.tfs_iterations) >= 0)
    if isinstance(environment.runner, MasterRunner):
        capacity.test_start(environment)
        return
    try:  # pre-flight and data before the first user starts; on a worker, options arrived just now
        capacity.test_start(environment)
        prepare(Settings.from_options(options, environment.host))
    except ValueError as e:  # OptionError, DataError, InputError, PreflightError (gRPC errors included)
        control.report_error(environment, str(e))


@events.test_stopping.add_listener
def _on_test_stopping(environment, **kwargs):
    control.on_test_stopping(environment)


def _listen_for_statistics(environment):
    """Record this process's request events; ship them to the master (worker) or merge workers' (master)."""
    s = state(environment)

    def on_request(name, response_time, exception, context=None, **kwargs):
        info = context.get("tfs") if context else None
        if info is None:
            return
        phase = info["phase"]
        if phase == "measured":
            s.recorder.record(name, response_time, exception is None, info["frames"], info["start"], info["end"])
        elif phase == "warmup":
            s.recorder.warmup += 1
            s.recorder.warmup_failures += exception is not None
        else:
            s.recorder.after_stop += 1
        capacity.on_request(environment, info, response_time, exception is None)

    def on_report_to_master(client_id, data, **kwargs):
        if not s.recorder.is_empty():
            data["tfs"] = s.recorder.to_message()
            s.recorder = Recorder()
        capacity_data = capacity.to_message(environment)
        if capacity_data is not None:
            data["tfs_capacity"] = capacity_data

    def on_worker_report(client_id, data, **kwargs):
        if "tfs" in data:
            s.recorder.merge(Recorder.from_message(data["tfs"]))
        if "tfs_capacity" in data:
            capacity.merge_message(environment, data["tfs_capacity"])

    if isinstance(environment.runner, MasterRunner):
        environment.events.worker_report.add_listener(on_worker_report)
    else:
        environment.events.request.add_listener(on_request)
        if isinstance(environment.runner, WorkerRunner):
            environment.events.report_to_master.add_listener(on_report_to_master)


@events.quitting.add_listener
def _on_quitting(environment, **kwargs):
    options = environment.parsed_options
    if not _ours(options) or environment.runner is None or isinstance(environment.runner, WorkerRunner):
        return
    s = state(environment)
    if s.status_greenlet is not None:
        s.status_greenlet.kill(block=False)
    # Ctrl-C reaches here with the test still running: stop it first so that the
    # workers' last reports arrive before the figures are final.
    environment.runner.quit()
    data = report.summary(s.recorder)
    lost = control.progress(environment).lost
    if lost:
        data["lost_workers"] = sorted(lost)
        s.notes.append(f"Lost workers: {', '.join(f'{w} (index {i})' for w, i in sorted(lost.items()))}; "
                       "figures include what they reported before they were lost")
    capacity_final = capacity.finish(environment)
    if capacity_final is not None:
        data.update(capacity_final[0])
        s.notes.extend(capacity_final[1])
    violations = capacity.sweep_violations(environment)  # a sweep: per-step SLOs
    if violations is None:
        violations = report.slo_violations(data, options)
    if options.csv_prefix:
        report.write_csv(f"{options.csv_prefix}_tfs.csv", data)
    if options.json_summary:
        report.write_json(options.json_summary, data, violations)
    if violations:
        environment.process_exit_code = 3
    s.final = (data, violations)


@events.quit.add_listener
def _on_quit(exit_code, **kwargs):
    for environment, s in list(state.objects.items()):
        if s.final is not None:
            data, violations = s.final
            print(report.format_summary(data, s.notes + violations), flush=True)
        s.demo = demo_process.stop(s.demo)
