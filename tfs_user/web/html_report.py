"""The TFS section of Locust's HTML report (``--html`` and "Download Report"): summary table and charts.

Charts are matplotlib PNGs inlined as base64 (``tfs_user.web.plot``, the charts of ``--plot``):
FPS over time of every run; for a sweep or open-loop run (``capacity`` given, see
``tfs_user.capacity.output.charts``) also latency p50/p99 against achieved FPS (one point per
step), FPS and latency over time, and the steps table.
"""

import html

from tfs_user.results import report

NO_SAMPLES = "no FPS samples yet"


def fps_chart(points):
    """HTML of the FPS-over-time chart of ``points`` [(wall time s, FPS)]: an ``<img id='tfs-fps-chart'>``,
    or a line saying there are no samples yet (fewer than 2 points, or no time span)."""
    from tfs_user.web import plot  # matplotlib: imported when a chart is drawn

    png = plot.fps_png(list(points))
    return plot.img("tfs-fps-chart", png) if png else f"<p>{NO_SAMPLES}</p>"


def capacity_charts(capacity):
    """HTML of a capacity run's charts and steps table (``capacity``: dict rows, samples, slo_p99_ms, best_line)."""
    from tfs_user.web import plot

    parts = ["<h3>Capacity: latency against FPS per step, FPS and latency over time</h3>"]
    if capacity.get("best_line"):
        parts.append(f"<p id='tfs-best'>{html.escape(capacity['best_line'])}</p>")
    rows, samples = capacity["rows"], capacity["samples"]
    for name, png in (("tfs-latency-vs-fps", plot.latency_vs_fps_png(rows, capacity.get("slo_p99_ms", 0.0))),
                      ("tfs-server-times", plot.server_times_png(rows)), ("tfs-over-time", plot.over_time_png(samples))):
        if png:
            parts.append(plot.img(name, png))
    parts.append(plot.steps_table(rows))
    return "".join(parts)


def server_table(by_url):
    """HTML table of the servers' own figures ({url: entry}, ``tfs_user.server_metrics.entries``); '' without."""
    if not by_url:
        return ""
    from tfs_user.server_metrics.entries import csv_rows

    header, *rows = csv_rows([("test", by_url)])
    cells = "".join(f"<th>{html.escape(title)}</th>" for title in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return ("<h3>The server's own figures (--server-metrics; ms; p50/p99 estimated inside histogram buckets)</h3>"
            f"<table id='tfs-server'><tr>{cells}</tr>{body}</table>")


def report_section(data, chart_points, notes=(), capacity=None):
    """HTML section for Locust's report: the TFS summary table (``report.summary`` data), the FPS chart and,
    for a capacity run, its charts (``capacity_charts``)."""
    header, *rows = report.csv_rows(data)
    cells = "".join(f"<th>{html.escape(title)}</th>" for title in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    lines = [html.escape(line) for line in (*report.summary_lines(data), *notes)]
    style = ("font-family:sans-serif;background:#fff;color:#111;padding:16px;margin:16px;border:1px solid #ccc;"
             "overflow-x:auto")
    return (f'<section id="tfs-summary" style="{style}">'
            "<h2>TFS: FPS and exact latency</h2>"
            "<p>Measured requests only; latency of successful requests in ms with microsecond resolution "
            "(Locust's tables above round to whole ms). FPS = frames of successful requests / measured window.</p>"
            f'<table border="1" cellpadding="4" style="border-collapse:collapse;text-align:right">'
            f"<tr>{cells}</tr>{body}</table>"
            + "".join(f"<p>{line}</p>" for line in lines)
            + server_table(data.get("server"))
            + "<h3>FPS over time (current FPS, last 10 s)</h3>" + fps_chart(chart_points)
            + (capacity_charts(capacity) if capacity else "")
            + "</section>")


def insert_section(page, section):
    """``page`` with ``section`` inserted before its last ``</body>`` (appended if there is none)."""
    at = page.rfind("</body>")
    return page + section if at < 0 else page[:at] + section + page[at:]


def add_to_file(path, data, chart_points, notes=(), capacity=None):
    """Insert the TFS section (``report_section``) into the HTML report Locust wrote at ``path``."""
    with open(path, encoding="utf-8") as f:
        page = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(insert_section(page, report_section(data, chart_points, notes, capacity)))
