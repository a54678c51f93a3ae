"""Completion engine: gRPC's blocking waits run on native threads, results come back in batches.

Under ``grpc.experimental.gevent.init_gevent()`` every blocking wait of gRPC's
Python client (one ``grpc_completion_queue_next`` per unary call) is handed to
``cygrpc.g_gevent_threadpool.apply(func, args)``, by default gevent's hub
thread pool. That pool costs about 100 us of CPU per call here (a ThreadResult,
an AsyncResult, a queue item, a greenlet switch chain and one hub wake-up per
call). ``Engine`` takes its place with the least that still works:

- each waiting greenlet hands ``func`` to an idle native worker thread (real
  OS threads from ``gevent.monkey.get_original``, not greenlets), one thread
  per call in flight, created on demand and kept;
- the worker runs ``func`` (gRPC's C completion-queue wait, GIL released),
  notes ``time.perf_counter()`` right at completion, appends the result to one
  deque and calls ``send()`` on one gevent async watcher (thread-safe);
- the hub runs the watcher's callback once for every batch of completions and
  switches into each waiting greenlet in turn: many completions, one wake-up.

The gRPC call API is unchanged (``channel.unary_unary(...)(body, timeout=,
metadata=)`` blocks only its own greenlet, returns bytes, raises
``grpc.RpcError``); ``install()`` is the whole seam. ``last_completion()``
gives the completion time the worker noted for the calling greenlet's last
wait: latency timed to it excludes the time the greenlet waited for the hub
(other greenlets of the same batch running first).

Alternatives measured (gevent-patched process, [1,4] null model, CPU/request,
no Locust, same run; plain sync loop without gevent about 250 us): this engine
349-358 us at 1 greenlet, 316-336 at 8; gevent's pool 394-420 and 349-361;
futures with done-callbacks handed back through an async watcher 487-517 and
338-376 (gRPC starts a channel "spin thread" -- a greenlet under monkey-patching
-- whenever a channel goes from idle to busy, and each of its waits still goes
through the pool). grpc.aio on a native thread hangs: its poller thread is
started with ``threading.Thread``, i.e. as a greenlet of a hub that never runs.
Blocking sync calls made directly on native threads deadlock on gRPC's
gevent-patched locks. Hence only the waits move, not the calls.

Fork: worker threads do not survive ``os.fork`` (Locust ``--processes``); the
engine of a forked child starts afresh (``install()`` keys it by pid).
"""

import collections
import os
import time

from tfs_user.transport import gevent_grpc  # noqa: F401  (Locust patches and init_gevent come first)
from tfs_user.transport.wake_lead import WakeLead
from gevent import monkey
from gevent.hub import Waiter, get_hub
from greenlet import getcurrent
from grpc._cython import cygrpc

_start_native_thread = monkey.get_original("_thread", "start_new_thread")
_native_lock = monkey.get_original("_thread", "allocate_lock")
_native_sleep = monkey.get_original("time", "sleep")


class _Worker:
    """One native thread running one blocking ``func(*args)`` at a time."""

    __slots__ = ("engine", "wake", "job")

    def __init__(self, engine):
        self.engine = engine
        self.wake = _native_lock()
        self.wake.acquire()
        self.job = None
        _start_native_thread(self._run, ())

    def _run(self):
        engine = self.engine
        wake, done, idle, perf_counter = self.wake, engine._done, engine._idle, time.perf_counter
        send = engine._watcher.send
        while True:
            wake.acquire()
            func, args, waiter = self.job
            self.job = None
            try:
                item = (waiter, True, func(*args), perf_counter())
            except BaseException as e:  # noqa: BLE001  (handed to the waiting greenlet)
                item = (waiter, False, e, perf_counter())
            idle.append(self)
            done.append(item)
            send()


