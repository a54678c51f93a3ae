"""A baseline of several runs: its figures and the spread between its runs (``compare``).

Windows (``tfs_user.results.windows``) see the noise within a run, not the drift between two runs made
at different times (another job on the machine, the CPU's state). A baseline of k >= 2 runs measures
that drift: each run gives one value of each figure (its whole-run p50 ...), and the spread of those k
values gives a prediction interval for one more run of the same test,
``t(1 - a/2, k - 1) * s * sqrt(1 + 1/k)`` (s: the values' standard deviation; on the log scale for
latency and FPS, so that it is a ratio; in percentage points for the fail ratio). The new run is
judged as that one more run.

The baseline's own figures are the centre of that interval: for latency percentiles and FPS the
geometric mean of the runs' values (the mean on the log scale), for the fail ratio the mean of the
runs' ratios. Not the percentiles of the runs' merged HDR histograms: in a closed loop a faster run
sends more requests, so the merge weights the faster runs, and the run with the heaviest tail sets its
p99 (in the benchmark's 10 s runs, 18 groups of 3: merged p50 -1.1 % to +0.1 % off the geometric mean
of the runs' p50, merged p99 -1.7 % to +6.2 %); a change measured from another point than the
interval's centre would call "worse" and "better" unevenly. The merged histogram is still kept
(``hdr_histogram``): the plot shows the baseline's distribution from it. Windows of all runs are
pooled for the within-run interval.
"""

import math
from statistics import fmean, stdev

from hdrh.histogram import HdrHistogram


def t_quantile_exact(q, df):
    """Student t quantile for an integer ``df`` >= 1 and 0.5 < ``q`` < 1, to double precision: bisection on
    the closed-form two-sided CDF (Abramowitz & Stegun 26.7.3/26.7.4), where few degrees of freedom
    (k - 1 for k runs) make a series approximation miss (t(0.975, 1) = 12.706). Raises ValueError."""
    if int(df) != df or df < 1 or not 0.5 < q < 1:
        raise ValueError(f"t quantile of q={q!r}, df={df!r}; expected 0.5 < q < 1 and a whole df >= 1")
    df = int(df)
    target = 2 * q - 1  # P(|T| < t)
    low, high = 0.0, math.pi / 2  # theta = atan(t / sqrt(df)): the CDF rises with it
    for _ in range(200):
        theta = (low + high) / 2
        if _two_sided_cdf(theta, df) < target:
            low = theta
        else:
            high = theta
    return math.sqrt(df) * math.tan((low + high) / 2)


def _two_sided_cdf(theta, df):
    """P(|T| < sqrt(df) * tan(theta)) for T ~ Student t with integer ``df`` (A&S 26.7.3/26.7.4)."""
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2:  # odd: (2/pi) * (theta + sin * (cos + 2/3 cos^3 + 2*4/(3*5) cos^5 + ... + cos^(df-2)))
        term = total = math.cos(theta)
        for j in range(1, (df - 1) // 2):
            term *= c2 * (2 * j) / (2 * j + 1)
            total += term
        return 2 / math.pi * (theta + (s * total if df > 1 else 0.0))
    term = total = 1.0  # even: sin * (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ... + cos^(df-2))
    for j in range(1, df // 2):
        term *= c2 * (2 * j - 1) / (2 * j)
        total += term
    return s * total


def prediction_half_width(values, confidence):
    """Half-width of the ``confidence`` prediction interval of one more value drawn like ``values`` (k >= 2
    run-level values): ``t((1 + confidence) / 2, k - 1) * stdev * sqrt(1 + 1/k)``; None with fewer than 2."""
    k = len(values)
    if k < 2:
        return None
    return t_quantile_exact((1 + confidence) / 2, k - 1) * stdev(values) * math.sqrt(1 + 1 / k)


def _has(value, relative):
    return value is not None and (value > 0 or not relative)


def run_values(rows, figure):
    """Each run's whole-run value of ``figure`` (a ``compare.Figure``) from its summary row or step: the log
    for a relative figure, percentage points for the fail ratio; [] when a run has no value of it (``centre``)."""
    values = [row.get(figure.key) for row in rows]
    if not all(_has(v, figure.relative) for v in values):
        return []
    return [math.log(v) for v in values] if figure.relative else [100.0 * v for v in values]


def centre(values, relative=True):
    """The centre of run-level ``values``: the geometric mean for a relative figure, else the mean; None when a
    run has no value (None; for a relative figure also 0: a run without a successful request has no latency and
    0 FPS). Leaving that run out would print the other runs' figure as the baseline's (seen: 430.16 frames/s
    for a baseline of runs at 430.16 and 0.00 frames/s), so the figure is not judged, as with one such run."""
    if not values or not all(_has(v, relative) for v in values):
        return None
    if min(values) == max(values):
        return values[0]  # exactly, not exp(log(x)) a rounding away
    return math.exp(fmean(math.log(v) for v in values)) if relative else fmean(values)


def merged_row(rows):
    """One summary row (or step) for a baseline of several runs' ``rows``: the figures a comparison judges by,
    at the centre of the runs' values (``centre``): ``p50_ms`` ... and ``fps`` (geometric means),
    ``fail_ratio`` (mean); requests and failures (sums); ``hdr_histogram`` (the runs' histograms merged,
    base64: the distribution of all the baseline's requests) with its ``min_ms`` and ``max_ms`` (exact);
    ``windows`` (every run's windows, pooled)."""
    from tfs_user.stats import PERCENTILES, LatencyStats  # numpy: only when several runs are merged

    stats = LatencyStats()
    for row in rows:
        if row.get("hdr_histogram"):
            histogram = HdrHistogram.decode(row["hdr_histogram"].encode("ascii"))
            stats.histogram.add(histogram)
            stats.ok += histogram.get_total_count()
            # a sweep step's row has no min_ms (a summary row has both): the histogram's, within its precision
            low = row.get("min_ms", histogram.get_min_value() / 1000.0)
            high = row.get("max_ms", histogram.get_max_value() / 1000.0)
            stats.min_ms, stats.max_ms = min(stats.min_ms, low), max(stats.max_ms, high)
    merged = {"requests": sum(row.get("requests") or 0 for row in rows),
              "failures": sum(row.get("failures") or 0 for row in rows),
              "fail_ratio": centre([row.get("fail_ratio") for row in rows], relative=False),
              "fps": centre([row.get("fps") for row in rows])}
    for p in PERCENTILES:
        merged[f"p{p:g}_ms"] = centre([row.get(f"p{p:g}_ms") for row in rows])
    widths = [(row.get("windows") or {}).get("width_s") for row in rows]
    merged.update(hdr_histogram=stats.histogram.encode().decode("ascii") if stats.ok else None,
                  min_ms=stats.min_ms if stats.ok else None, max_ms=stats.max_ms if stats.ok else None,
                  windows={"width_s": max((w for w in widths if w), default=None),
                           "rows": [w for row in rows for w in (row.get("windows") or {}).get("rows", [])]})
    return merged


def baseline_of(rows):
    """(the row a comparison takes as the baseline's, the runs' rows for the between-run noise or None): one
    run's row as it is (exactly today's comparison), several runs merged (``merged_row``)."""
    return (rows[0], None) if len(rows) == 1 else (merged_row(rows), list(rows))
