"""``--plot FILE.html``: a self-contained HTML page with the capacity pictures (matplotlib PNGs inlined).

The same charts (and ``fps_png``, FPS over time of any run) go into the TFS section of
Locust's HTML report (``tfs_user.web.html_report``) and the web UI's chart page.

Charts: latency (p50, p99, ms) against achieved FPS, one point per sweep
step; with ``--server-metrics``, each step's mean latency split into the server's
queue time, inference time and the rest, against achieved FPS; FPS and latency
(p50, p99) over time from the status samples; then the steps table. Images are PNG, base64-encoded in ``<img src="data:...">``,
so the file opens anywhere without network access or scripts.

Inputs: step rows as ``tfs_user.capacity.steps.step_row`` returns them (None = empty set),
and time samples ``(t_s, fps, p50_ms, p99_ms)`` with t_s seconds from the start.
"""

import base64
import html
import io

from matplotlib.figure import Figure

from tfs_user.results.report import _write_atomically
from tfs_user.capacity.steps import STEP_COLUMNS, _cell

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 100


def _png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def latency_vs_fps_png(rows, slo_p99_ms=0.0):
    """Base64 PNG: p50 and p99 (ms) against achieved FPS, points labelled with the step; None without points."""
    points = [r for r in rows if r["fps"] is not None and r["p50_ms"] is not None]
    if not points:
        return None
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    axes = figure.subplots()
    fps = [r["fps"] for r in points]
    axes.plot(fps, [r["p50_ms"] for r in points], "o-", label="p50")
    axes.plot(fps, [r["p99_ms"] for r in points], "s-", label="p99")
    for r in points:
        axes.annotate(f"step {r['step']}", (r["fps"], r["p99_ms"]), textcoords="offset points", xytext=(4, 4),
                      fontsize=8)
    if slo_p99_ms:
        axes.axhline(slo_p99_ms, color="red", linestyle="--", linewidth=1, label=f"SLO p99 {slo_p99_ms:g} ms")
    axes.set_xlabel("achieved FPS (frames/s)")
    axes.set_ylabel("latency (ms)")
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.set_title("Latency against throughput, one point per step")
    axes.grid(True, alpha=0.3)
    axes.legend()
    return _png(figure)


def server_times_png(rows):
    """Base64 PNG: per step, the client's mean latency split into the server's mean queue time, mean
    inference time and the rest (client mean - queue - inference: the rest of the server's handling,
    network and client), a stacked bar at the step's achieved FPS; None without steps that have them."""
    points = [r for r in rows if r["fps"] is not None and r.get("mean_ms") is not None
              and r.get("server_queue_ms") is not None and r.get("server_inference_ms") is not None]
    if not points:
        return None
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    axes = figure.subplots()
    fps = [r["fps"] for r in points]
    span = (max(fps) - min(fps)) or max(fps) or 1.0
    width = span / max(len(points), 1) * 0.5
    queue = [r["server_queue_ms"] for r in points]
    inference = [r["server_inference_ms"] for r in points]
    rest = [max(r["mean_ms"] - q - i, 0.0) for r, q, i in zip(points, queue, inference)]
    axes.bar(fps, queue, width, label="server queue", color="tab:red")
    axes.bar(fps, inference, width, bottom=queue, label="server inference", color="tab:blue")
    axes.bar(fps, rest, width, bottom=[q + i for q, i in zip(queue, inference)], color="tab:gray",
             label="rest (server other, network, client)")
    for r, q, i, x in zip(points, queue, inference, rest):
        axes.annotate(f"step {r['step']}", (r["fps"], q + i + x), textcoords="offset points", xytext=(0, 3),
                      ha="center", fontsize=8)
    axes.set_xlabel("achieved FPS (frames/s)")
    axes.set_ylabel("mean latency (ms)")
    axes.set_ylim(bottom=0)
    axes.set_title("Where the time goes: server queue, inference and the rest, per step")
    axes.grid(True, alpha=0.3, axis="y")
    axes.legend()
    return _png(figure)


def over_time_png(samples):
    """Base64 PNG: FPS (left axis) and p50/p99 ms (right axis) over time; None with fewer than 2 samples."""
    if len(samples) < 2:
        return None
    t = [s[0] for s in samples]
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    axes = figure.subplots()
    axes.plot(t, [s[1] for s in samples], color="tab:green", label="FPS")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("FPS (frames/s)")
    latency = axes.twinx()
    latency.plot(t, [s[2] for s in samples], color="tab:blue", label="p50 ms")
    latency.plot(t, [s[3] for s in samples], color="tab:orange", label="p99 ms")
    latency.set_ylabel("latency (ms)")
    axes.set_ylim(bottom=0)
    latency.set_ylim(bottom=0)
    handles = axes.get_legend_handles_labels()[0] + latency.get_legend_handles_labels()[0]
    axes.legend(handles, [h.get_label() for h in handles], loc="upper left")
    axes.set_title("FPS and latency over time")
    axes.grid(True, alpha=0.3)
    return _png(figure)


def fps_png(points):
    """Base64 PNG: FPS over time from ``points`` [(wall time s, FPS)], time from the first point;
    None with fewer than 2 points or no time span."""
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return None
    t0 = points[0][0]
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN * 0.6))
    axes = figure.subplots()
    axes.plot([t - t0 for t, _ in points], [f for _, f in points], color="tab:green")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("FPS (frames/s)")
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    return _png(figure)


def img(name, png):
    """An ``<img>`` element of a base64 PNG, id and alt text ``name``."""
    return f"<img id='{html.escape(name)}' alt='{html.escape(name)}' src='data:image/png;base64,{png}'>"


def steps_table(rows):
    """The steps as an HTML table (STEP_COLUMNS, cells as in the steps CSV); '' without rows."""
    if not rows:
        return ""
    parts = ["<table id='steps'><tr>" + "".join(f"<th>{html.escape(t)}</th>" for t, _ in STEP_COLUMNS) + "</tr>"]
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(k)))}</td>" for _, k in STEP_COLUMNS) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def render(rows, samples, title="tfs-locust capacity", best_line=None, slo_p99_ms=0.0):
    """The HTML page (str)."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if best_line:
        parts.append(f"<p id='best'>{html.escape(best_line)}</p>")
    for name, png in (("latency-vs-fps", latency_vs_fps_png(rows, slo_p99_ms)), ("server-times", server_times_png(rows)),
                      ("over-time", over_time_png(samples))):
        if png:
            parts.append(img(name, png))
    if rows:
        parts.append(steps_table(rows))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_plot(path, rows, samples, **kwargs):
    """Write ``render(rows, samples, **kwargs)`` to ``path`` (atomically)."""
    page = render(rows, samples, **kwargs)
    _write_atomically(path, lambda f: f.write(page))
