"""A model server's own Prometheus metrics over a measured window (``--server-metrics URL``).

scrape(url) -> text; parse(text) -> Snapshot; server_figures(start, end, model) -> ServerFigures
(or NoFigures and its reason). No Locust, no gRPC.
"""

from tfs_user.server_metrics.parse import Snapshot, WindowError, parse
from tfs_user.server_metrics.scrape import MetricsError, scrape
from tfs_user.server_metrics.servers import NoFigures, ServerFigures, Stat, server_figures

__all__ = ["MetricsError", "NoFigures", "ServerFigures", "Snapshot", "Stat", "WindowError", "parse", "scrape",
           "server_figures"]
