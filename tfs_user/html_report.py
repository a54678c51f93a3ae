"""The TFS section of Locust's HTML report (``--html`` and "Download Report"): summary table, FPS chart."""

import html

from tfs_user import report


def fps_svg(points, width=900, height=220):
    """An SVG line chart of ``points`` [(wall time s, FPS)]: FPS axis from 0, time axis in s from the first point."""
    pad_left, pad_bottom, pad_top = 60, 30, 10
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
                f'<text x="{pad_left}" y="{height // 2}" font-size="14">no FPS samples yet</text></svg>')
    step = max(1, len(points) // 900)
    pts = list(points)[::step]
    t0, t1 = pts[0][0], pts[-1][0]
    top = max(f for _, f in pts) * 1.1 or 1.0
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top

    def xy(t, f):
        return f"{pad_left + (t - t0) / (t1 - t0) * plot_w:.1f},{pad_top + plot_h - f / top * plot_h:.1f}"

    line = " ".join(xy(t, f) for t, f in pts)
    axis = f"{pad_left},{pad_top} {pad_left},{pad_top + plot_h} {pad_left + plot_w},{pad_top + plot_h}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="FPS over time" font-family="sans-serif" font-size="12">'
            f'<polyline points="{axis}" fill="none" stroke="#888"/>'
            f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
            f'<text x="{pad_left - 5}" y="{pad_top + 10}" text-anchor="end">{top:.0f}</text>'
            f'<text x="{pad_left - 5}" y="{pad_top + plot_h}" text-anchor="end">0</text>'
            f'<text x="{pad_left - 5}" y="{pad_top + plot_h / 2}" text-anchor="end">FPS</text>'
            f'<text x="{pad_left}" y="{height - 8}">0 s</text>'
            f'<text x="{pad_left + plot_w}" y="{height - 8}" text-anchor="end">{t1 - t0:.0f} s</text>'
            f'</svg>')


def report_section(data, chart_points, notes=()):
    """HTML section for Locust's report: the TFS summary table (``report.summary`` data) and the FPS chart."""
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
            + "<h3>FPS over time (current FPS, last 10 s)</h3>" + fps_svg(chart_points)
            + "</section>")


def insert_section(page, section):
    """``page`` with ``section`` inserted before its last ``</body>`` (appended if there is none)."""
    at = page.rfind("</body>")
    return page + section if at < 0 else page[:at] + section + page[at:]


def add_to_file(path, data, chart_points, notes=()):
    """Insert the TFS section (``report_section``) into the HTML report Locust wrote at ``path``."""
    with open(path, encoding="utf-8") as f:
        page = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(insert_section(page, report_section(data, chart_points, notes)))
