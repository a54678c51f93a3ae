"""The run object: everything tfs-locust keeps for one Locust ``Environment``.

``TfsRun.of(environment)`` is the one place state lives: settings and prepared requests of
each user class, the statistics ``Recorder``, run control (users done, final reports, lost
workers), the FPS meter, the status line, the demo server and the final figures. Locust's
``init`` event (``tfs_user.plugin``) calls ``start``, which registers the run's listeners on
*that* environment's events and worker messages, the way Locust's runners do:

- every process: ``test_start`` (prepare each TfsUser class once), ``test_stopping``;
- local runner and worker: ``request`` (record our events into the Recorder);
- worker: ``report_to_master`` (ship the Recorder), answer the master's final-report request;
- master: ``worker_report`` (merge workers' Recorders), done/error/flushed messages;
- local runner and master: ``quitting`` (final figures, CSV/JSON, SLO exit code) and ``quit``
  (print the summary, finish the HTML report, stop the demo server).

Users read what they need with ``run.prepared(user_class)``; nothing is prepared per user.
"""

import itertools
import logging
import os
import sys
from dataclasses import dataclass

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING, MasterRunner, WorkerRunner

from tfs_user import capacity, demo_process, report
from tfs_user.control import RunControl
from tfs_user.fitting import build_requests, data_here, open_sources
from tfs_user.fps_meter import SAMPLE_INTERVAL_S, FpsMeter
from tfs_user.phases import Phase, sample_of
from tfs_user.settings import RunOptions
from tfs_user.stats import Recorder

logger = logging.getLogger(__name__)

PREFLIGHT_TIMEOUT_S = 5.0
"""Seconds to wait for the server to accept a connection before a headless run starts."""
LOCUST_CSV_SUFFIXES = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv")
MESSAGE_KEY = "tfs"
"""Key of our Recorder in Locust's worker report."""


@dataclass(frozen=True)
class Prepared:
    """What the users of one user class share: their Settings, the request bodies, request names."""

    settings: object
    """The class's ``Settings``."""
    requests: object
    """The ``RequestFactory``: ``requests.request(k)`` -> serialized PredictRequest of batch k."""
    names: dict
    """Phase -> Locust request name."""

    @property
    def iterations_limit(self):
        """Measured requests per user, or None for no limit (``iterations`` -1; 0 = one pass over the data)."""
        iterations = self.settings.iterations
        return {-1: None, 0: self.requests.batches.one_pass}.get(iterations, iterations)


def is_ours(options):
    """Whether ``options`` carry tfs-locust's options (False when TfsUser is used without the plugin's parser)."""
    return options is not None and hasattr(options, "batch_size") and hasattr(options, "slo_p99_ms")


