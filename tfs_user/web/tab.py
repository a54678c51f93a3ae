"""The rows of the web UI's TFS tab (FPS and exact percentiles per request name and Aggregated).

Imports neither Locust nor Flask: testable in any process.
"""

from tfs_user import report

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
