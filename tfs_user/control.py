"""Run control: users done, ending the run, fatal errors, workers' final reports, lost workers.

Users that finished their ``--iterations`` stay alive but idle ("parked"):
if they stopped, Locust would respawn them while it is still ramping up and
on a worker it would re-dispatch their share to other workers. A watcher
greenlet in each process ends the run when all users are parked:

- local runner: all its users are done -> quit (headless) or stop (web UI);
- worker: sends ``tfs_done`` {done, users} to the master whenever that changes;
- master: when every connected worker reports all its users done -> quit/stop.

Final reports: when a master stops (run time over, all users done, Ctrl-C, web
UI stop) it asks every worker for a last report (``tfs_flush``) and waits for
the answers (``tfs_flushed``, up to FLUSH_TIMEOUT_S) before it tells them to
quit. Without that, a worker that answers Locust's ``quit`` later than the
master's fixed 0.5 s wait loses the requests it made since its last periodic
report (seen: 300 of 600 requests reported with ``--processes 2``).

Open loop at the stop: a local runner or worker sends nothing more and waits for its scheduled
requests still in flight (``drain``, up to their gRPC deadline plus DRAIN_MARGIN_S), which count
in the figures like the rest, as MLPerf LoadGen waits for every query it issued; the master's
wait for final reports grows by the same time. Closed-loop requests completing after the stop
are left out ("after stop").
"""

import logging
import time

import gevent
from locust.exception import RPCError
from locust.runners import STATE_MISSING, STATE_RUNNING, STATE_STOPPING, LocalRunner, MasterRunner, WorkerRunner

from tfs_user.results.verdict import INTERRUPTED

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.1
FLUSH_TIMEOUT_S = 10.0
DRAIN_MARGIN_S = 1.0
"""Seconds beyond the gRPC deadline that the stop waits for open-loop requests in flight."""
DRAIN_POLL_S = 0.005
DONE_MESSAGE = "tfs_done"
ERROR_MESSAGE = "tfs_error"
FLUSH_MESSAGE = "tfs_flush"
FLUSHED_MESSAGE = "tfs_flushed"