class TfsRun:
    """tfs-locust's state and listeners for one Locust Environment (see the module docstring)."""

    def __init__(self, environment):
        self.environment = environment
        options = environment.parsed_options
        self.options = RunOptions.from_options(options) if is_ours(options) else RunOptions()
        self.recorder = Recorder()
        """Statistics of measured requests (this process's, or on a master all workers')."""
        self.control = RunControl(environment)
        self.meter = FpsMeter()
        self.notes = []
        """Lines printed under the summary (lost workers ...)."""
        self.final = None
        """(summary data, SLO violations) once the run quits."""
        self.demo = None
        self.master = self.worker = False
        self._settings = {}  # user class -> Settings, for the current test
        self._prepared = {}  # Settings -> Prepared (or None: checked, no data here), once per process
        self._sources = {}  # data paths -> opened data, once per process
        self._status = None
        self._user_numbers = itertools.count(1)

    @classmethod
    def of(cls, environment):
        """The run object of ``environment``, made on first use."""
        run = getattr(environment, "tfs_run", None)
        if run is None:
            run = environment.tfs_run = cls(environment)
        return run

    # ------------------------------------------------------------ users

    def prepared(self, user_class):
        """The Prepared of ``user_class`` for the current test (pre-flight and data on first use).

        Raises OptionError, DataError, InputError or PreflightError (ValueError, one line).
        """
        settings = self._settings.get(user_class)
        if settings is None:
            settings = self._settings[user_class] = user_class.make_settings(self.environment)
        return self._prepare(settings)

    def _prepare(self, settings, load=True):
        """Pre-flight and requests for ``settings``, once per process; ``load=False``: check the model only."""
        prepared = self._prepared.get(settings)
        if prepared is None and (load or settings not in self._prepared):
            from tfs_user.preflight import inspect_model  # gRPC: imported where it is used, after gevent

            signature = inspect_model(settings)
            if load:
                requests = build_requests(settings, signature, self._open(settings))
                prepared = Prepared(settings, requests, {p: p.request_name(settings.model_name) for p in Phase})
            self._prepared[settings] = prepared
        return prepared

    def _open(self, settings, master=False):
        """The opened data of ``settings`` (once per process), or None on a master without it."""
        if not data_here(settings, master):
            return None
        key = (settings.named_inputs, settings.images_numpy_path, settings.images_dir)
        if key not in self._sources:
            self._sources[key] = open_sources(settings)
        return self._sources[key]

    def next_user_number(self):
        """1, 2, ... for the users of this process (progress lines name them)."""
        return next(self._user_numbers)

    def _tfs_user_classes(self):
        return [c for c in self.environment.user_classes if hasattr(c, "make_settings")]

    # ------------------------------------------------------------ wiring

    def start(self, runner, web_ui=None):
        """Register this run's listeners on its environment (Locust's ``init``); checks before a headless start."""
        environment = self.environment
        events = environment.events
        self.master = isinstance(runner, MasterRunner)
        self.worker = isinstance(runner, WorkerRunner)
        events.test_start.add_listener(self._on_test_start)
        events.test_stopping.add_listener(lambda **kw: self.control.on_test_stopping())
        if self.master:
            events.worker_report.add_listener(self._on_worker_report)
        else:
            events.request.add_listener(self._on_request)
        try:  # open loop and sweeps: listeners of their own (tfs_user.capacity)
            capacity.start(self, runner)
        except ValueError as e:  # a bad --sweep/--step-time/--arrival-rate combination
            self.fail(str(e))
        if self.worker:
            events.report_to_master.add_listener(self._on_report_to_master)
            self.control.register_worker_messages()
            return
        events.quitting.add_listener(self._on_quitting)
        events.quit.add_listener(self._on_quit)
        if self.master:
            self.control.register_master_messages()
        if web_ui is not None or self.options.html_file:
            gevent.spawn(self._sample_forever)
        if web_ui is not None:
            from tfs_user import webui  # Flask: only where there is a web UI

            webui.extend(self, web_ui, master=self.master)
        self._check_before_start()

    def _check_before_start(self):
        """Local runner or master: demo server, settings and data, and (headless) the server and model."""
        options = self.options
        environment = self.environment
        if options.demo_server:
            try:
                self.demo = demo_process.start(options.demo_server_args)
            except demo_process.DemoServerError as e:
                self.fail(str(e))
            environment.host = environment.parsed_options.host = self.demo.address
        checks = []
        try:
            for user_class in self._tfs_user_classes():
                settings = user_class.make_settings(environment)
                checks.append((settings, self._open(settings, master=self.master) is not None))
        except ValueError as e:  # OptionError, DataError
            self.fail(str(e))
        if not (options.headless or options.autostart):
            return
        from tfs_user.channel import wait_until_reachable

        try:
            for settings, has_data in checks:
                wait_until_reachable(settings.target, PREFLIGHT_TIMEOUT_S, settings.transport)
                self._prepare(settings, load=has_data)
        except (ConnectionError, ValueError) as e:
            self.fail(str(e))
        if options.status_interval_s > 0:
            from tfs_user.status import StatusPrinter

            self._status = StatusPrinter(self, options.status_interval_s, options.csv_prefix)

    def fail(self, message):
        """Fatal error before the test: one line on stderr, demo server stopped, exit code 2.

        Locust opens its CSV files before ``init``; the still-empty ones are removed
        so that a run that never started leaves nothing behind.
        """
        self.demo = demo_process.stop(self.demo)
        prefix = self.options.csv_prefix
        for path in [f"{prefix}{suffix}" for suffix in LOCUST_CSV_SUFFIXES] if prefix else []:
            if os.path.isfile(path) and os.path.getsize(path) == 0:
                os.remove(path)
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)

    # ------------------------------------------------------------ listeners

    def _on_test_start(self, **kwargs):
        options = self.environment.parsed_options
        if is_ours(options):  # the web UI form may have changed them
            self.options = RunOptions.from_options(options)
        self.recorder = Recorder()
        self._settings = {}
        classes = self._tfs_user_classes()
        self.control.on_test_start(iterations_limited=any(
            self._iterations_limited(c) for c in classes))
        if self.master:
            return
        try:  # pre-flight and data before the first user starts; on a worker, options arrived just now
            for user_class in classes:
                self.prepared(user_class)
        except ValueError as e:  # OptionError, DataError, InputError, PreflightError
            self.control.report_error(str(e))

    def _iterations_limited(self, user_class):
        try:
            settings = self._settings[user_class] = user_class.make_settings(self.environment)
        except ValueError:
            return False
        return settings.iterations >= 0

    def _on_request(self, response_time, exception, context=None, start_time=None, **kwargs):
        sample = sample_of(context)
        if sample is None:
            return
        recorder = self.recorder
        if sample.phase is Phase.MEASURED:
            recorder.record(kwargs["name"], response_time, exception is None, sample.frames,
                            start_time, start_time + response_time / 1000.0)
        elif sample.phase is Phase.WARMUP:
            recorder.warmup += 1
            recorder.warmup_failures += exception is not None
        else:
            recorder.after_stop += 1

    def _on_report_to_master(self, client_id, data, **kwargs):
        if not self.recorder.is_empty():
            data[MESSAGE_KEY] = self.recorder.to_message()
            self.recorder = Recorder()

    def _on_worker_report(self, client_id, data, **kwargs):
        if MESSAGE_KEY in data:
            self.recorder.merge(Recorder.from_message(data[MESSAGE_KEY]))

    def _sample_forever(self):
        runner = self.environment.runner
        while True:
            gevent.sleep(SAMPLE_INTERVAL_S)
            if runner.state in (STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING):
                self.meter.sample(self.recorder)

    def _on_quitting(self, **kwargs):
        if self._status is not None:
            self._status.stop()
        # Ctrl-C reaches here with the test still running: stop it first so that the
        # workers' last reports arrive before the figures are final.
        self.environment.runner.quit()
        data = report.summary(self.recorder)
        lost = self.control.lost
        if lost:
            data["lost_workers"] = sorted(lost)
            self.notes.append(f"Lost workers: {', '.join(f'{w} (index {i})' for w, i in sorted(lost.items()))}; "
                              "figures include what they reported before they were lost")
        capacity_final = capacity.finish(self.environment)  # steps, open loop: JSON keys and summary lines
        if capacity_final is not None:
            data.update(capacity_final[0])
            self.notes.extend(capacity_final[1])
        violations = capacity.sweep_violations(self.environment)  # a sweep: SLOs per step
        if violations is None:
            violations = report.slo_violations(data, self.options)
        if self.options.csv_prefix:
            report.write_csv(f"{self.options.csv_prefix}_tfs.csv", data)
        if self.options.json_summary:
            report.write_json(self.options.json_summary, data, violations)
        if violations:
            self.environment.process_exit_code = 3
        self.final = (data, violations)

    def _on_quit(self, **kwargs):
        if self.final is not None:
            data, violations = self.final
            print(report.format_summary(data, self.notes + violations), flush=True)
            path = self.options.html_file
            if path and os.path.isfile(path):  # Locust wrote it; add our section with the final figures
                from tfs_user.html_report import add_to_file

                add_to_file(path, data, self.meter.chart, self.notes)
        self.demo = demo_process.stop(self.demo)
