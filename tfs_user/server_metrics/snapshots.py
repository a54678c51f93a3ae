"""Prometheus text -> Snapshot, and what changed between two Snapshots (counters, histograms).

Values keep the server's units (microseconds, seconds): servers.py converts to milliseconds.
"""

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from tfs_user.server_metrics.scrape import MetricsError


class WindowError(ValueError):
    """Two Snapshots cannot be differenced for a metric (a counter went down: the server restarted)."""


@dataclass(frozen=True)
class Snapshot:
    """Samples of one metrics page by (name, frozenset(labels.items())).

    Counter samples are keyed by the family name without ``_total`` whether or not the server
    wrote it (prometheus_client's parser adds ``_total`` to a counter's samples when the server did
    not: TF Serving's and Triton's counters): ``nv_inference_count``, ``model_infer_request_success``.
    Histogram samples keep ``_bucket`` (with its ``le`` label), ``_sum`` and ``_count``. ``created``: the
    ``_created`` samples (prometheus_client's pages: MLServer, KServe) by (family name, frozenset(labels)),
    the time a series began; it changes when the server restarts, even if the count climbed past its old value.
    """

    samples: dict
    created: dict = field(default_factory=dict)

    def created_of(self, name, labels):
        """When the series ``name`` (a sample name: ``X``, ``X_count``, ``X_sum``, ``X_bucket``) with ``labels``
        began, or None (the server publishes no ``_created``)."""
        rest = frozenset(kv for kv in labels if kv[0] != "le")
        for base in (name, *(name.removesuffix(end) for end in ("_count", "_sum", "_bucket") if name.endswith(end))):
            found = self.created.get((base, rest))
            if found is not None:
                return found
        return None

    def names(self):
        return {name for name, _ in self.samples}

    def series(self, name, match=lambda labels: True):
        """{frozenset(labels): value} of the samples called ``name`` whose labels dict satisfies ``match``."""
        return {labels: value for (n, labels), value in self.samples.items() if n == name and match(dict(labels))}


def parse(text):
    """The Snapshot of a Prometheus text page. Raises MetricsError if the text is not Prometheus text."""
    samples, created = {}, {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name = sample.name
                if name.endswith("_created"):  # its own family in text format 0.0.4, a sample in OpenMetrics
                    created[(name.removesuffix("_created"), frozenset(sample.labels.items()))] = float(sample.value)
                    continue
                if family.type == "counter" and name == family.name + "_total":
                    name = family.name
                samples[(name, frozenset(sample.labels.items()))] = float(sample.value)
    except MetricsError:
        raise
    except Exception as e:  # the parser raises ValueError, and IndexError/KeyError on some broken lines
        raise MetricsError(f"not Prometheus text: {type(e).__name__}: {e}".splitlines()[0][:200]) from None
    return Snapshot(samples, created)


def _restarted(start, end, name, labels):
    """Whether the series began again between the two Snapshots (its ``_created`` changed)."""
    was, now = start.created_of(name, labels), end.created_of(name, labels)
    return was is not None and now is not None and was != now


def counter_delta(start, end, name, match=lambda labels: True):
    """Sum of (end - start) over the series of counter ``name`` whose labels satisfy ``match``.

    None when ``end`` has no such series (the server does not publish it). A series missing from
    ``start`` counts from 0 (servers create a series at its first use). Raises WindowError when a
    series went down or disappeared, or its ``_created`` time changed (the counter was reset: a restart,
    even one after which it climbed past its old value).
    """
    before, after = start.series(name, match), end.series(name, match)
    if not after:
        return None
    gone = set(before) - set(after)
    if gone:
        raise WindowError(f"{name}: {len(gone)} series gone at the end (counter reset: server restarted?)")
    total = 0.0
    for labels, value in after.items():
        if labels in before and _restarted(start, end, name, labels):
            raise WindowError(f"{name}: began again between the readings (its _created time changed: counter reset, "
                              "server restarted)")
        if value < before.get(labels, 0.0):
            raise WindowError(f"{name}: went down from {before[labels]:g} to {value:g} (counter reset)")
        total += value - before.get(labels, 0.0)
    return total


@dataclass(frozen=True)
class HistogramDelta:
    """Observations of a histogram within the window: ``count``, ``sum`` (server units) and
    ``buckets``, ((le, cumulative count), ...) ascending, the last le being math.inf."""

    count: float
    sum: float
    buckets: tuple


def histogram_delta(start, end, name, match=lambda labels: True):
    """The HistogramDelta of histogram ``name`` summed over its series whose labels satisfy
    ``match``, or None when ``end`` has no such series. Raises WindowError on a reset, or when the
    series have different bucket boundaries."""
    count = counter_delta(start, end, f"{name}_count", match)
    if count is None:
        return None
    total = counter_delta(start, end, f"{name}_sum", match) or 0.0
    per_series = {}
    for labels, value in end.series(f"{name}_bucket", match).items():
        le = float(dict(labels)["le"])
        rest = frozenset(kv for kv in labels if kv[0] != "le")
        was = start.samples.get((f"{name}_bucket", labels), 0.0)
        if _restarted(start, end, f"{name}_bucket", labels):
            raise WindowError(f"{name}: began again between the readings (its _created time changed: counter reset, "
                              "server restarted)")
        if value < was:
            raise WindowError(f"{name}: bucket le={le:g} went down from {was:g} to {value:g} (counter reset)")
        per_series.setdefault(rest, {})[le] = value - was
    bounds = {tuple(sorted(b)) for b in per_series.values()}
    if len(bounds) > 1:
        raise WindowError(f"{name}: the series have different bucket boundaries")
    les = sorted(next(iter(bounds), ()))
    buckets = tuple((le, sum(b[le] for b in per_series.values())) for le in les)
    return HistogramDelta(count, total, buckets)


def quantile(histogram, q):
    """(value, (low, high)): the q-quantile (0 < q < 1) of a HistogramDelta estimated as Prometheus'
    histogram_quantile does, by linear interpolation inside the bucket that holds rank q*count; the
    first bucket starts at 0. In the +Inf bucket the value is its lower bound (and high is inf).
    None when the window has no observations or no buckets."""
    if not histogram.buckets or histogram.buckets[-1][1] <= 0:
        return None
    rank = q * histogram.buckets[-1][1]
    low, below = 0.0, 0.0
    for le, cumulative in histogram.buckets:
        if cumulative >= rank and cumulative > below:
            if math.isinf(le):
                return low, (low, le)
            return low + (le - low) * (rank - below) / (cumulative - below), (low, le)
        low, below = le, cumulative
    return None
