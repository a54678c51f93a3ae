"""The demo server's worker pool, which tells each call how long it waited for a free worker thread,
and names the calls that were cancelled while they waited.

grpc's Python server hands every incoming RPC to its thread pool as soon as the call arrives
(``grpc._server._handle_unary_unary``: ``thread_pool.submit(...)`` from the server's polling
thread), and the handler runs when a worker takes it. So the time from ``submit`` to the start on a
worker is the call's wait for one of the ``--workers`` threads: the demo server's queue. A call whose
client cancelled it (or whose deadline passed) while it waited never reaches the handler: grpc's task
finds it cancelled and returns; ``on_unserved`` hears of it, so the server can count it and its wait.
"""

import threading
import time
from concurrent import futures

_running = threading.local()


class TimedThreadPool(futures.ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks can read when they were submitted and when they started (``arrival()``).

    ``on_unserved(method, queue_s, deadline)``: called on the worker for each call to one of ``methods``
    (full gRPC method names, str) whose task ended without the handler calling ``arrival()``: it was
    cancelled before the handler could run. ``queue_s`` is its wait for the worker (seconds), ``deadline`` the
    client's deadline (``time.time()`` seconds) or None.
    """

    def __init__(self, *args, methods=(), on_unserved=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._methods, self._on_unserved = frozenset(methods), on_unserved

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_timed, time.perf_counter(), self._call_of(args), self._on_unserved, fn, args, kwargs)

    def _call_of(self, args):
        """(method, deadline) of the gRPC call a task serves when its method is one of ``methods``, else None.
        grpc passes the call's event (``call_details``: method bytes, deadline) among the task's arguments."""
        if self._on_unserved is None:
            return None
        for arg in args:
            details = getattr(arg, "call_details", None)
            if details is not None:
                method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
                deadline = getattr(details, "deadline", None)
                return (method, deadline) if method in self._methods else None
        return None


def _timed(submitted, call, on_unserved, fn, args, kwargs):
    _running.times = (submitted, time.perf_counter())
    _running.served = False
    try:
        return fn(*args, **kwargs)
    finally:
        served, queue_s = _running.served, _running.times[1] - submitted
        del _running.times  # the worker's next task has times of its own
        if call is not None and not served:
            on_unserved(call[0], queue_s, call[1])


def arrival():
    """``(submitted, started)``: ``time.perf_counter()`` seconds when the task running on this thread was
    submitted to a TimedThreadPool and when it started here; the handler calls it once (the call is then
    served). Outside such a task (a handler called directly), both are now: no wait."""
    times = getattr(_running, "times", None)
    if times is None:
        now = time.perf_counter()
        return now, now
    _running.served = True
    return times
