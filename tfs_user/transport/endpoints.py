"""Several endpoints: which one a user talks to, and how its figures and failures name it.

``--host a:8500,b:8500`` gives E endpoints (``Settings.endpoints``). Users are spread
round-robin and keep one channel to one endpoint for their life:

    endpoint index = (worker index + user number - 1) mod E

``user number`` counts the users a process started (1, 2, ... in start order,
``TfsRun.next_user_number``); ``worker index`` is Locust's (0, 1, ... per worker process
of a distributed run or ``--processes``; 0 for a local run). The offset by worker index
keeps the spread even across processes: with one user per worker, worker w's user goes to
endpoint w mod E instead of every worker's first user going to the first endpoint. With the
same number of users u per worker, each endpoint gets floor(u*P/E) or one more.

Figures: the Locust request name stays ``Predict MODEL`` (Locust's own table, charts and
failures keep one name); our statistics record each measured request under
``Predict MODEL @ HOST:PORT`` (``row_name``), so the TFS summary, CSV, JSON and web UI tab
show one row per endpoint beside ``Aggregated``. A ``dns:///`` target is one endpoint
(gRPC balances over its addresses), and one endpoint alone adds nothing to the names.
"""


def endpoint_index(user_number, endpoints, worker_index=0):
    """Index into ``endpoints`` (a tuple of targets) for user ``user_number`` (1-based) of worker ``worker_index``."""
    return (worker_index + user_number - 1) % len(endpoints)


def label(endpoints, index):
    """What rows and failures call endpoint ``index``: its target, or "" when there is only one endpoint."""
    return endpoints[index] if len(endpoints) > 1 else ""


def row_name(request_name, endpoint):
    """Our statistics' name of a request: ``Predict MODEL @ HOST:PORT``, or the request name alone without an endpoint."""
    return f"{request_name} @ {endpoint}" if endpoint else request_name


def worker_index(runner):
    """Locust's index of this worker process (0 on a local runner or before the master assigned one)."""
    return int(getattr(runner, "worker_index", 0) or 0)


def channel_facts(settings_list):
    """What the summary header lists about connections, from the run's Settings (one per user class).

    Returns ``{"endpoints": [target, ...], "grpc_options": {key: value}}`` (JSON-ready; every
    target once, in order; the options ``--grpc-option`` gave, later classes overriding earlier).
    """
    endpoints, options = [], {}
    for settings in settings_list:
        endpoints.extend(e for e in settings.endpoints if e not in endpoints)
        options.update(dict(settings.grpc_options))
    return {"endpoints": endpoints, "grpc_options": options}


def header_lines(data):
    """Summary header lines: the endpoints when there are several, and the gRPC channel options when any were given."""
    lines = []
    if len(data.get("endpoints") or ()) > 1:
        lines.append(f"Endpoints ({len(data['endpoints'])}, users round-robin): {', '.join(data['endpoints'])}")
    if data.get("grpc_options"):
        lines.append("gRPC channel options: " + ", ".join(f"{k}={v}" for k, v in data["grpc_options"].items()))
    return lines
