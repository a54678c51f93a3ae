"""The demo server's worker pool, which tells each call how long it waited for a free worker thread.

grpc's Python server hands every incoming RPC to its thread pool as soon as the call arrives
(``grpc._server._handle_unary_unary``: ``thread_pool.submit(...)`` from the server's polling
thread), and the handler runs when a worker takes it. So the time from ``submit`` to the start on a
worker is the call's wait for one of the ``--workers`` threads: the demo server's queue.
"""

import threading
import time
from concurrent import futures

_running = threading.local()


class TimedThreadPool(futures.ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks can read when they were submitted and when they started (``arrival()``)."""

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_timed, time.perf_counter(), fn, args, kwargs)


def _timed(submitted, fn, args, kwargs):
    _running.times = (submitted, time.perf_counter())
    try:
        return fn(*args, **kwargs)
    finally:
        del _running.times  # the worker's next task has times of its own


def arrival():
    """``(submitted, started)``: ``time.perf_counter()`` seconds when the task running on this thread was
    submitted to a TimedThreadPool and when it started here. Outside such a task (a handler called
    directly), both are now: no wait."""
    times = getattr(_running, "times", None)
    if times is None:
        now = time.perf_counter()
        return now, now
    return times
