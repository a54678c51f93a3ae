"""The rows of the web UI's TFS tabs: FPS and exact percentiles per request name and Aggregated; the
servers' own figures per ``--server-metrics`` URL.

Imports neither Locust nor Flask: testable in any process.
"""

from tfs_user.results import report
from tfs_user.server_metrics.entries import TIMES, estimate_text

ROUNDED_KEYS = {"fps": 1, "rps": 1, **{key: 3 for key in report.LATENCY_KEYS}}
"""Decimals shown in the TFS tab: rates to 0.1, ms to the microsecond."""
TABLE_COLUMNS = [
    ("name", "Name"), ("requests", "Requests"), ("failures", "Fails"), ("frames", "Frames"),
    ("current_fps", "Current FPS"), ("fps", "FPS"), ("rps", "Req/s"),
    *[(key.replace(".", ""), title) for title, key in report.CSV_COLUMNS if key in report.LATENCY_KEYS],
]
"""(key, title) of the TFS tab; keys without dots (the web UI reads them as JSON paths)."""


def table_rows(run):
    """The TFS tab's rows: report.summary rows plus ``current_fps``; ms to 3 decimals, rates to 1."""
    data = report.summary(run.recorder)
    rows = []
    for row in data["rows"]:
        if not row["requests"] and row["name"] != report.AGGREGATED:
            continue
        out = {"name": row["name"], "requests": row["requests"], "failures": row["failures"],
               "frames": row["frames"], "current_fps": round(run.meter.current(row["name"]), 1)}
        out.update({key.replace(".", ""): None if row[key] is None else round(row[key], digits)
                    for key, digits in ROUNDED_KEYS.items()})
        rows.append(out)
    return rows


SERVER_COLUMNS = [
    ("url", "URL"), ("server", "Server"), ("requests", "Server requests"), ("client_requests", "Ours"),
    ("failures", "Server failures"),
    *[(f"{key[:-3]}_{q}", f"{name.capitalize()} {q} ms") for key, name in TIMES for q in ("mean", "p50", "p99")],
    ("network_client_ms", "Network + client ms"), ("note", "Note"),
]
"""(key, title) of the server metrics tab (keys without dots)."""


def server_rows(by_url):
    """The server metrics tab's rows from {url: entry} (``tfs_user.server_metrics.entries``): ms to 3 decimals,
    a p50/p99 in a wide bucket as its bucket's text (``<= 5.000``), None where the server publishes nothing; the note is the error or the count warning."""
    rows = []
    for url, e in by_url.items():
        row = {"url": url, "server": e["server"], "requests": e["requests"], "client_requests": e["client_requests"],
               "failures": e["failures"], "note": e["error"] or e["warning"] or ""}
        for key, _ in TIMES:
            for q in ("mean", "p50", "p99"):
                value = e[key][q]
                wide = None if q == "mean" else estimate_text(e[key], q)  # a p50/p99 in a wide bucket: the bucket
                row[f"{key[:-3]}_{q}"] = round(value, 3) if value is not None else wide
        value = e["network_client_ms"]
        row["network_client_ms"] = None if value is None else round(value, 3)
        rows.append(row)
    return rows
