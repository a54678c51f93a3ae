"""Load sweeps: parsing ``--sweep``/``--step-time``, the step plan, SLO verdicts per step, the best step.

A sweep runs the test as a series of steps of equal duration, each at one
operating point: a number of users (``users:1,2,4``; closed loop, or open loop
at a fixed ``--arrival-rate``) or a target arrival rate (``rate:100,200,400``
or ``rate:100-1000:100``; open loop with the test's users). The first
``warmup_s`` of each step are left out of its figures (ramp-up, queues filling).
With SLOs, the sweep stops after the first step that misses them (unless all
steps are asked for) and the answer is the highest FPS of a step within them.
The Locust load shape for users sweeps is in ``tfs_user.capacity.shape`` (this
module does not import Locust, whose gevent monkey-patching must come first).

Durations are seconds (float); rates req/s; step indexes start at 1.
"""

import re
from dataclasses import dataclass

from tfs_user.results.report import target_text
from tfs_user.results.verdict import apart

SWEEP_KINDS = ("users", "rate")
MAX_ARRIVAL_RATE = 100000.0
"""Highest target rate (--arrival-rate, a rate sweep's steps), req/s for the whole test: the dispatcher counts
every due slot it could not send, so a rate no fleet can send would hold the process (seen: 1e9 hung past
SIGTERM)."""
STEP_WARMUP_FRACTION = 0.2
"""Share of each step left out as warm-up ..."""
STEP_WARMUP_MAX_S = 2.0
"""... but at most this many seconds."""
MAX_STEPS = 1000

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
SWEEP_EXPECTED = "expected users:N,N,... or rate:R,R,... or rate:FROM-TO:STEP, e.g. users:1,2,4 or rate:100-1000:100"


class SweepError(ValueError):
    """A --sweep or --step-time value that cannot be used; one line naming the value and what was expected."""


def parse_duration(text, option="--step-time"):
    """'10s', '500ms', '1m', '2.5' (seconds) -> seconds (float > 0); SweepError otherwise."""
    match = _DURATION.match(str(text))
    if not match:
        raise SweepError(f"{option} {text!r} is not a duration; expected a number with ms, s or m, e.g. 500ms, 10s, 1m")
    seconds = float(match.group(1)) * _UNITS_S[match.group(2)]
    if seconds <= 0:
        raise SweepError(f"{option} {text!r} is not a duration > 0; expected e.g. 500ms, 10s, 1m")
    return seconds


@dataclass(frozen=True)
class Sweep:
    """What varies across steps: ``kind`` 'users' (ints >= 1) or 'rate' (req/s > 0), and its values in order."""

    kind: str
    values: tuple


def _number(text, kind, spec):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if kind == "users":
        if value != value or value != int(value) or value < 1:
            raise SweepError(f"--sweep {spec!r}: {text!r} is not a user count; expected an integer >= 1")
        return int(value)
    if value != value or value <= 0 or not value <= MAX_ARRIVAL_RATE:
        raise SweepError(f"--sweep {spec!r}: {text!r} is not a rate; expected requests/s > 0 and <= "
                         f"{MAX_ARRIVAL_RATE:g}")
    return int(value) if value == int(value) else value


def parse_sweep(text):
    """'users:1,2,4' | 'rate:100,200,400' | 'rate:100-1000:100' (inclusive range) -> Sweep; SweepError otherwise."""
    spec = str(text).strip()
    kind, sep, body = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in SWEEP_KINDS or not body.strip():
        raise SweepError(f"--sweep {spec!r} is not a sweep; {SWEEP_EXPECTED}")
    body = body.replace(" ", "")
    range_match = re.match(r"^([^,:]+)-([^,:]+):([^,:]+)$", body)
    if range_match:
        first, last, step = (_number(v, kind, spec) for v in range_match.groups())
        if last < first:
            raise SweepError(f"--sweep {spec!r}: range end {last:g} is below its start {first:g}; expected FROM <= TO")
        count = int((last - first) / step + 1e-9) + 1
        if count > MAX_STEPS:
            raise SweepError(f"--sweep {spec!r} has {count} steps; expected at most {MAX_STEPS}")
        values = [first + i * step for i in range(count)]
        values = [int(v) if float(v) == int(v) else round(v, 9) for v in values]
    else:
        if ":" in body or "-" in body:
            raise SweepError(f"--sweep {spec!r} is not a sweep; {SWEEP_EXPECTED}")
        values = [_number(v, kind, spec) for v in body.split(",")]
    return Sweep(kind, tuple(values))


@dataclass(frozen=True)
class Step:
    """One step of a sweep. ``rate`` is the target req/s of the whole test (0 = closed loop).

    ``start_s``/``end_s`` are offsets from the start of the sweep; the step's
    figures cover ``[start_s + warmup_s, end_s)``.
    """

    index: int
    users: int
    rate: float
    duration_s: float
    warmup_s: float
    start_s: float

    @property
    def end_s(self):
        return self.start_s + self.duration_s

    @property
    def measured_from_s(self):
        return self.start_s + self.warmup_s


