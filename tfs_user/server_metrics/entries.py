"""What the reports show of a server's own figures over a window: one entry per ``--server-metrics`` URL.

An entry (a JSON-ready dict, ``entry``) holds the server's request and failure counts, ``request_ms``,
``queue_ms`` and ``inference_ms`` (each ``mean``, ``p50``, ``p99`` in ms, and the bucket bounds of the
two estimates), our count beside the server's (the cross-check), and client latency minus the server's
request time (network + client), or the ``error`` that left it empty. Used for the test
(``PREFIX_tfs_server.csv``, JSON key ``server``, console lines) and each sweep step (step rows' ``server``
and ``server_*`` columns). None where the server publishes no figure: never 0 in its place.
"""

import csv
import math
from dataclasses import dataclass

from tfs_user.server_metrics.scrape import MetricsError

TIMES = (("request_ms", "request"), ("queue_ms", "queue"), ("inference_ms", "inference"))
"""(entry key, what the console and CSV call it) of the three server times every server is read for."""
MORE_TIMES = (("preprocess_ms", "preprocess"), ("postprocess_ms", "postprocess"))
"""Times only some servers publish (KServe's model steps): in the entry, JSON and CSV; console when there."""
ALL_TIMES = TIMES + MORE_TIMES
FAILURE_SHARE = 0.01
"""Network + client is left out when the server's request time includes failed calls and they are more than this
share of its calls: our latency is of successful requests only, so the difference would be of unlike things."""
NO_UPDATE = "a metrics page that does not update (a cache, a static file, another replica behind a load balancer)"
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
    """A Stat as JSON: open bounds (the +Inf bucket) are null, never Infinity (JSON has none)."""
    if stat is None:
        return {"mean": None, "p50": None, "p99": None, "p50_bucket_ms": None, "p99_bucket_ms": None,
                "with_failures": None}
    bound = lambda value: None if math.isinf(value) else value
    bucket = lambda bounds: None if bounds is None else [bound(bounds[0]), bound(bounds[1])]
    return {"mean": stat.mean, "p50": stat.p50, "p99": stat.p99, "p50_bucket_ms": bucket(stat.p50_bucket),
            "p99_bucket_ms": bucket(stat.p99_bucket), "with_failures": stat.with_failures}


def entry(url, start, end, model, client):
    """The entry of ``url`` over the window from Edge page ``start`` to ``end`` (Snapshot or MetricsError)
    for ``model`` (str), beside ``client`` (ClientSide)."""
    out = {"url": url, "server": None, "model": model, "requests": None, "failures": None,
           "client_requests": client.requests, "count_gap": None, "count_slack": client.in_flight,
           **{key: _stat(None) for key, _ in ALL_TIMES}, "network_client_ms": None, "server_batch": None,
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
               **{key: _stat(getattr(figures, key)) for key, _ in ALL_TIMES})
    _network_client(out, figures, client)
    if figures.requests is not None:
        counted = figures.requests + (figures.failures or 0)
        out["count_gap"] = gap = counted - client.requests
        if abs(gap) > client.in_flight:
            out["warning"] = _gap_warning(url, model, counted, client, start.samples == end.samples)
    return out


def _network_client(out, figures, client):
    """Our mean latency minus the server's mean request time, unless that would subtract unlike things."""
    request = figures.request_ms
    if client.mean_ms is None or request is None or request.mean is None:
        return
    calls = (figures.requests or 0) + (figures.failures or 0)
    if request.with_failures and (figures.failures is None or figures.failures > FAILURE_SHARE * calls):
        failed = "an unknown number of" if figures.failures is None else f"{figures.failures} of {calls}"
        out["notes"].append(f"network + client: left out, the server's request time includes {failed} failed calls "
                            "and our latency is of successful requests")
        return
    out["network_client_ms"] = client.mean_ms - request.mean


def _gap_warning(url, model, counted, client, unchanged):
    """The count cross-check's warning: which way the gap runs and what explains that direction."""
    gap = counted - client.requests
    said = (f"server metrics {url}: the server counted {counted} requests of model {model!r}, we sent "
            f"{client.requests} ({client.what}): ")
    edges = (f"more than the {client.in_flight} the window's edges allow (requests in flight, or sent while an edge "
             "was read)")
    if unchanged:
        return said + f"its page did not change at all between the two readings: {NO_UPDATE}"
    if gap < 0:
        return said + f"{-gap} fewer, {edges}: requests lost on the way, or {NO_UPDATE}"
    return said + f"{gap} more, {edges}: other clients of this model, or retries"


