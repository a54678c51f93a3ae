"""One start moment for a trace replayed by several workers (master/worker runs, ``--processes N``).

Each worker sends every N-th line of the trace (``traces.TraceIntervals`` ``share``). Before, each
worker's schedule began when its own first user asked for a slot, so a worker that got its users
later (Locust hands users out at ``--spawn-rate``: with ``-u 2 -r 1`` the second worker's user
starts 1 s after the first's) or that started up slower sent its share shifted by that much, and
the merged sequence was not the trace. Now:

- master (``choose``, a greenlet from ``test_start``): once every worker reported its users running
  (Locust's master counts their ``spawning_complete`` messages; at most ``WAIT_USERS_S``), it picks
  one wall-clock moment ``START_LEAD_S`` ahead and sends it with each worker's load message;
- worker (``begin``): its first user waits for that moment and its schedule's time 0 is that moment (with
  ``--models``, every model's schedule of the worker, ``schedules.open_lanes``: all lanes start together)
  (``time.time()`` mapped to its own ``perf_counter``); a worker that gets there after the moment
  starts at the moment all the same: its overdue sends go out at once, counted as late sends;
- worker (``first_send``): measures where its share really began: its first send's wall-clock time
  minus the moment plus that line's trace time (whichever model's line it was: ``start_offset_ms``), and how long before the moment
  its first user was ready (``ready_ms``, negative = before: the shift there would have been without
  a common moment); the master prints them (``line``) and puts them in the JSON (``summary``).

Clocks: the moment is wall-clock time. Workers on the master's host share its clock; on other hosts
the clocks must be synced (NTP, chrony: typically well under 1 ms apart on a LAN): a worker's
offsets are measured on its own clock, so a clock difference between hosts shifts its share without
showing in them.

The Poisson / constant open loop does not use a common moment: independent Poisson streams merge
into a Poisson stream whatever their start, each worker's share restarts its schedule whenever its
users change, and constant streams started together would send in lockstep (N requests at once).
"""

import time

import gevent

TRACE_START_MESSAGE = "tfs_trace_start"
"""Worker -> master: where this worker's share of the trace began (``first_send``)."""
START_LEAD_S = 0.5
"""Master: the moment is this long after every worker's users run (time for the load message to reach them)."""
WAIT_USERS_S = 15.0
"""Master: choose the moment after this long even if not every worker reported its users."""
POLL_S = 0.05


def choose(c, send_loads):
    """Master greenlet: wait for every worker's users, set ``c.trace_start`` (wall-clock s) and send it
    (``send_loads(c)``)."""
    runner = c.environment.runner
    deadline = time.monotonic() + WAIT_USERS_S
    # spawning_completed: Locust's master set it once the users ran; a per-model trace's lines are split then
    # (``step_clock.send_loads``), so the moment and each worker's lines go out in one message
    while time.monotonic() < deadline and not (runner.user_count >= runner.target_user_count > 0
                                               and getattr(runner, "spawning_completed", True)):
        gevent.sleep(POLL_S)
    c.trace_start = time.time() + START_LEAD_S
    send_loads(c)


def needs_moment(c, worker):
    """Whether this process's trace schedule waits for the master's moment (a worker replaying a trace)."""
    return worker and c.config.trace is not None


def start_of(c):
    """Worker: the master's moment as this process's ``perf_counter`` s (after ``c.load.start_at`` is known)."""
    return time.perf_counter() + (c.load.start_at - time.time())


def ready(c):
    """Worker: note when its first user asked for a slot (wall-clock s), once per test."""
    if c.trace_ready is None:
        c.trace_ready = time.time()


def first_send(c, slot, worker_index):
    """Worker: after its first trace send, tell the master where its share began: ``start_offset_ms`` = the send's
    wall-clock time minus (the moment + that slot's line's trace time / speed-up), ``ready_ms`` = when its first
    user was ready minus the moment."""
    if c.trace_reported or c.load.start_at is None:
        return
    c.trace_reported = True
    sent_wall = time.time() - (time.perf_counter() - slot.sent)
    line = slot.line if slot.line is not None else c.load.share[0]  # the trace line it replays (its model's lane)
    due = c.load.start_at + c.config.trace.times[line] / c.config.trace_speedup
    ready_at = c.trace_ready if c.trace_ready is not None else sent_wall
    c.environment.runner.send_message(TRACE_START_MESSAGE, {
        "worker_index": worker_index, "start_offset_ms": (sent_wall - due) * 1000.0,
        "ready_ms": (ready_at - c.load.start_at) * 1000.0})


def on_message(c, msg, **kwargs):
    """Master: keep a worker's start figures by its index."""
    data = msg.data
    c.trace_starts[data["worker_index"]] = (data["ready_ms"], data["start_offset_ms"])


def summary(c):
    """Master: the JSON's ``open_loop.trace_start``: ``workers`` [{worker_index, ready_ms, start_offset_ms}] by
    index, ``spread_ms`` (largest minus smallest start offset; None with fewer than 2); None when the master
    chose no moment (no trace, or a local run)."""
    if c.trace_start is None:
        return None
    workers = [{"worker_index": index, "ready_ms": round(ready_ms, 3), "start_offset_ms": round(offset, 3)}
               for index, (ready_ms, offset) in sorted(c.trace_starts.items())]
    offsets = [w["start_offset_ms"] for w in workers]
    return {"workers": workers, "spread_ms": round(max(offsets) - min(offsets), 3) if len(offsets) > 1 else None}


def line(s):
    """The console line of ``summary``."""
    if not s["workers"]:
        return "Trace start: one moment for every worker; no worker sent a request of the trace"
    offsets = ", ".join(f"worker {w['worker_index']} {w['start_offset_ms']:+.3f} ms" for w in s["workers"])
    readies = ", ".join(f"worker {w['worker_index']} {abs(w['ready_ms']):.1f} ms {'before' if w['ready_ms'] <= 0 else 'after'}"
                        for w in s["workers"])
    spread = f" (spread {s['spread_ms']:.3f} ms)" if s["spread_ms"] is not None else ""
    return (f"Trace start: one moment for every worker; first send after it (minus its trace time): {offsets}{spread}; "
            f"first user ready: {readies}")
