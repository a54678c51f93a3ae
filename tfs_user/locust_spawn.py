"""A worker's spawn message: handled in milliseconds, and only once our ``init`` hook has run.

Locust 2.47's ``WorkerRunner.handle_message`` picks the plugin options out of each spawn message
with ``k not in argument_parser.default_args_dict()`` inside a comprehension over every option:
it builds Locust's whole argument parser once per option (about 11 ms each here, 56 of Locust's
and ours: 1.4-2.3 s per spawn message under load). That runs in the worker's message loop and
holds the process's event loop: no request is sent and no master message is read meanwhile. In
a ``--processes`` users sweep every step starts with a spawn message, so each worker sent none
of the step's warm-up and heard that the step's figures start 1-1.6 s late (seen: step 2's
warm-up 0 against 263 in one process). ``install()`` computes Locust's defaults once per process
(they depend on Locust's own arguments only) and hands out a copy.

A worker reads master messages from the moment it connects, but Locust fires ``init`` (where the
run object registers its listeners and ``--models`` makes its user classes) only after the
connection is made. A worker that joins a running test gets its spawn message at once (seen: 3 ms
after connecting), before ``init``: its ``test_start`` had no listener, the model classes the
message names did not exist, and Locust's ``start_worker`` died with ``KeyError: 'big'``. The
first worker of a test can meet the same race (the master checks for workers once a second).
``install()`` makes the worker's message loop wait for ``init`` (``init_done``) before any
message but the connection's ``ack``, and a spawn message naming a user class this worker does
not have ends in one error line (``error: ...``, exit code 2), not a traceback.
"""

import functools
import logging

import gevent
import gevent.event
from locust import argument_parser, events
from locust.runners import WorkerRunner

logger = logging.getLogger(__name__)


def install():
    """Make ``locust.argument_parser.default_args_dict`` build its parser once per process, and a worker
    handle master messages only after ``init`` (idempotent)."""
    original = argument_parser.default_args_dict
    if getattr(original, "tfs_once", False):
        return
    once = functools.lru_cache(maxsize=1)(original)

    @functools.wraps(original)
    def default_args_dict():
        return dict(once())

    default_args_dict.tfs_once = True
    argument_parser.default_args_dict = default_args_dict
    _hold_messages_until_init()
    _refuse_unknown_classes()


def _initialised(runner):
    event = runner.__dict__.get("tfs_initialised")
    if event is None:
        event = runner.tfs_initialised = gevent.event.Event()
    return event


def init_done(runner):
    """Locust's ``init`` has run for ``runner``'s environment: a worker handles the master's messages from now."""
    if isinstance(runner, WorkerRunner):
        _initialised(runner).set()


def _hold_messages_until_init():
    original = WorkerRunner.handle_message

    @functools.wraps(original)
    def handle_message(self, msg):
        # the ack completes the connection, which init waits for; an environment with events of its own (Locust as
        # a library) never fires our init listener, registered on Locust's global events
        if msg.type != "ack" and self.environment.events is events:
            _initialised(self).wait()
        return original(self, msg)

    WorkerRunner.handle_message = handle_message


def _refuse_unknown_classes():
    original = WorkerRunner.start_worker

    @functools.wraps(original)
    def start_worker(self, user_classes_count, **kwargs):
        known = self.environment.user_classes_by_name
        unknown = [name for name in user_classes_count if name not in known]
        if not unknown:
            return original(self, user_classes_count, **kwargs)
        run = getattr(self.environment, "tfs_run", None)
        if run is not None and run.control.errors:  # already said why (e.g. a --models this locustfile cannot make)
            return None
        message = (f"the master runs user classes {', '.join(sorted(user_classes_count))}; "
                   f"this worker's locustfile has {', '.join(sorted(known)) or 'none'}, not {', '.join(unknown)} "
                   "(start the worker with the master's locustfile)")
        if run is not None:
            run.control.report_error(message)
        else:
            logger.error("error: %s", message)
            self.environment.process_exit_code = 2
            gevent.spawn(self.quit)
        return None

    WorkerRunner.start_worker = start_worker
