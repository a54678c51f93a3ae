"""A model server's own Prometheus metrics over a measured window (``--server-metrics URL``).

scrape(url) -> text; parse(text) -> Snapshot; server_figures(start, end, model) -> ServerFigures
(or NoFigures and its reason); watch.Watch scrapes at a window's edges; entries turns figures into
what the reports show. No Locust, no gRPC. Names load on first use (PEP 562): prometheus_client
imports urllib and ssl, which the report modules that import ``entries`` do not need.
"""

import importlib

from tfs_user.server_metrics.scrape import MetricsError, scrape

_WHERE = {"Snapshot": "snapshots", "WindowError": "snapshots", "parse": "snapshots",
          "NoFigures": "servers", "ServerFigures": "servers", "Stat": "servers", "server_figures": "servers"}

__all__ = sorted([*_WHERE, "MetricsError", "scrape"])


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
