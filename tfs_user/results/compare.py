"""Two runs' JSON summaries compared: per figure better / same / worse, with the range the noise allows.

The change of a figure is the new run's whole-run value against the baseline's (both exact, from their
HDR histograms): ``+12.0 %`` for a latency or FPS, percentage points for the fail ratio. Whether it is
more than noise is judged from the runs' windows (``tfs_user.results.windows``, batch means): each
full window gives one value of the figure, and the spread of those values in each run gives a
Welch/Student t interval of the change (on the log scale for latency and FPS, so that it is a ratio),
at ``CONFIDENCE``. Requests within a run are not independent, windows nearly are: an interval over n
requests would be far too narrow and cry wolf.

Windows catch the noise within a run, not the drift between two runs at different times (another
job on the machine, a different CPU frequency): each figure also has a minimum threshold in %
(``FIGURES``, options ``--baseline-p50`` ...; ``off`` leaves a figure out). The verdict allows the
larger of the two: ``allowed = max(interval half-width, threshold)``; a change beyond ``+allowed`` in
the bad direction is "worse", beyond it in the good direction "better", else "same" (within noise).
A figure with fewer than ``MIN_WINDOWS`` full windows in either run cannot be judged: "unknown".
"""

import math
from dataclasses import dataclass, field
from statistics import NormalDist, fmean, variance

from tfs_user.results.summary_keys import FORMAT_NAME, FORMAT_VERSION

WORSE, SAME, BETTER, UNKNOWN = "worse", "same", "better", "unknown"
CONFIDENCE = 0.95
"""Two-sided confidence of the interval of the change."""
MIN_WINDOWS = 2


@dataclass(frozen=True)
class Figure:
    """One compared figure: ``name`` (verdict key, e.g. ``p99``), ``key`` in a summary row and a window,
    ``label`` as printed, ``unit``, ``default`` threshold (% or, for the fail ratio, percentage points),
    ``higher_is_worse``, ``relative`` (a ratio; else a difference in percentage points)."""

    name: str
    key: str
    label: str
    unit: str
    default: float
    higher_is_worse: bool = True
    relative: bool = True

    @property
    def option(self):
        return f"--baseline-{self.name}"


FIGURES = (
    Figure("p50", "p50_ms", "p50", "ms", 4.0),
    Figure("p90", "p90_ms", "p90", "ms", 8.0),
    Figure("p99", "p99_ms", "p99", "ms", 20.0),
    Figure("fps", "fps", "FPS", "frames/s", 5.0, higher_is_worse=False),
    Figure("fail", "fail_ratio", "fail ratio", "%", 1.0, relative=False),
)
BY_NAME = {f.name: f for f in FIGURES}
BEST_FPS = Figure("best_fps", "fps", "highest FPS within the SLO", "frames/s", 5.0, higher_is_worse=False)
BEST_FPS_NO_SLO = Figure("best_fps", "fps", "highest FPS of any step", "frames/s", 5.0, higher_is_worse=False)
"""A sweep's extra figure (without an SLO: the highest FPS of any step); its threshold is FPS's."""


def best_step(doc, steps):
    """The step index of a sweep's highest FPS within the SLO (``best_step``); without an SLO (no step judged),
    the step with the highest FPS; None when neither."""
    if doc.get("best_step") is not None:
        return doc["best_step"] if doc["best_step"] in steps else None
    if any(s.get("within_slo") is not None for s in steps.values()):
        return None  # an SLO was given and no step met it
    fps = {index: s["fps"] for index, s in steps.items() if s.get("fps") is not None}
    return max(fps, key=fps.get) if fps else None

SAME_LOAD = ("protocol", "transport", "model", "batch_size", "users", "arrival_rate", "sweep", "step_time")
"""``run`` keys that must be equal: two runs with another of these measure different things."""
NOTICE_KEYS = ("tool_version", "host", "cpu_count", "processes", "workers")
"""``run`` keys that may differ: a notice, not a refusal."""


class CompareError(ValueError):
    """Two summaries that cannot be compared (one line: which value, what was expected)."""


