"""Run control: per-process progress, ending the run when every user is done, fatal errors.

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
"""

import logging
import weakref

import gevent
from locust.runners import STATE_MISSING, STATE_RUNNING, LocalRunner, MasterRunner, WorkerRunner

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.1
FLUSH_TIMEOUT_S = 10.0
DONE_MESSAGE = "tfs_done"
ERROR_MESSAGE = "tfs_error"
FLUSH_MESSAGE = "tfs_flush"
FLUSHED_MESSAGE = "tfs_flushed"


class Progress:
    """Per-process state of the current test: users done, whether the runner is stopping."""

    def __init__(self):
        self.done = 0
        self.stopping = False
        self.errors = []
        self.worker_reports = {}  # master: worker id -> (done, users)
        self.flushed = set()  # master: workers whose final report arrived
        self.lost = {}  # master: worker id -> index, for workers that stopped sending heartbeats
        self.watcher = None

    def user_done(self):
        self.done += 1


def per_environment(factory):
    """A function ``get(environment)`` returning the object ``factory()`` made for that
    environment on first use; ``get.objects`` maps environments to their objects."""
    objects = weakref.WeakKeyDictionary()

    def get(environment):
        obj = objects.get(environment)
        if obj is None:
            obj = objects[environment] = factory()
        return obj

    get.objects = objects
    return get


progress = per_environment(Progress)
"""The Progress of an environment."""


def end_run(environment, reason):
    """Quit (headless) or stop (web UI) the run from a fresh greenlet, logging ``reason`` once."""
    logger.info(reason)
    runner = environment.runner
    headless = bool(environment.parsed_options and environment.parsed_options.headless)
    gevent.spawn(runner.quit if headless else runner.stop)


def report_error(environment, message):
    """A fatal error in this process (bad data, bad option): log it once, tell the master, end the run."""
    p = progress(environment)
    if message in p.errors:
        return
    p.errors.append(message)
    logger.error("error: %s", message)
    environment.process_exit_code = 2
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message(ERROR_MESSAGE, {"message": message})
    elif runner is not None:
        end_run(environment, "stopping the test because of the error above")


def on_test_start(environment, iterations_limited):
    """Reset progress; start the watcher that ends the run when all users are done."""
    p = progress(environment)
    if p.watcher is not None:
        p.watcher.kill(block=False)
    p.done, p.stopping, p.worker_reports, p.lost = 0, False, {}, {}
    p.watcher = gevent.spawn(_watch, environment, p) if iterations_limited else None


def on_test_stopping(environment):
    """Mark the stop (later completions are left out); a master collects the workers' final reports."""
    p = progress(environment)
    p.stopping = True
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _collect_final_reports(runner, p)


def _collect_final_reports(runner, p):
    workers = [c.id for c in runner.clients.values() if c.state != STATE_MISSING]
    p.flushed = set()
    for worker in workers:
        runner.send_message(FLUSH_MESSAGE, None, client_id=worker)
    with gevent.Timeout(FLUSH_TIMEOUT_S, False):
        while not p.flushed.issuperset(w for w in workers if w in runner.clients):
            gevent.sleep(0.01)
    missing = [w for w in workers if w not in p.flushed]
    if missing:
        logger.warning("no final report from worker(s) %s within %g s; their last requests are not counted",
                       ", ".join(missing), FLUSH_TIMEOUT_S)


def register_worker_messages(environment):
    """Worker: answer the master's request for a final report."""
    runner = environment.runner

    def on_flush(environment, msg, **kwargs):
        progress(environment).stopping = True
        # the same report Locust's own periodic reporter sends (Locust's and our statistics)
        data = {}
        environment.events.report_to_master.fire(client_id=runner.client_id, data=data)
        runner.send_message("stats", data)
        runner.send_message(FLUSHED_MESSAGE, None)

    runner.register_message(FLUSH_MESSAGE, on_flush)


def _watch_workers(runner, p):
    """Master: log each worker that goes missing (no heartbeat), once, and remember it for the summary."""
    while True:
        gevent.sleep(1.0)
        for client in runner.clients.values():
            if client.state == STATE_MISSING and client.id not in p.lost:
                p.lost[client.id] = runner.get_worker_index(client.id)
                logger.warning("worker %s (index %s) lost: no heartbeat; the run goes on with %d worker(s); "
                               "its requests since its last report are not counted",
                               client.id, p.lost[client.id], runner.worker_count)


def _watch(environment, p):
    runner = environment.runner
    last_sent = None
    while True:
        gevent.sleep(WATCH_INTERVAL_S)
        if runner.state != STATE_RUNNING:
            continue
        if isinstance(runner, WorkerRunner):
            state = (p.done, runner.user_count)
            if state != last_sent:
                runner.send_message(DONE_MESSAGE, {"done": state[0], "users": state[1]})
                last_sent = state
        elif isinstance(runner, MasterRunner):
            if _all_workers_done(runner, p):
                end_run(environment, "all users on all workers finished their iterations; ending the run")
                return
        elif isinstance(runner, LocalRunner) and p.done >= runner.user_count > 0:
            end_run(environment, f"all {runner.user_count} users finished their iterations; ending the run")
            return


def _all_workers_done(runner, p):
    workers = [c for c in runner.clients.values() if c.state != STATE_MISSING]
    if not workers:
        return False
    for client in workers:
        done, users = p.worker_reports.get(client.id, (0, -1))
        if users != sum(client.user_classes_count.values()) or done < users:
            return False
    return True


def register_master_messages(environment):
    """Master: listen for the workers' done reports and fatal errors."""
    runner = environment.runner

    def on_done(environment, msg, **kwargs):
        progress(environment).worker_reports[msg.node_id] = (msg.data["done"], msg.data["users"])

    def on_error(environment, msg, **kwargs):
        message = f"worker {msg.node_id}: {msg.data['message']}"
        p = progress(environment)
        if message not in p.errors:
            p.errors.append(message)
            logger.error("error: %s", message)
            environment.process_exit_code = 2
            end_run(environment, "stopping the test because a worker cannot run it")

    def on_flushed(environment, msg, **kwargs):
        progress(environment).flushed.add(msg.node_id)

    gevent.spawn(_watch_workers, runner, progress(environment))
    runner.register_message(DONE_MESSAGE, on_done)
    runner.register_message(ERROR_MESSAGE, on_error)
    runner.register_message(FLUSHED_MESSAGE, on_flushed)