class Engine:
    """A drop-in for gevent's hub thread pool as gRPC uses it: ``apply(func, args)``.

    Must be created in the thread whose hub runs the greenlets (the main
    thread of a Locust process). Called from any other thread, or from the
    hub itself, ``apply`` runs ``func`` right there, as gevent's pool does.
    """

    def __init__(self):
        self.hub = get_hub()
        self.fallback = self.hub.threadpool
        self.pid = os.getpid()
        self._done = collections.deque()
        self._idle = []
        self._watcher = self.hub.loop.async_()
        self._watcher.start(self._deliver)
        self.threads = 0
        self.wakeups = 0
        self.completions = 0
        self.wake_lead = WakeLead()
        self._last = (None, 0.0)

    def apply(self, func, args=(), kwds=None):
        """Run ``func(*args, **kwds)`` on a native thread; block only the calling greenlet."""
        if kwds:
            args, func = (), _bind(func, args, kwds)
        current = getcurrent()
        if get_hub() is not self.hub or current is self.hub:
            return func(*args)
        worker = self._idle.pop() if self._idle else self._new_worker()
        waiter = Waiter(self.hub)
        worker.job = (func, args, waiter)
        worker.wake.release()
        ok, value, end = waiter.get()
        self._last = (current, end)
        if ok:
            return value
        raise value

    def last_completion(self):
        """``time.perf_counter()`` at which the calling greenlet's last ``apply`` completed on its worker, or None."""
        greenlet, end = self._last
        return end if greenlet is getcurrent() else None

    def _after_fork_in_child(self):
        # the workers did not survive the fork: give gRPC gevent's own (fork-aware) pool back
        if cygrpc.g_gevent_threadpool is self:
            cygrpc.g_gevent_threadpool = self.fallback

    def _new_worker(self):
        self.threads += 1
        return _Worker(self)

    def _deliver(self):
        """Hub callback: switch into every greenlet whose wait has completed (one wake-up, many completions)."""
        done = self._done
        self.wakeups += 1
        while done:
            waiter, ok, value, end = done.popleft()
            self.completions += 1
            waiter.switch((ok, value, end))


def _sleep_until(deadline):
    delay = deadline - time.perf_counter()
    if delay > 0:
        _native_sleep(delay)


def precise_sleep(seconds):
    """Block the calling greenlet for ``seconds`` and come back on time, never early: the wait runs on one
    of the engine's native threads (gevent's millisecond timers overshoot by about 0.7 ms here, which made
    every open-loop send late) and ends early by the learnt ``WakeLead``, since the OS sleep and the
    hand-off back through the hub add 0.1-0.3 ms; the greenlet spins through what is left, at most
    ``WAKE_LEAD_MAX_S``. In a process without an installed engine, ``gevent.sleep``.
    """
    deadline = time.perf_counter() + seconds
    engine = _engine
    if engine is None or engine.pid != os.getpid():
        import gevent

        gevent.sleep(seconds)
        return
    lead = engine.wake_lead
    target = deadline - lead.lead_s
    if target > time.perf_counter():
        engine.apply(_sleep_until, (target,))
        lead.learn(time.perf_counter() - target)
    while time.perf_counter() < deadline:  # at most lead_s: the last fraction the OS and the hub cannot hit
        pass


def _bind(func, args, kwds):
    return lambda: func(*args, **kwds)


_engine = None


def install():
    """Make gRPC's gevent support wait through this process's Engine; returns it (idempotent per process).

    Requires ``grpc.experimental.gevent.init_gevent()`` first (raises
    RuntimeError otherwise). Call it after Locust's fork, in the thread that
    runs the users (``on_start`` does).
    """
    global _engine
    if not cygrpc.g_gevent_activated:
        raise RuntimeError("grpc.experimental.gevent.init_gevent() has not run; the engine replaces its thread pool")
    if _engine is None or _engine.pid != os.getpid():
        _engine = Engine()
        cygrpc.g_gevent_threadpool = _engine
    return _engine


def end_time(start):
    """When the calling greenlet's last gRPC call completed, as ``time.perf_counter()`` seconds.

    The time the engine's worker noted right as gRPC's wait returned, if that
    wait began after ``start`` (the caller's own ``perf_counter()`` taken just
    before the call); else now (no engine, or the call failed before waiting).
    Timing a request as ``end_time(start) - start`` leaves out the time its
    greenlet then waited for its turn on the hub.
    """
    end = _engine.last_completion() if _engine is not None else None
    return end if end is not None and end >= start else time.perf_counter()


def _after_fork_in_child():
    global _engine
    if _engine is not None:
        _engine._after_fork_in_child()
        _engine = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def uninstall():
    """Give gRPC back gevent's hub thread pool (for tests and comparisons); the workers stay parked."""
    global _engine
    if _engine is not None and cygrpc.g_gevent_threadpool is _engine:
        cygrpc.g_gevent_threadpool = _engine.fallback
    _engine = None


def current():
    """The Engine installed in this process, or None."""
    return _engine if _engine is not None and _engine.pid == os.getpid() else None