@dataclass
class Row:
    """One verdict: ``figure`` (a Figure name or ``best_fps``), ``step`` (None = the whole run), ``base`` and
    ``new`` values (ms, frames/s or a ratio 0..1), ``change`` (% or points), ``noise`` (half-width of the
    interval, same unit; None when unknown), ``threshold``, ``allowed`` and ``verdict``."""

    figure: str
    label: str
    unit: str
    step: object
    base: object
    new: object
    change: object
    noise: object
    threshold: float
    allowed: object
    verdict: str
    relative: bool = True

    def value_text(self, value):
        if value is None:
            return "-"
        return f"{100 * value:.2f} %" if not self.relative else f"{value:.2f} {self.unit}"

    def change_text(self, value, sign=True):
        unit = " %" if self.relative else " points"
        return "-" if value is None else (f"{value:+.1f}" if sign else f"{value:.1f}") + unit

    def line(self):
        """``Worse than baseline: p99 12.40 ms vs 10.10 ms (+22.8 %, noise allows +/-6.1 %)``."""
        where = f"step {self.step} " if self.step is not None else ""
        head = {WORSE: "Worse than baseline", BETTER: "Better than baseline", SAME: "Same as baseline",
                UNKNOWN: "Not judged against baseline (too few full windows in a run)"}[self.verdict]
        return (f"{head}: {where}{self.label} {self.value_text(self.new)} vs {self.value_text(self.base)} "
                f"({self.change_text(self.change)}, noise allows +/-{self.change_text(self.allowed, sign=False)})")

    def to_json(self):
        return {k: getattr(self, k) for k in ("figure", "step", "base", "new", "change", "noise", "threshold",
                                              "allowed", "verdict")}


@dataclass
class Comparison:
    """``rows`` (Row, the whole run first, then each sweep step's), ``notices`` (lines: another tool
    version, host ...)."""

    rows: list
    notices: list = field(default_factory=list)

    @property
    def worse(self):
        return [row for row in self.rows if row.verdict == WORSE]

    def worse_lines(self):
        return [row.line() for row in self.worse]

    def to_json(self):
        return {"confidence": CONFIDENCE, "rows": [row.to_json() for row in self.rows], "notices": self.notices,
                "worse": self.worse_lines()}


