"""The run object: everything tfs-locust keeps for one Locust ``Environment``.

``TfsRun.of(environment)`` is the one place state lives: settings and prepared requests of
each user class, the statistics ``Recorder``, run control (users done, final reports, lost
workers), the FPS meter, the status line, the demo server and the final figures. Locust's
``init`` event (``tfs_user.plugin``) calls ``start``, which registers the run's listeners on
*that* environment's events and worker messages, the way Locust's runners do:

- every process: ``test_start`` (prepare each TfsUser class once), ``test_stopping``;
- local runner and worker: ``request`` (record our events into the Recorder), the event-loop lag probe
  (``tfs_user.loop_lag``) from ``test_start`` to ``test_stop``;
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
import time

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING, MasterRunner, WorkerRunner

from tfs_user.capacity import wiring as capacity
from tfs_user.demo import process as demo_process
from tfs_user import locust_csv, loop_lag, report
from tfs_user.control import RunControl, take_sigint
from tfs_user.transport.endpoints import channel_facts, row_name
from tfs_user.fps_meter import SAMPLE_INTERVAL_S, FpsMeter
from tfs_user.option_values import DEMO_METRICS
from tfs_user.phases import Phase, sample_of
from tfs_user.prepare import Preparer
from tfs_user.results import baseline, summary_keys
from tfs_user.server_window import ServerWindow
from tfs_user.settings import RunOptions
from tfs_user.stats import Recorder
from tfs_user.live import print_status
from tfs_user.verdict import decide

logger = logging.getLogger(__name__)

PREFLIGHT_TIMEOUT_S = 5.0
"""Seconds to wait for the server to accept a connection before a headless run starts
(``--wait-for-model`` instead, when it is longer)."""
MESSAGE_KEY = "tfs"
"""Key of our Recorder in Locust's worker report."""


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
        """(summary data, Verdict) once the run quits."""
        self.counted_from = None
        """Why and when the figures last restarted (a statistics reset), or None."""
        self.demo = None
        self.capacity = None
        """Open loop and sweeps (``tfs_user.capacity.state.Capacity``), made in ``start``."""
        self.server = ServerWindow(self)
        """The servers' own figures (``--server-metrics``), scraped by a local runner or master."""
        self._web_ui = False
        self.master = self.worker = False
        self.workers_at_start = None
        """Master: workers connected when the test started (the JSON's ``run``; they are gone at the end)."""
        self._settings = {}  # user class -> Settings, for the current test
        self.preparer = Preparer()
        """Pre-flight and request bodies, once per process and Settings."""
        self._status = None
        self._probe = loop_lag.Probe(self._record_lag)  # local runner / worker, from test_start to test_stop
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
        """The Prepared of ``user_class`` for the current test (pre-flight and data on first use, ``tfs_user.prepare``).

        Raises OptionError, DataError, InputError or PreflightError (ValueError, one line).
        """
        settings = self._settings.get(user_class)
        if settings is None:
            settings = self._settings[user_class] = user_class.make_settings(self.environment)
        return self.preparer.prepare(settings)

    def next_user_number(self):
        """1, 2, ... for the users of this process (progress lines name them)."""
        return next(self._user_numbers)

    def settings_list(self):
        """The Settings of this test's TfsUser classes, in class order (made on first use)."""
        out = []
        for user_class in self._tfs_user_classes():
            try:
                out.append(self._settings.get(user_class) or user_class.make_settings(self.environment))
            except ValueError:  # a bad option: reported where the users need it
                continue
        return out

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
        events.reset_stats.add_listener(lambda **kw: self.reset("statistics reset in the web UI"))
        events.spawning_complete.add_listener(self._on_spawning_complete)
        take_sigint()
        if self.master:
            events.worker_report.add_listener(self._on_worker_report)
        else:
            events.request.add_listener(self._on_request)
            events.test_stop.add_listener(lambda **kw: self._probe.stop())
        self.capacity = capacity.Capacity(self)
        try:  # open loop and sweeps: listeners of their own (tfs_user.capacity.wiring)
            capacity.start(self.capacity, runner)
        except ValueError as e:  # a bad --sweep/--step-time/--arrival-rate combination
            self.fail(str(e))
        if self.worker:
            events.report_to_master.add_listener(self._on_report_to_master)
            self.control.register_worker_messages()
            return
        events.quitting.add_listener(self._on_quitting)
        events.quit.add_listener(self._on_quit)
        events.test_stop.add_listener(lambda **kw: self.server.on_test_stop())
        if self.master:
            self.control.register_master_messages()
        self._web_ui = web_ui is not None
        if web_ui is not None or self.options.html_file:
            gevent.spawn(self._sample_forever)
        if web_ui is not None:
            from tfs_user.web import ui as webui  # Flask: only where there is a web UI

            webui.extend(self, web_ui, master=self.master)
        self._check_before_start()

    def reset(self, reason):
        """Restart our figures as Locust restarts its own (``reset_stats``, ``--reset-stats``)."""
        self.recorder = Recorder()
        self.counted_from = f"Figures count from {time.strftime('%H:%M:%S')} ({reason})"
        self.server.restart()

    def _on_spawning_complete(self, **kwargs):
        if self.environment.reset_stats:  # Locust's --reset-stats: its runners reset now, on master and workers
            self.reset("--reset-stats: statistics reset when all users were spawned")

    def _check_before_start(self):
        """Local runner or master: demo server, settings and data, and (headless) the server and model."""
        options = self.options
        environment = self.environment
        if "iterations" in vars(environment.parsed_options):  # another plugin (locust-plugins) owns --iterations
            logger.info("notice: --iterations belongs to another plugin here (locust-plugins: requests per process, "
                        "not per user); use --tfs-iterations (config key tfs-iterations) for requests per user")
        if options.demo_server:
            try:
                self.demo = demo_process.start(options.demo_server_args, stream=options.out)
            except demo_process.DemoServerError as e:
                self.fail(str(e))
            # an http:// or https:// --host means its REST port (the host:port part is the demo server's)
            http = (environment.parsed_options.host or "").startswith(("http://", "https://"))
            address = f"http://{self.demo.rest_address}" if http and self.demo.rest_address else self.demo.address
            environment.host = environment.parsed_options.host = address
        if DEMO_METRICS in options.server_metrics and not options.demo_server:
            self.fail("--server-metrics demo reads the demo server's metrics page; expected --demo-server with it "
                      "(or the URL of your server's Prometheus page)")
        checks = []
        try:
            for user_class in self._tfs_user_classes():
                settings = user_class.make_settings(environment)
                checks.append((settings, self.preparer.open(settings, master=self.master) is not None))
        except ValueError as e:  # OptionError, DataError
            self.fail(str(e))
        if not (options.headless or options.autostart):
            return
        if options.baseline:
            try:
                baseline.check_before_start(self)
            except ValueError as e:  # CompareError
                self.fail(str(e))
        from tfs_user.transport.connect import wait_until_reachable

        try:
            for settings, has_data in checks:
                for endpoint in settings.endpoints:  # every endpoint, before any user starts
                    wait_until_reachable(endpoint, max(PREFLIGHT_TIMEOUT_S, settings.wait_for_model_s), settings)
                self.preparer.prepare(settings, load=has_data)
        except (ConnectionError, ValueError) as e:
            self.fail(str(e))
        if options.status_interval_s > 0:
            self._status = gevent.spawn(print_status, self, options.status_interval_s, options.csv_prefix)

    def fail(self, message):
        """Fatal error before the test: one line on stderr, demo server stopped, exit code 2.

        Locust opens its CSV files before ``init``; the still-empty ones are removed
        so that a run that never started leaves nothing behind.
        """
        self.demo = demo_process.stop(self.demo, stream=self.options.out)
        locust_csv.remove_empty(self.options.csv_prefix)
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)

    # ------------------------------------------------------------ listeners

    def _on_test_start(self, **kwargs):
        options = self.environment.parsed_options
        if is_ours(options):  # the web UI form may have changed them
            self.options = RunOptions.from_options(options)
        self.recorder = Recorder()
        self.counted_from = None
        self._settings = {}
        classes = self._tfs_user_classes()
        self.control.on_test_start(iterations_limited=any(
            self._iterations_limited(c) for c in classes))
        self.server.on_test_start()  # before the first user: the window's start
        if self._web_ui:
            runner = self.environment.runner
            self.server.watch_live(lambda: runner.state in (STATE_RUNNING, STATE_SPAWNING))
        if self.master:
            self.workers_at_start = self.environment.runner.worker_count  # for the JSON's ``run`` (gone at the end)
            return
        self._probe.start()
        try:  # pre-flight and data before the first user starts; on a worker, options arrived just now
            for user_class in classes:
                self.prepared(user_class)
        except ValueError as e:  # OptionError, DataError, InputError, PreflightError
            self.control.report_error(str(e))

    def _record_lag(self, lag_ms):
        self.recorder.record_lag(lag_ms)
        capacity.record_lag(self.capacity, lag_ms)

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
            recorder.record(row_name(kwargs["name"], sample.endpoint), response_time, exception is None, sample.frames,
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
            self._status.kill()
        self._probe.stop()
        # Ctrl-C reaches here with the test still running: stop it first so that the
        # workers' last reports arrive before the figures are final.
        self.environment.runner.quit()
        environment = self.environment
        runner = environment.runner
        data = report.summary(self.recorder)
        summary_keys.add_to_rows(data, self.recorder)  # histograms and windows: for a later comparison
        data["run"] = summary_keys.run_facts(self.settings_list(), environment.parsed_options,
                                             workers=self.workers_at_start if self.master else None)
        lost = self.control.lost
        data["lost_workers"] = sorted(lost)
        data["counted_from"] = self.counted_from
        data.update(channel_facts(self._settings.values()))
        if lost:
            self.notes.append(f"Lost workers: {', '.join(f'{w} (index {i})' for w, i in sorted(lost.items()))}; "
                              "figures include what they reported before they were lost")
        if self.counted_from:
            self.notes.append(self.counted_from)
        capacity_final = capacity.finish(self.capacity)  # steps, open loop: JSON keys and summary lines
        if capacity_final is not None:
            data.update(capacity_final[0])
            self.notes.extend(capacity_final[1])
        server = self.server.test_entries(data)
        if server is not None:
            data["server"] = server
            self.notes.extend(self.server.lines(server))
        verdict = decide(data, self.options, could_not_run=bool(self.control.errors) or environment.process_exit_code == 2,
                         any_failure=bool(runner.stats.errors or runner.exceptions),
                         exit_code_on_error=self.options.exit_code_on_error,
                         violations=capacity.sweep_violations(self.capacity))  # a sweep: SLOs per step
        if self.options.baseline:
            verdict = baseline.judge(self, data, verdict)  # a worse figure: exit 3
        environment.process_exit_code = verdict.exit_code  # Locust exits with it
        if self.options.csv_prefix:
            report.write_csv(f"{self.options.csv_prefix}_tfs.csv", data)
            if server is not None:
                self.server.write_csv(f"{self.options.csv_prefix}_tfs_server.csv", data)
        if self.options.json_summary:
            report.write_json(self.options.json_summary, data, verdict)
        self.final = (data, verdict)

    def _on_quit(self, **kwargs):
        if self.final is not None:
            data, verdict = self.final
            print(report.format_summary(data, self.notes + list(verdict.violations)), file=self.options.out, flush=True)
            path = self.options.html_file
            if path and os.path.isfile(path):  # Locust wrote it; add our section with the final figures
                from tfs_user.web.html_report import add_to_file

                add_to_file(path, data, self.meter.chart, self.notes, capacity.charts(self.capacity))
        self.demo = demo_process.stop(self.demo, stream=self.options.out)
