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

A baseline of several runs (``tfs_user.results.baseline_runs``) also measures that drift: the spread of
its runs' figures gives a prediction interval for one more run, and ``allowed = max(threshold, window
noise, between-run noise)``. One baseline run is compared exactly as above.
"""

import math
from dataclasses import dataclass, field
from statistics import NormalDist, fmean, variance

from tfs_user.results.baseline_runs import baseline_of, prediction_half_width, run_values
from tfs_user.results.comparable import (NOTICE_KEYS, SAME_LOAD, CompareError, check_document,  # noqa: F401 (the API)
                                         check_runs, check_same_run)

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

@dataclass
class Row:
    """One verdict: ``figure`` (a Figure name or ``best_fps``), ``step`` (None = the whole run), ``base`` and
    ``new`` values (ms, frames/s or a ratio 0..1), ``change`` (% or points), ``noise`` (the half-width that
    counts, the larger of ``noise_windows``, the windows' interval, and ``noise_runs``, the baseline runs'
    prediction interval, None with one baseline run; same unit; None when unknown), ``threshold``,
    ``allowed``, ``verdict`` and ``runs`` (baseline runs)."""

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
    noise_windows: object = None
    noise_runs: object = None
    runs: int = 1

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
        which = "" if self.runs < 2 else (f"; between runs +/-{self.change_text(self.noise_runs, sign=False)}, "
                                          f"within runs +/-{self.change_text(self.noise_windows, sign=False)}")
        return (f"{head}: {where}{self.label} {self.value_text(self.new)} vs {self.value_text(self.base)} "
                f"({self.change_text(self.change)}, noise allows +/-{self.change_text(self.allowed, sign=False)}{which})")

    def to_json(self):
        return {k: getattr(self, k) for k in ("figure", "step", "base", "new", "change", "noise", "noise_windows",
                                              "noise_runs", "threshold", "allowed", "verdict")}


@dataclass
class Comparison:
    """``rows`` (Row, the whole run first, then each sweep step's), ``notices`` (lines: another tool
    version, host ...), ``runs`` (how many runs the baseline has)."""

    rows: list
    notices: list = field(default_factory=list)
    runs: int = 1

    @property
    def worse(self):
        return [row for row in self.rows if row.verdict == WORSE]

    def worse_lines(self):
        return [row.line() for row in self.worse]

    def to_json(self):
        return {"confidence": CONFIDENCE, "baseline_runs": self.runs, "rows": [row.to_json() for row in self.rows],
                "notices": self.notices, "worse": self.worse_lines()}


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


def judge(figure, base_row, new_row, threshold, step=None, name=None, runs=None):
    """The Row of one figure between two summary rows (or steps); ``threshold`` in % (points), None = off;
    ``runs``: a baseline of several runs' own rows (``base_row`` is then their merged row), None for one."""
    base, new = base_row.get(figure.key), new_row.get(figure.key)
    change = noise = allowed = noise_windows = noise_runs = None
    verdict = UNKNOWN

    def scaled(half):  # a half-width on the log scale as a ratio in %; points stay points
        return None if half is None else 100.0 * (math.exp(half) - 1) if figure.relative else half

    if runs:
        noise_runs = scaled(prediction_half_width(run_values(runs, figure), CONFIDENCE))
    if base is not None and new is not None and (not figure.relative or base > 0):
        change = 100.0 * (new / base - 1) if figure.relative else 100.0 * (new - base)
        noise_windows = scaled(half_width(window_values(base_row, figure), window_values(new_row, figure)))
        if noise_windows is not None:
            noise = max(noise_windows, noise_runs if noise_runs is not None else noise_windows)
            allowed = max(noise, threshold)
            bad = change if figure.higher_is_worse else -change
            verdict = WORSE if bad > allowed else BETTER if -bad > allowed else SAME
    return Row(name or figure.name, figure.label, figure.unit, step, base, new, change, noise, threshold, allowed,
               verdict, figure.relative, noise_windows, noise_runs, len(runs) if runs else 1)


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


