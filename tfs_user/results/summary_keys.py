"""What a JSON summary carries for a comparison with a later run (``tfs_user.results.compare``).

- ``format``: ``{"name": FORMAT_NAME, "version": FORMAT_VERSION}``; a summary without it comes from
  before comparisons existed and cannot be compared.
- each row (and each sweep step): ``hdr_histogram``, the exact latency histogram (microseconds,
  3 significant digits) in HdrHistogram's standard compressed base64 form
  (``HdrHistogram.decode(text)`` reads it back, as do Java/Go/C HdrHistogram), and ``windows``,
  the per-window figures (``tfs_user.results.windows``);
- ``run``: what was run (``run_facts``) and on what host.
"""

import os
import platform
import socket

FORMAT_NAME = "tfs-locust summary"
FORMAT_VERSION = 2
"""1 = before comparisons (no ``format`` key); 2 = histograms, windows and ``run``."""


def exact_keys(stats):
    """``hdr_histogram`` (base64 text; None without successes) and ``windows`` (``{"width_s", "rows"}``) of a
    windowed ``tfs_user.stats.LatencyStats``."""
    windows = stats.windows
    return {
        "hdr_histogram": stats.histogram.encode().decode("ascii") if stats.ok else None,
        "windows": {"width_s": windows.width_s if windows else None,
                    "rows": windows.figures(stats.first_start, stats.last_end) if windows and stats.requests else []},
    }


def add_to_rows(data, recorder):
    """Add ``exact_keys`` to each row of ``data`` (``report.summary(recorder)``) and the ``format`` key."""
    by_name = dict(recorder.names)
    total = recorder.total(windowed=True)
    for row in data["rows"]:
        stats = total if row["name"] not in by_name else by_name[row["name"]]
        row.update(exact_keys(stats))
    data["format"] = {"name": FORMAT_NAME, "version": FORMAT_VERSION}


def tool_version():
    """tfs-locust's version: the installed distribution's, else the source tree's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("tfs-locust")
    except metadata.PackageNotFoundError:
        pass
    try:
        import tomllib

        path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "pyproject.toml")
        with open(path, "rb") as f:
            return tomllib.load(f)["project"]["version"]
    except (OSError, KeyError, ValueError):
        return "unknown"


def run_facts(settings_list, options, workers=None):
    """The JSON ``run`` key: what was run (protocol, transport, model, batch size, load and step plan) and
    where (tool version, host name, CPU count, load average at the end). ``settings_list``: the run's
    Settings (one per user class); ``options``: Locust's parsed options; ``workers``: a master's worker count."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    from tfs_user.settings import Settings

    first = settings_list[0] if settings_list else Settings()
    sweep = getattr(options, "sweep", "") or ""
    return {
        "protocol": first.protocol,
        "transport": "http" if first.http else "grpc",
        "model": first.model_name,
        "model_version": first.model_version,
        "signature": first.signature_name,
        "batch_size": first.batch_size,
        "user_classes": len(settings_list),
        "users": getattr(options, "num_users", None),
        "arrival_rate": float(getattr(options, "arrival_rate", 0.0) or 0.0),
        "sweep": sweep,
        "step_time": getattr(options, "step_time", "") if sweep else "",
        "processes": getattr(options, "processes", None),
        "workers": workers,
        "tool_version": tool_version(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "load_average": load,
    }
