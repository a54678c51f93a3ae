"""What the reports show of a server's own figures over a window: one entry per ``--server-metrics`` URL.

An entry (a JSON-ready dict, ``entry``) holds the server's request and failure counts, ``request_ms``,
``queue_ms`` and ``inference_ms`` (each ``mean``, ``p50``, ``p99`` in ms, and the bucket bounds of the
two estimates), our count beside the server's (the cross-check), and client latency minus the server's
request time (network + client), or the ``error`` that left it empty. Used for the test
(``PREFIX_tfs_server.csv``, JSON key ``server``, console lines) and each sweep step (step rows' ``server``
and ``server_*`` columns). None where the server publishes no figure: never 0 in its place.
"""

import csv
from dataclasses import dataclass

from tfs_user.server_metrics.scrape import MetricsError

TIMES = (("request_ms", "request"), ("queue_ms", "queue"), ("inference_ms", "inference"))
"""(entry key, what the console and CSV call it) of the three server times."""
STEP_KEYS = ("server_requests", "server_request_ms", "server_queue_ms", "server_inference_ms")
"""Keys a step row gets (``step_columns``): the server's count and mean times over all URLs."""


@dataclass(frozen=True)
class ClientSide:
    """Our side of the window: ``requests`` we sent that the server should count in it, ``in_flight``
    by how many the counts may differ (requests in flight at the window's edges, or sent while an edge
    was read: the entry's ``count_slack``), ``mean_ms`` our
    mean latency of successful requests (None: none), ``what`` the words for ``requests``."""

    requests: int
    in_flight: int
    mean_ms: float | None
    what: str = "measured"


def _stat(stat):
    if stat is None:
        return {"mean": None, "p50": None, "p99": None, "p50_bucket_ms": None, "p99_bucket_ms": None}
    bucket = lambda bounds: None if bounds is None else [bounds[0], bounds[1]]
    return {"mean": stat.mean, "p50": stat.p50, "p99": stat.p99, "p50_bucket_ms": bucket(stat.p50_bucket),
            "p99_bucket_ms": bucket(stat.p99_bucket)}


def entry(url, start, end, model, client):
    """The entry of ``url`` over the window from Edge page ``start`` to ``end`` (Snapshot or MetricsError)
    for ``model`` (str), beside ``client`` (ClientSide)."""
    out = {"url": url, "server": None, "model": model, "requests": None, "failures": None,
           "client_requests": client.requests, "count_gap": None, "count_slack": client.in_flight,
           **{key: _stat(None) for key, _ in TIMES}, "network_client_ms": None, "server_batch": None,
           "gauges": {}, "notes": [], "error": None, "warning": None}
    failed = next((page for page in (start, end) if isinstance(page, MetricsError) or page is None), False)
    if failed is not False:
        out["error"] = str(failed) if failed is not None else f"server metrics {url}: not scraped"
        return out
    from tfs_user.server_metrics.servers import NoFigures, server_figures  # prometheus_client: when there are figures

    figures = server_figures(start, end, model)
    if isinstance(figures, NoFigures):
        out["error"] = f"server metrics {url}: {figures.reason}"
        return out
    out.update(server=figures.server, requests=figures.requests, failures=figures.failures,
               server_batch=figures.server_batch, gauges=dict(figures.gauges), notes=list(figures.notes),
               **{key: _stat(getattr(figures, key)) for key, _ in TIMES})
    request_mean = out["request_ms"]["mean"]
    if client.mean_ms is not None and request_mean is not None:
        out["network_client_ms"] = client.mean_ms - request_mean
    if figures.requests is not None:
        counted = figures.requests + (figures.failures or 0)
        out["count_gap"] = gap = counted - client.requests
        if abs(gap) > client.in_flight:
            out["warning"] = (f"server metrics {url}: the server counted {counted} requests of model {model!r}, "
                              f"we sent {client.requests} ({client.what}): a gap of {gap:+d} is more than the "
                              f"{client.in_flight} the window's edges allow (requests in flight, or sent while an "
                              "edge was read): other clients of this model, or requests lost on the way")
    return out


def entries(urls, start_edge, end_edge, model, clients):
    """{url: entry} for the window between two Edges; ``clients`` {url: ClientSide}."""
    pick = lambda edge, url: None if edge is None else edge.pages.get(url)
    return {url: entry(url, pick(start_edge, url), pick(end_edge, url), model, clients[url]) for url in urls}