def compare(base, new_doc, thresholds=None, names=None):
    """Comparison of JSON summaries (dicts): ``base`` one baseline run's, or a list of several runs' (``names``:
    their file names, for the lines), with ``new_doc``: the Aggregated row's figures, then each sweep step
    present in every run and the highest FPS within the SLO. ``thresholds``: {figure name: % or None}.
    Raises CompareError (``comparable.check_runs``)."""
    docs = [base] if isinstance(base, dict) else list(base)
    if not docs:
        raise CompareError("no baseline run given; expected one JSON summary or more")
    notices = check_runs(docs, new_doc, names)
    limits = thresholds_of(thresholds)
    figures = [f for f in FIGURES if limits[f.name] is not None]

    def judged(base_rows, new_row, **where):
        base_row, runs = baseline_of(base_rows)
        return [judge(f, base_row, new_row, limits[f.name], runs=runs, **where) for f in figures]

    rows = judged([doc["rows"][-1] for doc in docs], new_doc["rows"][-1])
    base_steps = [{s["step"]: s for s in doc.get("steps") or []} for doc in docs]
    new_steps = {s["step"]: s for s in new_doc.get("steps") or []}
    in_all = set(new_steps).intersection(*base_steps)
    for index in sorted(in_all):
        rows += judged([steps[index] for steps in base_steps], new_steps[index], step=index)
    if any(base_steps) or new_steps:
        missing = sorted(set(new_steps).union(*base_steps) - in_all)
        if missing:
            notices.append(f"Notice: step{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} ran in only "
                           + ("one of the two runs" if len(docs) == 1 else "some of the runs")
                           + " (a sweep ends at the first step that misses its SLO)")
        best_base = [best_step(doc, steps) for doc, steps in zip(docs, base_steps)]
        best_new = best_step(new_doc, new_steps)
        if limits["fps"] is not None and None not in best_base and best_new is not None:
            figure = BEST_FPS if docs[0].get("best_step") is not None else BEST_FPS_NO_SLO
            base_row, runs = baseline_of([steps[i] for steps, i in zip(base_steps, best_base)])
            rows.append(judge(figure, base_row, new_steps[best_new], limits["fps"], name="best_fps", runs=runs))
    return Comparison(rows, notices, len(docs))


def format_table(comparison):
    """The console table: one line per figure (and step), then the notices. A baseline of several runs adds
    the two noises the larger of which is ``noise``: ``runs`` (between the baseline's runs) and ``windows``."""
    several = comparison.runs > 1
    if several:
        head = (f"Compared with the baseline of {comparison.runs} runs (change of each figure; runs = half-width of the "
                f"{100 * CONFIDENCE:g} % prediction interval of one more run from the spread of the baseline's runs, "
                f"windows = of the {100 * CONFIDENCE:g} % interval from the runs' windows, noise = the larger; "
                "allowed = the larger of noise and threshold)")
    else:
        head = (f"Compared with the baseline (change of each figure; noise = half-width of its {100 * CONFIDENCE:g} % "
                "interval from the runs' windows; allowed = the larger of noise and threshold)")
    extra = f"{'runs':>8}{'windows':>9}" if several else ""
    lines = ["", head, f"{'step':>5} {'figure':<28}{'baseline':>18}{'this run':>18}{'change':>13}{'noise':>10}{extra}"
             f"{'threshold':>11}{'allowed':>10}  verdict"]

    def pct(value):  # a k = 2 baseline's p99 can allow 2.6e+11 %: in its column, not run into the next
        return "-" if value is None else f"{value:.1f}" if abs(value) < 1e5 else f"{value:.2g}"

    for row in comparison.rows:
        extra = f"{pct(row.noise_runs):>8}{pct(row.noise_windows):>9}" if several else ""
        lines.append(f"{'' if row.step is None else row.step:>5} {row.label:<28}{row.value_text(row.base):>18}"
                     f"{row.value_text(row.new):>18}{row.change_text(row.change):>13}{pct(row.noise):>10}{extra}"
                     f"{pct(row.threshold):>11}{pct(row.allowed):>10}  {row.verdict}")
    return "\n".join(lines + comparison.notices)