STEP_GAP_S = 1.0
"""Between two steps: the tick that closes a step (its grace, its verdict) and the rest of that tick;
the next step starts at the next load-shape tick (Locust ticks once a second)."""


def step_warmup_s(duration_s):
    """Warm-up left out of a step of ``duration_s`` seconds: 20 % of it, at most 2 s."""
    return min(STEP_WARMUP_FRACTION * duration_s, STEP_WARMUP_MAX_S)


def plan(sweep, step_time_s, users=1, rate=0.0, warmup_s=None):
    """The steps of ``sweep``, each ``step_time_s`` long, ``STEP_GAP_S`` apart.

    A users sweep keeps ``rate`` (0 = closed loop); a rate sweep keeps ``users``
    (the bound on requests in flight). ``warmup_s`` defaults to ``step_warmup_s``.
    """
    if step_time_s <= 0:
        raise SweepError(f"--step-time {step_time_s!r} s is not valid; expected a duration > 0")
    warmup = step_warmup_s(step_time_s) if warmup_s is None else warmup_s
    if not 0 <= warmup < step_time_s:
        raise SweepError(f"step warm-up {warmup!r} s is not valid; expected 0 <= warm-up < --step-time {step_time_s:g} s")
    steps = []
    for i, value in enumerate(sweep.values):
        step_users, step_rate = (value, rate) if sweep.kind == "users" else (users, value)
        steps.append(Step(i + 1, int(step_users), float(step_rate), step_time_s, warmup, i * (step_time_s + STEP_GAP_S)))
    return steps


def step_at(steps, elapsed_s):
    """``(step, measured)`` for ``elapsed_s`` seconds into the sweep, ``(None, False)`` after the last step.

    ``measured`` is False during the step's warm-up.
    """
    for step in steps:
        if elapsed_s < step.end_s:
            return step, elapsed_s >= step.measured_from_s
    return None, False


@dataclass(frozen=True)
class Slo:
    """Per-step thresholds: p99 ms (0 = off), minimum FPS (0 = off), maximum fail ratio (1 = off)."""

    p99_ms: float = 0.0
    min_fps: float = 0.0
    max_fail_ratio: float = 1.0

    @property
    def given(self):
        return bool(self.p99_ms or self.min_fps or self.max_fail_ratio < 1)

    @classmethod
    def from_options(cls, options):
        return cls(float(options.slo_p99_ms), float(options.slo_min_fps), float(options.slo_max_fail_ratio))


def slo_misses(row, slo):
    """Lines naming the thresholds a step row misses (keys p99_ms, fps, fail_ratio; None = empty set).

    A step without a successful request has no p99/FPS and misses any p99/FPS threshold.
    """
    misses = []
    if slo.p99_ms and (row["p99_ms"] is None or row["p99_ms"] > slo.p99_ms):
        misses.append(f"p99 {_fmt(row['p99_ms'], slo.p99_ms)} ms > {slo.p99_ms:g} ms")
    if slo.min_fps and (row["fps"] is None or row["fps"] < slo.min_fps):
        misses.append(f"FPS {_fmt(row['fps'], slo.min_fps)} < {slo.min_fps:g}")
    if slo.max_fail_ratio < 1 and row["fail_ratio"] is not None and row["fail_ratio"] > slo.max_fail_ratio:
        misses.append(f"fail ratio {apart(row['fail_ratio'], slo.max_fail_ratio, 4)} > {slo.max_fail_ratio:g}")
    return misses


def _fmt(value, threshold=None):
    """3 decimals, more when a miss needs them to read apart from ``threshold``; n/a for an empty set."""
    if value is None:
        return "n/a"
    return f"{value:.3f}" if threshold is None else apart(value, threshold, 3)


def within_slo(row, slo):
    """True/False when SLOs are given, None otherwise."""
    return not slo_misses(row, slo) if slo.given else None


def best_step(rows):
    """The row with the highest FPS among rows whose ``within_slo`` is True (ties: the earlier step); None if none."""
    best = None
    for row in rows:
        if row.get("within_slo") and row["fps"] is not None and (best is None or row["fps"] > best["fps"]):
            best = row
    return best


def should_stop(row, slo, run_all=False):
    """Whether the sweep ends after this finished step: it missed a given SLO and not all steps were asked for."""
    return bool(slo.given and not run_all and slo_misses(row, slo))


def best_line(rows, slo):
    """The summary line naming the highest FPS within the SLO and its step (or saying none was)."""
    if not slo.given:
        return None
    best = best_step(rows)
    if best is None:
        return "Highest FPS within the SLO: none (no step met it)"
    what = f"{best['users']} user{'s' if best['users'] != 1 else ''}" + (f", target {target_text(best['target_rps'])} req/s" if best["target_rps"] else "")
    return (f"Highest FPS within the SLO: {best['fps']:.1f} frames/s at step {best['step']} ({what}; "
            f"p99 {_fmt(best['p99_ms'])} ms)")