def entries(urls, start_edge, end_edge, model, clients):
    """{url: entry} for the window between two Edges; ``clients`` {url: ClientSide}."""
    pick = lambda edge, url: None if edge is None else edge.pages.get(url)
    return {url: entry(url, pick(start_edge, url), pick(end_edge, url), model, clients[url]) for url in urls}


def _ms(value):
    return "-" if value is None else f"{value:.3f}"


def estimate_text(stat, q):
    """A p50/p99 as the console, CSV and web UI show it (ms): the number, or where it is None its bucket
    (``<= 5.000`` for the first bucket, ``> 10000.000`` for +Inf, ``10.000-25.000`` for a wide one), or None."""
    value, bounds = stat[q], stat[f"{q}_bucket_ms"]
    if value is not None:
        return f"{value:.3f}"
    if bounds is None:
        return None
    low, high = bounds
    if high is None:
        return f"> {low:.3f}"
    return f"<= {high:.3f}" if low == 0 else f"{low:.3f}-{high:.3f}"


def _time_text(name, stat):
    def estimate(q):
        bounds, value = stat[f"{q}_bucket_ms"], stat[q]
        text = estimate_text(stat, q) or "-"
        if value is None or bounds is None:
            return f"{q} {text}"
        high = "+Inf" if bounds[1] is None else f"{bounds[1]:.3f}"
        return f"{q} {text} (bucket {bounds[0]:.3f}-{high})"
    failed = " (failed calls included)" if stat["with_failures"] else ""
    return f"{name}{failed} mean {_ms(stat['mean'])}, {estimate('p50')}, {estimate('p99')}"


def lines(by_url, scraped_by):
    """Console lines of a test's entries ({url: entry}); ``scraped_by`` says which process scraped."""
    if not by_url:
        return []
    out = [f"Server metrics (each server's own figures over the test, scraped by {scraped_by}; ms; "
           "p50/p99 are estimated inside a histogram bucket, whose bounds are shown; where the bucket is wider "
           "than a factor of 2, only the bucket):"]
    for e in by_url.values():
        url = e["url"]
        if e["error"]:
            out.append(f"  {url}: no figures ({e['error'].replace(f'server metrics {url}: ', '')})")
            continue
        counts = "-" if e["requests"] is None else str(e["requests"])
        out.append(f"  {url} ({e['server']}, model {e['model']}): {counts} requests, "
                   f"{'-' if e['failures'] is None else e['failures']} failures; we sent {e['client_requests']}")
        out.append("    " + "; ".join(_time_text(name, e[key]) for key, name in TIMES))
        more = [_time_text(name, e[key]) for key, name in MORE_TIMES if e[key]["mean"] is not None]
        if more:
            out.append("    " + "; ".join(more))
        out.append(f"    client latency minus server request time (network + client), means: {_ms(e['network_client_ms'])} ms"
                   + ("" if e["server_batch"] is None else f"; server batch {e['server_batch']:.2f}"))
        if e["notes"]:
            out.append("    notes: " + "; ".join(e["notes"]))
    out.extend(f"Warning: {e['warning']}" for e in by_url.values() if e["warning"])
    return out


CSV_COLUMNS = [("Window", None), ("URL", "url"), ("Server", "server"), ("Model", "model"), ("Requests", "requests"),
               ("Failures", "failures"), ("Client requests", "client_requests"), ("Count gap", "count_gap"),
               *[(f"{name.capitalize()} {q} ms", (key, q)) for key, name in ALL_TIMES for q in ("mean", "p50", "p99")],
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
                if isinstance(key, tuple):
                    stat, q = e[key[0]], key[1]
                    cells.append(_cell(stat[q]) if q == "mean" else estimate_text(stat, q) or "")
                else:
                    cells.append(_cell(e[key]))
            rows.append(cells)
    return rows


def write_csv(path, windows, write_atomically):
    """Write ``csv_rows(windows)`` to ``path`` with ``write_atomically(path, write)`` (tfs_user.results.report's)."""
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
