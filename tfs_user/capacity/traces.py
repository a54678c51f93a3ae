"""Recorded traces: each request's send time read from a file, for an open loop that replays them.

A trace file holds one send time per request, in seconds from the trace's start, ascending:

- plain text: one number per line (blank lines and ``#`` comments skipped), as perf_analyzer's
  ``--request-intervals`` holds gaps and aiperf's ``--fixed-schedule`` holds timestamps;
- CSV with a header: a ``time`` column (seconds) and optional ``model`` and ``batch_size``
  columns (which model and batch size that request uses);
- either one gzip-compressed (read by its magic bytes, whatever its name).

``read_trace`` checks it whole before any user starts (``TraceError``: one line naming the file, the
line and what was expected). ``TraceIntervals`` turns the times into the gaps an open-loop schedule
consumes (``next()``, seconds; ``inf`` once the trace is over), divided by a speed-up factor, and,
when asked to loop, starts again one mean gap after the last request.

Plain numpy-free Python; imports neither gRPC nor Locust.
"""

import csv
import gzip
import io
import math
from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"


class TraceError(ValueError):
    """A trace that cannot be replayed; one line naming the file, the line and what was expected."""


@dataclass(frozen=True)
class Trace:
    """Send times (s from the trace's start, ascending, >= 0) and, per request, model and batch size
    when the file gives them (else empty tuples)."""

    times: tuple
    models: tuple = ()
    batch_sizes: tuple = ()
    file_lines: tuple = ()
    """Each request's line number in the file (1-based), for messages naming it."""

    @property
    def duration_s(self):
        """First to last send time, seconds."""
        return self.times[-1] - self.times[0]


def _text(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TraceError(f"trace {path!r} cannot be read ({e.strerror}); expected a file of send times") from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise TraceError(f"trace {path!r} is not a valid gzip file ({e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TraceError(f"trace {path!r} is not text; expected send times, one per line, or a CSV") from None


def _number(text, path, line, what="time", expected="seconds from the trace's start"):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise TraceError(f"trace {path!r} line {line}: {what} {text!r} is not a number; expected {expected}")
    return value


def read_trace(path):
    """The Trace in ``path`` (plain lines or CSV, optionally gzip). Raises TraceError for an unreadable or
    empty file, a value that is not a number, a negative time, a time before the one above it, a CSV without
    a ``time`` column, or a batch size that is not an integer >= 1."""
    lines = _text(path).splitlines()
    rows = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise TraceError(f"trace {path!r} is empty; expected send times in seconds, one per line (or a CSV with a "
                         "time column)")
    first = rows[0][1]
    models, sizes = [], []
    if any(c.isalpha() for c in first.replace("e", "").replace("E", "")):  # a CSV header
        header = [h.strip().lower() for h in next(csv.reader([first]))]
        if "time" not in header:
            raise TraceError(f"trace {path!r}: CSV header {first!r} has no time column; expected time[,model]"
                             "[,batch_size]")
        records = [(n, next(csv.reader(io.StringIO(text)))) for n, text in rows[1:]]
        at = {name: header.index(name) for name in ("time", "model", "batch_size") if name in header}
        times = []
        for n, cells in records:
            if len(cells) != len(header):
                raise TraceError(f"trace {path!r} line {n}: {len(cells)} fields; expected {len(header)} ({first})")
            times.append((n, _number(cells[at["time"]], path, n)))
            if "model" in at:
                models.append(cells[at["model"]].strip())
            if "batch_size" in at:
                size = _number(cells[at["batch_size"]], path, n, "batch size", "an integer >= 1 (frames per request)")
                if size < 1 or size != int(size):
                    raise TraceError(f"trace {path!r} line {n}: batch size {cells[at['batch_size']]!r} is not an "
                                     "integer >= 1")
                sizes.append(int(size))
        if not times:
            raise TraceError(f"trace {path!r} has a header and no requests; expected one line per request")
    else:
        times = [(n, _number(text, path, n)) for n, text in rows]
    previous = 0.0
    for n, value in times:
        if value < 0:
            raise TraceError(f"trace {path!r} line {n}: time {value:g} is negative; expected seconds >= 0 from the "
                             "trace's start")
        if value < previous:
            raise TraceError(f"trace {path!r} line {n}: time {value:g} is before the line above's {previous:g}; "
                             "expected ascending send times (sort the file)")
        previous = value
    return Trace(tuple(v for _, v in times), tuple(models), tuple(sizes), tuple(n for n, _ in times))


class TraceIntervals:
    """The gaps between a trace's send times, for an open-loop schedule (the interface of the open loop's
    inter-arrival source: ``next()`` -> seconds).

    The first gap is the first send time (a trace that starts at 0 sends at once); all are divided by
    ``speedup`` (> 0). At the end: ``inf`` (no more requests: the replay is over), or with ``loop`` the trace
    again, its first request one mean gap after the last. ``index`` is the trace line of the request the last
    gap led to (its model and batch size). ``share=(i, n)``: this process sends every n-th line from line i
    (0-based; n processes with i = 0..n-1 send the trace exactly once between them); a loop keeps the whole
    trace's period, so the shares stay interleaved. ``lines`` (0-based, ascending) narrows the trace to those
    lines first (one model's, ``tfs_user.capacity.lanes``); ``share`` then takes every n-th of them.
    """

    arrival = "trace"
    """The open loop's name for this kind of arrivals (the dispatcher asks ``next()`` for every gap)."""
    replay = True
    """A replay keeps its schedule when the process's share of the rate changes (users spawning)."""

    def __init__(self, trace, speedup=1.0, loop=False, share=(0, 1), lines=None):
        if not speedup > 0 or not math.isfinite(speedup):
            raise TraceError(f"trace speed-up {speedup!r} is not valid; expected a number > 0, e.g. 10")
        part, parts = share
        if not 0 <= part < parts:
            raise TraceError(f"trace share {part} of {parts} is not valid; expected 0 <= index < count")
        self.trace, self.speedup, self.loop = trace, float(speedup), bool(loop)
        times = trace.times
        self._wrap_gap = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 1.0
        self._period = times[-1] + self._wrap_gap  # a loop starts the whole trace again after this long
        chosen = range(len(times)) if lines is None else lines
        self.lines = tuple(chosen[part::parts])
        """The trace lines (0-based) this process sends: every ``parts``-th from ``part`` (``share``) of ``lines``,
        so the processes' shares together are those lines exactly."""
        self._times = [times[i] for i in self.lines]
        self._position = -1
        self.index = -1
        self.rate = len(times) / max(times[-1], self._wrap_gap) * self.speedup * len(self.lines) / len(times)
        """Mean rate of this process's replay, req/s (what the open loop's figures call the target)."""

    @property
    def last_s(self):
        """When this share's last request is due, seconds from the replay's start (inf when looping or empty)."""
        return self._times[-1] / self.speedup if self._times and not self.loop else float("inf")

    @property
    def sends(self):
        """How many requests this process's share sends per pass of the trace."""
        return len(self.lines)

    def next(self):
        """The gap to the next request, seconds (``inf`` once a trace without loop is over)."""
        times = self._times
        if not times:
            return math.inf
        self._position += 1
        if self._position == 0:
            self.index = self.lines[0]
            return times[0] / self.speedup
        if self._position == len(times):
            if not self.loop:
                self._position -= 1
                return math.inf
            self._position = 0
            self.index = self.lines[0]
            return (self._period - times[-1] + times[0]) / self.speedup
        self.index = self.lines[self._position]
        return (times[self._position] - times[self._position - 1]) / self.speedup
