"""``python -m tfs_user.compare ... --plot FILE.html``: the baseline and the new run on one self-contained page.

Charts (matplotlib PNGs inlined as ``--plot`` does, ``tfs_user.web.plot``): the latency percentile
distributions overlaid, HdrHistogram style (x = percentile on a 1/(1-q) log scale from p0 to p99.9,
y = latency ms), from the exact HDR histograms; FPS and p99 over time side by side, from the windows
(time from each run's first window); then the verdict table. A baseline of several runs shows its
merged distribution (the figures it is judged by) and each of its runs faintly.
"""

import html

from hdrh.histogram import HdrHistogram
from matplotlib.figure import Figure

from tfs_user.results.baseline_runs import baseline_of
from tfs_user.results.report import _write_atomically
from tfs_user.stats import LatencyStats
from tfs_user.web.plot import DPI, HEIGHT_IN, WIDTH_IN, _png, img  # noqa: F401 (DPI: one look for all pages)

PERCENTILES = [0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9]
"""Tick marks of the distribution chart; the curve has points between them."""
RUNS = (("baseline", "tab:blue"), ("this run", "tab:orange"))
FAINT = 0.3
"""Opacity of each run of a baseline of several runs, beside their merged curve."""


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


def curves(base_rows, new_row):
    """[(label or None, color, alpha, [(percentile, ms)])]: the baseline's distribution (several runs: merged,
    then each run faint, unlabelled but the first), then the new run's."""
    (base_label, base_color), (new_label, new_color) = RUNS
    base_row, runs = baseline_of(base_rows)
    out = [(base_label if not runs else f"baseline ({len(runs)} runs merged)", base_color, 1.0, distribution(base_row))]
    for i, row in enumerate(runs or []):
        out.append(("each baseline run" if i == 0 else None, base_color, FAINT, distribution(row)))
    return out + [(new_label, new_color, 1.0, distribution(new_row))]


def distribution_png(base_rows, new_row):
    """Base64 PNG: latency against percentile, the baseline (``curves``) and the new run, x on a 1/(1-q) log
    scale; None without histograms."""
    lines = curves(base_rows, new_row)
    if not any(points for *_, points in lines):
        return None
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    axes = figure.subplots()
    for label, color, alpha, points in lines:
        axes.plot([1 / (1 - p / 100) for p, _ in points], [v for _, v in points], color=color, alpha=alpha,
                  linewidth=1.0 if alpha < 1 else 1.5, label=label)
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


def over_time_png(base_rows, new_row):
    """Base64 PNG: FPS (left) and p99 ms (right) per window over time, each baseline run (several: faint) and the
    new run, each from its own first window; None without windows."""
    (base_label, base_color), new = RUNS
    several = len(base_rows) > 1
    runs = [(base_label if not several else "each baseline run" if i == 0 else None, base_color,
             FAINT if several else 1.0, row) for i, row in enumerate(base_rows)] + [(*new, 1.0, new_row)]
    series = []
    for label, color, alpha, row in runs:
        windows = [w for w in (row.get("windows") or {}).get("rows", []) if w.get("full")]
        if windows:
            t0 = windows[0]["start"]
            series.append((label, color, alpha, [(w["start"] - t0, w) for w in windows]))
    if not series:
        return None
    figure = Figure(figsize=(WIDTH_IN * 1.5, HEIGHT_IN))
    fps_axes, p99_axes = figure.subplots(1, 2)
    for label, color, alpha, points in series:
        fps_axes.plot([t for t, _ in points], [w["fps"] for _, w in points], "o-", color=color, alpha=alpha, label=label)
        p99_axes.plot([t for t, w in points if w["p99_ms"] is not None],
                      [w["p99_ms"] for _, w in points if w["p99_ms"] is not None], "o-", color=color, alpha=alpha,
                      label=label)
    for axes, title, unit in ((fps_axes, "FPS per window", "FPS (frames/s)"), (p99_axes, "p99 per window", "p99 (ms)")):
        axes.set_xlabel("time from the run's first window (s)")
        axes.set_ylabel(unit)
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.legend()
    return _png(figure)


def verdict_table(comparison):
    """The comparison as an HTML table (one row per figure and step; a baseline of several runs adds the noise
    between its runs and the noise from the windows, the larger of which is the noise)."""
    several = comparison.runs > 1
    head = ("Step", "Figure", "Baseline", "This run", "Change", "Noise", *(("Between runs", "Windows") if several else ()),
            "Threshold", "Allowed", "Verdict")
    parts = ["<table id='verdicts'><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for row in comparison.rows:
        def pct(value):
            return "-" if value is None else f"{value:.1f}"
        cells = ("" if row.step is None else str(row.step), row.label, row.value_text(row.base), row.value_text(row.new),
                 row.change_text(row.change), pct(row.noise),
                 *((pct(row.noise_runs), pct(row.noise_windows)) if several else ()),
                 pct(row.threshold), pct(row.allowed), row.verdict)
        parts.append(f"<tr class='{row.verdict}'>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def render(comparison, base_docs, new_doc, title="tfs-locust: this run against the baseline"):
    """The HTML page (str): charts of the Aggregated rows, the verdict table, worse lines and notices;
    ``base_docs``: the baseline's summaries (a list, or one dict)."""
    base_docs = [base_docs] if isinstance(base_docs, dict) else list(base_docs)
    if len(base_docs) > 1:
        title = f"{title} ({len(base_docs)} runs)"
    base_rows, new_row = [doc["rows"][-1] for doc in base_docs], new_doc["rows"][-1]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}tr.worse{background:#fdd}"
             "tr.better{background:#dfd}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for line in comparison.worse_lines() + comparison.notices:
        parts.append(f"<p class='line'>{html.escape(line)}</p>")
    for name, png in (("distribution", distribution_png(base_rows, new_row)), ("over-time", over_time_png(base_rows, new_row))):
        if png:
            parts.append(img(name, png))
    parts.append(verdict_table(comparison))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_page(path, comparison, base_docs, new_doc):
    """Write ``render(...)`` to ``path`` (atomically)."""
    page = render(comparison, base_docs, new_doc)
    _write_atomically(path, lambda f: f.write(page))