def _ms(value):
    return "-" if value is None else f"{value:.3f}"


def _time_text(name, stat):
    def estimate(q):
        bounds = stat[f"{q}_bucket_ms"]
        where = "" if bounds is None else f" (bucket {bounds[0]:.3f}-{bounds[1]:.3f})"
        return f"{q} {_ms(stat[q])}{where}"
    return f"{name} mean {_ms(stat['mean'])}, {estimate('p50')}, {estimate('p99')}"


def lines(by_url, scraped_by):
    """Console lines of a test's entries ({url: entry}); ``scraped_by`` says which process scraped."""
    if not by_url:
        return []
    out = [f"Server metrics (each server's own figures over the test, scraped by {scraped_by}; ms; "
           "p50/p99 are estimated inside a histogram bucket, whose bounds are shown):"]
    for e in by_url.values():
        url = e["url"]
        if e["error"]:
            out.append(f"  {url}: no figures ({e['error'].replace(f'server metrics {url}: ', '')})")
            continue
        counts = "-" if e["requests"] is None else str(e["requests"])
        out.append(f"  {url} ({e['server']}, model {e['model']}): {counts} requests, "
                   f"{'-' if e['failures'] is None else e['failures']} failures; we sent {e['client_requests']}")
        out.append("    " + "; ".join(_time_text(name, e[key]) for key, name in TIMES))
        out.append(f"    client latency minus server request time (network + client), means: {_ms(e['network_client_ms'])} ms"
                   + ("" if e["server_batch"] is None else f"; server batch {e['server_batch']:.2f}"))
        if e["notes"]:
            out.append("    notes: " + "; ".join(e["notes"]))
    out.extend(f"Warning: {e['warning']}" for e in by_url.values() if e["warning"])
    return out


CSV_COLUMNS = [("Window", None), ("URL", "url"), ("Server", "server"), ("Model", "model"), ("Requests", "requests"),
               ("Failures", "failures"), ("Client requests", "client_requests"), ("Count gap", "count_gap"),
               *[(f"{name.capitalize()} {q} ms", (key, q)) for key, name in TIMES for q in ("mean", "p50", "p99")],
               ("Network+client ms", "network_client_ms"), ("Server batch", "server_batch"), ("Error", "error"),
               ("Notes", "notes")]
"""Columns of ``PREFIX_tfs_server.csv``: one row per URL for the test (Window ``test``), then per step (``step N``)."""


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(value)
    return str(value) if isinstance(value, (str, int)) else f"{value:.3f}"


def csv_rows(windows):
    """Rows (lists of str) of ``PREFIX_tfs_server.csv`` for ``windows`` [(window name, {url: entry})]."""
    rows = [[title for title, _ in CSV_COLUMNS]]
    for window, by_url in windows:
        for e in by_url.values():
            cells = [window]
            for _, key in CSV_COLUMNS[1:]:
                cells.append(_cell(e[key[0]][key[1]] if isinstance(key, tuple) else e[key]))
            rows.append(cells)
    return rows


def write_csv(path, windows, write_atomically):
    """Write ``csv_rows(windows)`` to ``path`` with ``write_atomically(path, write)`` (tfs_user.report's)."""
    write_atomically(path, lambda f: csv.writer(f).writerows(csv_rows(windows)))


def step_columns(by_url):
    """A step row's ``server_*`` values from its entries: requests summed over the URLs, mean times
    weighted by each URL's requests; None where no URL has the figure."""
    have = [e for e in by_url.values() if e["requests"] is not None]
    out = {"server_requests": sum(e["requests"] for e in have) if have else None}
    for key, _ in TIMES:
        pairs = [(e[key]["mean"], e["requests"] or 0) for e in by_url.values() if e[key]["mean"] is not None]
        weight = sum(w for _, w in pairs)
        if len(pairs) == 1:  # one URL's mean as it is: m * w / w may differ from it in the last bit
            out[f"server_{key}"] = pairs[0][0]
        elif pairs and weight:
            out[f"server_{key}"] = sum(m * w for m, w in pairs) / weight
        else:
            out[f"server_{key}"] = None
    return out