class RunControl:
    """Per-process control of the current test (owned by the run object, ``tfs_user.run``)."""

    def __init__(self, environment):
        self.environment = environment
        self.done = 0
        """Users of this process that finished their iterations."""
        self.stopping = False
        """The runner began to stop: nothing more is sent; closed-loop completions after it are left out."""
        self.scheduled_in_flight = 0
        """Open-loop requests of this process sent and not yet recorded (counted by the users)."""
        self.deadline_s = 0.0
        """The longest gRPC deadline of this process's users (s): how long ``drain`` may wait."""
        self.at_stop = []
        """Callables ``hook(stopped_at)`` (perf_counter s) run once when this process's test begins to stop
        (local runner / worker: the open-loop schedule counts the slots that fell due unsent)."""
        self.errors = []
        self.hurried = False
        """A second Ctrl-C came (``hurry``): the stop waits for nothing more."""
        self.cut_short = []
        """What the second Ctrl-C left out, one summary line each."""
        self.worker_reports = {}  # master: worker id -> (done, users)
        self.flushed = set()  # master: workers whose final report arrived
        self.lost = {}  # master: worker id -> index, for workers that stopped sending heartbeats
        self._watcher = None
        self._stop_called_at = None  # perf_counter s when the runner's stop() was called in this test
        self._stamped_runner = None

    @property
    def runner(self):
        return self.environment.runner

    def user_done(self):
        """A user finished its iterations (it stays parked)."""
        self.done += 1

    def end_run(self, reason):
        """Quit (headless) or stop (web UI) the run from a fresh greenlet, logging ``reason`` once."""
        logger.info(reason)
        options = self.environment.parsed_options
        headless = bool(options and options.headless)
        gevent.spawn(self.runner.quit if headless else self.runner.stop)

    def report_error(self, message):
        """A fatal error in this process (bad data, bad option): log it once, tell the master, end the run."""
        if message in self.errors:
            return
        self.errors.append(message)
        logger.error("error: %s", message)
        self.environment.process_exit_code = 2
        runner = self.runner
        if isinstance(runner, WorkerRunner):
            runner.send_message(ERROR_MESSAGE, {"message": message})
        elif runner is not None:
            self.end_run("stopping the test because of the error above")

    def on_test_start(self, iterations_limited):
        """Reset; start the watcher that ends the run when all users are done (when iterations are limited)."""
        if self._watcher is not None:
            self._watcher.kill(block=False)
        self.done, self.stopping, self.worker_reports, self.lost, self.flushed = 0, False, {}, {}, set()
        self._stop_called_at = None
        self._stamp_stop(self.runner)
        self._watcher = gevent.spawn(self._watch) if iterations_limited else None

    def _stamp_stop(self, runner):
        """Note when ``runner.stop()`` is called: the test stops then. Locust's stop() first spends tens of
        milliseconds in ``inspect.stack()`` (73 ms measured here) before test_stopping fires, with the event
        loop blocked; stamped at test_stopping, slots due in that stretch read as 'never sent (all users
        busy)' and the measured window ran that much longer than any request could be sent."""
        if runner is None or self._stamped_runner is runner:
            return
        self._stamped_runner, stop = runner, runner.stop

        def stop_stamped(*args, **kwargs):
            if self._stop_called_at is None and not self.stopping:
                self._stop_called_at = time.perf_counter()
            return stop(*args, **kwargs)

        runner.stop = stop_stamped

    def _begin_stop(self):
        """Local runner / worker: nothing more is sent from now; the ``at_stop`` hooks run (once per test)
        with the instant the stop began (the runner's stop() call, else now)."""
        if self.stopping:
            return
        self.stopping = True
        stopped_at = self._stop_called_at if self._stop_called_at is not None else time.perf_counter()
        for hook in self.at_stop:
            hook(stopped_at)

    def drain(self):
        """Wait (this greenlet) until the open-loop requests in flight are recorded, at most their deadline
        plus DRAIN_MARGIN_S; returns how many were still in flight then (0 unless a call outlived its deadline)."""
        if self.scheduled_in_flight:
            with gevent.Timeout(self.deadline_s + DRAIN_MARGIN_S, False):
                while self.scheduled_in_flight:
                    gevent.sleep(DRAIN_POLL_S)
        return self.scheduled_in_flight

    def on_test_stopping(self):
        """Mark the stop (nothing more is sent); local runner and worker wait for the open-loop requests in
        flight (``drain``); a master collects the workers' final reports."""
        if not isinstance(self.runner, MasterRunner):
            self._begin_stop()
            self.drain()
        else:
            self.stopping = True
            # Locust marks the master STOPPING only after test_stopping's listeners return. Until then a
            # worker that quits (it got the Ctrl-C too) makes the RUNNING master respawn that worker's users
            # on the others: a second batch of requests in flight, lost at the stop (seen: 2 x users).
            self.runner.update_state(STATE_STOPPING)
            self._collect_final_reports()

    def _collect_final_reports(self):
        runner = self.runner
        # workers that got the signal themselves may have sent their final report already (flushed)
        workers = [c.id for c in runner.clients.values() if c.state != STATE_MISSING and c.id not in self.flushed]
        for worker in workers:
            runner.send_message(FLUSH_MESSAGE, None, client_id=worker)
        drain_s = self._worker_drain_s()  # workers wait for their open-loop requests in flight first
        with gevent.Timeout(FLUSH_TIMEOUT_S + drain_s, False):
            while not self.flushed.issuperset(w for w in workers if w in runner.clients) and not self.hurried:
                gevent.sleep(0.01)
        missing = [w for w in workers if w not in self.flushed and w in runner.clients]
        if missing and self.hurried:
            self.cut_short.append(f"Second Ctrl-C: the final reports of worker(s) {', '.join(missing)} were not waited "
                                  "for; their requests since their last report (every 3 s) are not counted")
        elif missing:
            logger.warning("no final report from worker(s) %s within %g s; their last requests are not counted",
                           ", ".join(missing), FLUSH_TIMEOUT_S + drain_s)

    def _worker_drain_s(self):
        """Master: how long a worker's ``drain`` may take (open loop: the --timeout deadline plus the margin)."""
        config = getattr(getattr(getattr(self.environment, "tfs_run", None), "capacity", None), "config", None)
        if config is None or not config.open_loop:
            return 0.0
        return float(getattr(self.environment.parsed_options, "timeout", 0.0) or 0.0) + DRAIN_MARGIN_S

    def hurry(self):
        """A second Ctrl-C while the run ends: wait for nothing more. Users still running are killed (their calls in
        flight end, so an open-loop ``drain`` has nothing left to wait for; so does Locust's --stop-timeout), a
        master stops waiting for its workers' final reports, and the summary is written from what completed,
        saying what was left out; the exit code is 130 (``tfs_user.final``)."""
        if self.hurried:
            return
        self.hurried = True
        logger.warning("Ctrl-C again: ending now, without waiting for requests in flight or workers' final reports "
                       "(a third Ctrl-C exits at once, writing nothing more)")
        runner = self.runner
        master = isinstance(runner, MasterRunner)
        if not isinstance(runner, WorkerRunner):
            reports = " or the workers' final reports" if master else ""
            self.cut_short.append("Interrupted: a second Ctrl-C ended the run without waiting for its requests in "
                                  f"flight{reports}; exit code {INTERRUPTED}")
        if runner is None or master:
            return
        if self.scheduled_in_flight:
            self.cut_short.append(f"Second Ctrl-C: {self.scheduled_in_flight} open-loop request(s) in flight were not "
                                  "waited for; they are left out")
            logger.warning(self.cut_short[-1])  # a worker's own line: its master cannot print it
        runner.user_greenlets.kill(block=False)
        if isinstance(runner, WorkerRunner):
            self.environment.process_exit_code = INTERRUPTED

    # ------------------------------------------------------------ messages

    def send_final_report(self, stop_users=False):
        """Worker: send the master what completed so far (Locust's and our statistics, the report Locust's
        periodic reporter sends), then ``tfs_flushed``. Nothing is sent from now on; open-loop requests in
        flight are waited for first (``drain``), closed-loop ones completing later count as after stop.
        ``stop_users``: stop the users first, so that only requests in flight are left out."""
        self._begin_stop()
        runner = self.runner
        if stop_users:
            runner.stop()  # test_stopping: drain
        else:
            self.drain()
        data = {}
        self.environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
        try:
            runner.send_message("stats", data)
            runner.send_message(FLUSHED_MESSAGE, None)
        except RPCError as e:  # the master is gone already: nobody to report to
            logger.debug("final report not sent: %s", e)

    def register_worker_messages(self):
        """Worker: answer the master's request for a final report; send one when this worker quits
        for any reason (master's quit, Ctrl-C or SIGTERM of its own) before Locust says goodbye."""
        self.runner.register_message(FLUSH_MESSAGE, lambda **kwargs: self.send_final_report())
        # quitting listeners run in reverse order: this one before the worker's own "quit" message
        self.environment.events.quitting.add_listener(lambda **kwargs: self.send_final_report(stop_users=True))

    def register_master_messages(self):
        """Master: listen for the workers' done reports, fatal errors and final reports; watch for lost workers."""
        runner = self.runner

        def on_done(environment, msg, **kwargs):
            self.worker_reports[msg.node_id] = (msg.data["done"], msg.data["users"])

        def on_error(environment, msg, **kwargs):
            message = f"worker {msg.node_id}: {msg.data['message']}"
            if message not in self.errors:
                self.errors.append(message)
                logger.error("error: %s", message)
                environment.process_exit_code = 2
                self.end_run("stopping the test because a worker cannot run it")

        def on_flushed(environment, msg, **kwargs):
            self.flushed.add(msg.node_id)

        gevent.spawn(self._watch_workers)
        runner.register_message(DONE_MESSAGE, on_done)
        runner.register_message(ERROR_MESSAGE, on_error)
        runner.register_message(FLUSHED_MESSAGE, on_flushed)

    # ------------------------------------------------------------ watchers

    def _watch_workers(self):
        """Master: log each worker that goes missing (no heartbeat), once, and remember it for the summary."""
        runner = self.runner
        while True:
            gevent.sleep(1.0)
            for client in runner.clients.values():
                if client.state == STATE_MISSING and client.id not in self.lost:
                    self.lost[client.id] = runner.get_worker_index(client.id)
                    logger.warning("worker %s (index %s) lost: no heartbeat; the run goes on with %d worker(s); "
                                   "its requests since its last report are not counted",
                                   client.id, self.lost[client.id], runner.worker_count)

    def _watch(self):
        runner = self.runner
        last_sent = None
        while True:
            gevent.sleep(WATCH_INTERVAL_S)
            if runner.state != STATE_RUNNING:
                continue
            if isinstance(runner, WorkerRunner):
                state = (self.done, runner.user_count)
                if state != last_sent:
                    runner.send_message(DONE_MESSAGE, {"done": state[0], "users": state[1]})
                    last_sent = state
            elif isinstance(runner, MasterRunner):
                if self._all_workers_done():
                    self.end_run("all users on all workers finished their iterations; ending the run")
                    return
            elif isinstance(runner, LocalRunner) and self.done >= runner.user_count > 0:
                self.end_run(f"all {runner.user_count} users finished their iterations; ending the run")
                return

    def _all_workers_done(self):
        runner = self.runner
        workers = [c for c in runner.clients.values() if c.state != STATE_MISSING]
        if not workers:
            return False
        for client in workers:
            done, users = self.worker_reports.get(client.id, (0, -1))
            if users != sum(client.user_classes_count.values()) or done < users:
                return False
        return True
