"""``python -m tfs_user.compare ... --plot FILE.html``: both runs on one self-contained page.

Charts (matplotlib PNGs inlined as ``--plot`` does, ``tfs_user.web.plot``): the two latency
percentile distributions overlaid, HdrHistogram style (x = percentile on a 1/(1-q) log scale from
p0 to p99.9, y = latency ms), from each run's exact HDR histogram; FPS and p99 over time side by side,
from each run's windows (time from the run's first window); then the verdict table.
"""

import html

from hdrh.histogram import HdrHistogram
from matplotlib.figure import Figure

from tfs_user.results.report import _write_atomically
from tfs_user.stats import LatencyStats
from tfs_user.web.plot import DPI, HEIGHT_IN, WIDTH_IN, _png, img  # noqa: F401 (DPI: one look for all pages)

PERCENTILES = [0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9]
"""Tick marks of the distribution chart; the curve has points between them."""
RUNS = (("baseline", "tab:blue"), ("this run", "tab:orange"))


def distribution(row):
    """[(percentile, latency ms)] of a summary row's ``hdr_histogram`` up to p99.9, through ``LatencyStats``'s
    percentile (the figures the tables print); [] without one."""
    text = row.get("hdr_histogram")
    if not text:
        return []
    stats = LatencyStats()
    stats.histogram = HdrHistogram.decode(text.encode("ascii"))
    stats.ok = stats.histogram.get_total_count()
    stats.min_ms, stats.max_ms = row["min_ms"], row["max_ms"]
    points = sorted({round(100 * (1 - 10 ** (-k / 20)), 4) for k in range(0, 61)} | set(PERCENTILES))
    return [(p, stats.percentile_ms(p)) for p in points if p <= 99.9]


def distribution_png(base_row, new_row):
    """Base64 PNG: latency against percentile, both runs, x on a 1/(1-q) log scale; None without histograms."""
    curves = [(label, color, distribution(row)) for (label, color), row in zip(RUNS, (base_row, new_row))]
    if not any(points for _, _, points in curves):
        return None
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    axes = figure.subplots()
    for label, color, points in curves:
        axes.plot([1 / (1 - p / 100) for p, _ in points], [v for _, v in points], color=color, label=label)
    axes.set_xscale("log")
    axes.set_xticks([1 / (1 - p / 100) for p in PERCENTILES], [f"p{p:g}" for p in PERCENTILES])
    axes.minorticks_off()
    axes.set_xlabel("percentile (1/(1-q) scale)")
    axes.set_ylabel("latency (ms)")
    axes.set_ylim(bottom=0)
    axes.set_title("Latency by percentile")
    axes.grid(True, alpha=0.3)
    axes.legend()
    return _png(figure)


def over_time_png(base_row, new_row):
    """Base64 PNG: FPS (left) and p99 ms (right) per window over time, both runs; None without windows."""
    series = []
    for (label, color), row in zip(RUNS, (base_row, new_row)):
        windows = [w for w in (row.get("windows") or {}).get("rows", []) if w.get("full")]
        if windows:
            t0 = windows[0]["start"]
            series.append((label, color, [(w["start"] - t0, w) for w in windows]))
    if not series:
        return None
    figure = Figure(figsize=(WIDTH_IN * 1.5, HEIGHT_IN))
    fps_axes, p99_axes = figure.subplots(1, 2)
    for label, color, points in series:
        fps_axes.plot([t for t, _ in points], [w["fps"] for _, w in points], "o-", color=color, label=label)
        p99_axes.plot([t for t, w in points if w["p99_ms"] is not None],
                      [w["p99_ms"] for _, w in points if w["p99_ms"] is not None], "o-", color=color, label=label)
    for axes, title, unit in ((fps_axes, "FPS per window", "FPS (frames/s)"), (p99_axes, "p99 per window", "p99 (ms)")):
        axes.set_xlabel("time from the run's first window (s)")
        axes.set_ylabel(unit)
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.legend()
    return _png(figure)


def verdict_table(comparison):
    """The comparison as an HTML table (one row per figure and step)."""
    head = ("Step", "Figure", "Baseline", "This run", "Change", "Noise", "Threshold", "Allowed", "Verdict")
    parts = ["<table id='verdicts'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for row in comparison.rows:
        def pct(value):
            return "-" if value is None else f"{value:.1f}"
        cells = ("" if row.step is None else str(row.step), row.label, row.value_text(row.base), row.value_text(row.new),
                 row.change_text(row.change), pct(row.noise), pct(row.threshold), pct(row.allowed), row.verdict)
        parts.append(f"<tr class='{row.verdict}'>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def render(comparison, base_doc, new_doc, title="tfs-locust: this run against the baseline"):
    """The HTML page (str): charts of the Aggregated rows, the verdict table, worse lines and notices."""
    base_row, new_row = base_doc["rows"][-1], new_doc["rows"][-1]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}tr.worse{background:#fdd}"
             "tr.better{background:#dfd}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for line in comparison.worse_lines() + comparison.notices:
        parts.append(f"<p class='line'>{html.escape(line)}</p>")
    for name, png in (("distribution", distribution_png(base_row, new_row)), ("over-time", over_time_png(base_row, new_row))):
        if png:
            parts.append(img(name, png))
    parts.append(verdict_table(comparison))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_page(path, comparison, base_doc, new_doc):
    """Write ``render(...)`` to ``path`` (atomically)."""
    page = render(comparison, base_doc, new_doc)
    _write_atomically(path, lambda f: f.write(page))