def t_quantile(q, df):
    """Student t quantile (Abramowitz & Stegun 26.7.5 from the normal one; within 1 % for df >= 3)."""
    z = NormalDist().inv_cdf(q)
    if df is None or df > 1e6:
        return z
    df = max(df, 1.0)
    z2 = z * z
    return (z + (z2 + 1) * z / (4 * df) + ((5 * z2 + 16) * z2 + 3) * z / (96 * df ** 2)
            + (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / (384 * df ** 3)
            + ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / (92160 * df ** 4))


def window_values(row, figure):
    """The full windows' values of ``figure`` in a summary row or step (log values for a relative figure)."""
    values = [w.get(figure.key) for w in (row.get("windows") or {}).get("rows", []) if w.get("full")]
    values = [v for v in values if v is not None]
    if figure.relative:
        return [math.log(v) for v in values if v > 0]
    return [100.0 * v for v in values]  # points


def half_width(base, new):
    """Half-width of the CONFIDENCE interval of mean(new) - mean(base) (Welch); None with too few values."""
    if len(base) < MIN_WINDOWS or len(new) < MIN_WINDOWS:
        return None
    vb, vn = variance(base) / len(base), variance(new) / len(new)
    se2 = vb + vn
    if se2 == 0:
        return 0.0
    df = se2 ** 2 / (vb ** 2 / (len(base) - 1) + vn ** 2 / (len(new) - 1))
    return t_quantile(0.5 + CONFIDENCE / 2, df) * math.sqrt(se2)


def judge(figure, base_row, new_row, threshold, step=None, name=None):
    """The Row of one figure between two summary rows (or steps); ``threshold`` in % (points), None = off."""
    base, new = base_row.get(figure.key), new_row.get(figure.key)
    change = noise = allowed = None
    verdict = UNKNOWN
    if base is not None and new is not None and (not figure.relative or base > 0):
        change = 100.0 * (new / base - 1) if figure.relative else 100.0 * (new - base)
        half = half_width(window_values(base_row, figure), window_values(new_row, figure))
        if half is not None:
            noise = 100.0 * (math.exp(half) - 1) if figure.relative else half
            allowed = max(noise, threshold)
            bad = change if figure.higher_is_worse else -change
            verdict = WORSE if bad > allowed else BETTER if -bad > allowed else SAME
    return Row(name or figure.name, figure.label, figure.unit, step, base, new, change, noise, threshold, allowed,
               verdict, figure.relative)


def check_document(doc, label):
    """Raise CompareError unless ``doc`` is a JSON summary this version can compare; ``label`` names it."""
    if not isinstance(doc, dict) or "rows" not in doc:
        raise CompareError(f"{label} is not a tfs-locust JSON summary (no 'rows'); expected a file "
                           "written by --json-summary")
    fmt = doc.get("format")
    if not isinstance(fmt, dict) or fmt.get("name") != FORMAT_NAME:
        raise CompareError(f"{label} is a JSON summary from before baseline comparisons (no histograms or windows); "
                           "expected one written by this version: run the baseline again")
    if fmt.get("version") != FORMAT_VERSION:
        raise CompareError(f"{label} has summary format version {fmt.get('version')!r}; expected {FORMAT_VERSION}")


def check_same_run(base_run, new_run):
    """Raise CompareError when the runs measured different things (``SAME_LOAD``); return notice lines for the
    ``NOTICE_KEYS`` that differ."""
    for key in SAME_LOAD:
        if base_run.get(key) != new_run.get(key):
            raise CompareError(f"cannot compare: {key} is {new_run.get(key)!r} in this run but {base_run.get(key)!r} "
                               f"in the baseline; expected the same {key} (compare runs of the same test)")
    return [f"Notice: {key} differs: {new_run.get(key)!r} here, {base_run.get(key)!r} in the baseline"
            for key in NOTICE_KEYS if base_run.get(key) != new_run.get(key)]


def parse_threshold(text):
    """A threshold option's text: a number >= 0 (% or, for the fail ratio, points) or ``off``; returns float
    or None (off). Raises ValueError naming the text."""
    text = str(text).strip().lower()
    if text == "off":
        return None
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise ValueError(f"{text!r} is not a threshold; expected a number of per cent >= 0 or 'off'") from None
    if not value >= 0:
        raise ValueError(f"{text!r} is out of range; expected a number of per cent >= 0 or 'off'")
    return value


def thresholds_of(given=None):
    """{figure name: threshold or None (off)}: the defaults updated by ``given``."""
    out = {f.name: f.default for f in FIGURES}
    out.update(given or {})
    return out


def compare(base_doc, new_doc, thresholds=None):
    """Comparison of two JSON summaries (dicts): the Aggregated row's figures, then each sweep step present in
    both and the highest FPS within the SLO. ``thresholds``: {figure name: % or None}. Raises CompareError."""
    check_document(base_doc, "the baseline")
    check_document(new_doc, "the new run")
    notices = check_same_run(base_doc.get("run", {}), new_doc.get("run", {}))
    for label, doc in (("the baseline", base_doc), ("this run", new_doc)):
        if doc.get("loop_lag_warning"):
            notices.append(f"Notice: in {label} the load generator was a bottleneck (event-loop lag p99 "
                           f"{doc.get('loop_lag_p99_ms', 0):.3f} ms): its latencies include that wait, so does the change")
    limits = thresholds_of(thresholds)
    figures = [f for f in FIGURES if limits[f.name] is not None]
    rows = [judge(f, base_doc["rows"][-1], new_doc["rows"][-1], limits[f.name]) for f in figures]
    base_steps = {s["step"]: s for s in base_doc.get("steps") or []}
    new_steps = {s["step"]: s for s in new_doc.get("steps") or []}
    for index in sorted(set(base_steps) & set(new_steps)):
        rows += [judge(f, base_steps[index], new_steps[index], limits[f.name], step=index) for f in figures]
    if base_steps or new_steps:
        missing = sorted(set(base_steps) ^ set(new_steps))
        if missing:
            notices.append(f"Notice: step{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} ran in only "
                           "one of the two runs (a sweep ends at the first step that misses its SLO)")
        best_base, best_new = best_step(base_doc, base_steps), best_step(new_doc, new_steps)
        if limits["fps"] is not None and best_base is not None and best_new is not None:
            figure = BEST_FPS if base_doc.get("best_step") is not None else BEST_FPS_NO_SLO
            rows.append(judge(figure, base_steps[best_base], new_steps[best_new], limits["fps"], name="best_fps"))
    return Comparison(rows, notices)


def format_table(comparison):
    """The console table: one line per figure (and step), then the notices."""
    lines = ["", f"Compared with the baseline (change of each figure; noise = half-width of its {100 * CONFIDENCE:g} % "
             "interval from the runs' windows; allowed = the larger of noise and threshold)",
             f"{'step':>5} {'figure':<28}{'baseline':>18}{'this run':>18}{'change':>13}{'noise':>10}{'threshold':>11}"
             f"{'allowed':>10}  verdict"]
    for row in comparison.rows:
        def pct(value):
            return "-" if value is None else f"{value:.1f}"
        lines.append(f"{'' if row.step is None else row.step:>5} {row.label:<28}{row.value_text(row.base):>18}"
                     f"{row.value_text(row.new):>18}{row.change_text(row.change):>13}{pct(row.noise):>10}"
                     f"{pct(row.threshold):>11}{pct(row.allowed):>10}  {row.verdict}")
    return "\n".join(lines + comparison.notices)
