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
  (print the summary, finish the HTML report, stop the demo server): ``tfs_user.final``.

Before the first test, ``start`` checks the demo server, options, data and server (``tfs_user.startup``).

Users read what they need with ``run.prepared(user_class)``; nothing is prepared per user.
"""

import itertools
import logging
import time

import gevent
from locust.runners import STATE_INIT, STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING, MasterRunner, WorkerRunner

from tfs_user.capacity import wiring as capacity
from tfs_user import final, loop_lag, models, startup
from tfs_user.control import RunControl
from tfs_user.ctrl_c import INTERRUPTED, take_sigint
from tfs_user.transport.endpoints import row_name
from tfs_user.results.fps_meter import SAMPLE_INTERVAL_S, FpsMeter
from tfs_user.phases import Phase, sample_of
from tfs_user.prepare import Preparer
from tfs_user.server_window import ServerWindow
from tfs_user.settings import RunOptions
from tfs_user.stats import Recorder
from tfs_user.results.status import SourceRates

logger = logging.getLogger(__name__)

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
        self.worker_rates = SourceRates()
        """A master's status line rates: each worker's reports on its own end times (``tfs_user.results.status``)."""
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
        self.settings_by_class = {}  # user class -> Settings, for the current test
        self.preparer = Preparer()
        """Pre-flight and request bodies, once per process and Settings."""
        self.status = None
        self.probe = loop_lag.Probe(self._record_lag)  # local runner / worker, from test_start to test_stop
        self._user_numbers = itertools.count(1)
        self.model_slos = {}
        """--models: each model's own SLOs (``tfs_user.models.model_slos``)."""

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
        settings = self.settings_by_class.get(user_class)
        if settings is None:
            settings = self.settings_by_class[user_class] = user_class.make_settings(self.environment)
        return self.preparer.prepare(settings)

    def next_user_number(self):
        """1, 2, ... for the users of this process (progress lines name them)."""
        return next(self._user_numbers)

    def settings_list(self):
        """The Settings of this test's TfsUser classes, in class order (made on first use)."""
        out = []
        for user_class in self.tfs_user_classes():
            try:
                out.append(self.settings_by_class.get(user_class) or user_class.make_settings(self.environment))
            except ValueError:  # a bad option: reported where the users need it
                continue
        return out

    def tfs_user_classes(self):
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
        take_sigint(on_again=self.control.hurry, exit_code=self._exit_code_now,
                    ended_before_start=self._ended_before_start)
        if self.master:
            events.worker_report.add_listener(self._on_worker_report)
        else:
            events.request.add_listener(self._on_request)
            events.test_stop.add_listener(lambda **kw: self.probe.stop())
        self.server.register(runner)
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
        try:
            self.model_slos = models.apply(environment, self._models_text())
        except ValueError as e:  # a bad --models, or one without the bundled user class
            self.fail(str(e))
        self._check_before_start()

    def _ended_before_start(self):
        """At the first Ctrl-C: a headless master still waiting for its workers (Locust's wait lets the
        KeyboardInterrupt out: a traceback, exit -2) ends as a Ctrl-C in the pre-flight does; True then."""
        runner = self.environment.runner
        if not (self.master and (self.options.headless or self.options.autostart) and runner.state == STATE_INIT):
            return False
        startup.clean_up_before_start(self, startup.CTRL_C_LINE)
        return True

    def _exit_code_now(self):
        """The exit code of a process ended at once (a third Ctrl-C): the verdict's once the files carry it, else 130."""
        if self.final is not None:
            return self.final[1].exit_code
        return self.environment.process_exit_code or INTERRUPTED

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
        startup.check_before_start(self)

    def fail(self, message):
        """Fatal error before the test: one line on stderr, demo server stopped, exit code 2 (``tfs_user.startup``)."""
        startup.fail(self, message)

    # ------------------------------------------------------------ listeners

    def _on_test_start(self, **kwargs):
        options = self.environment.parsed_options
        if is_ours(options):  # the web UI form may have changed them
            self.options = RunOptions.from_options(options)
        self.recorder = Recorder()
        self.counted_from = None
        self.settings_by_class = {}
        try:  # the web UI form may have changed --models; a worker hears it only now, before it spawns users
            self.model_slos = models.apply(self.environment, self._models_text())
        except ValueError as e:
            self.control.report_error(str(e))
        classes = self.tfs_user_classes()  # after --models made its classes (before, the old class was prepared)
        self.control.on_test_start(iterations_limited=any(
            self._iterations_limited(c) for c in classes))
        self.server.on_test_start()  # before the first user: the window's start
        if self._web_ui:
            runner = self.environment.runner
            self.server.watch_live(lambda: runner.state in (STATE_RUNNING, STATE_SPAWNING))
        if self.master:
            self.workers_at_start = self.environment.runner.worker_count  # for the JSON's ``run`` (gone at the end)
            return
        self.probe.start()
        try:  # pre-flight and data before the first user starts; on a worker, options arrived just now
            for user_class in classes:
                self.prepared(user_class)
        except ValueError as e:  # OptionError, DataError, InputError, PreflightError
            self.control.report_error(str(e))

    def _models_text(self):
        options = self.environment.parsed_options
        return getattr(options, "models", "") if is_ours(options) else ""

    def _record_lag(self, lag_ms):
        self.recorder.record_lag(lag_ms)
        capacity.record_lag(self.capacity, lag_ms)

    def _iterations_limited(self, user_class):
        try:
            settings = self.settings_by_class[user_class] = user_class.make_settings(self.environment)
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
                            start_time, start_time + response_time / 1000.0, sample.parts)
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
            reported = Recorder.from_message(data[MESSAGE_KEY])
            self.recorder.merge(reported)
            self.worker_rates.add_report(client_id, reported.total(), self.recorder)
            self.meter.add_report(client_id, reported, self.recorder)  # the web UI's current FPS, per worker too

    def _sample_forever(self):
        runner = self.environment.runner
        while True:
            gevent.sleep(SAMPLE_INTERVAL_S)
            if runner.state in (STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING):
                self.meter.sample(self.recorder, local=not self.master)

    def _on_quitting(self, **kwargs):
        final.on_quitting(self)


    def _on_quit(self, **kwargs):
        final.on_quit(self)
