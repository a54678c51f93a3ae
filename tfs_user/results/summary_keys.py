"""What a JSON summary carries for a comparison with a later run (``tfs_user.results.compare``).

- ``format``: ``{"name": FORMAT_NAME, "version": FORMAT_VERSION}``; a summary without it comes from
  before comparisons existed and cannot be compared.
- each row (and each sweep step): ``hdr_histogram``, the exact latency histogram (microseconds,
  3 significant digits) in HdrHistogram's standard compressed base64 form
  (``HdrHistogram.decode(text)`` reads it back, as do Java/Go/C HdrHistogram), and ``windows``,
  the per-window figures (``tfs_user.results.windows``);
- ``run``: what was run (``run_facts``) and on what host.
"""

import hashlib
import os
import platform
import socket

FORMAT_NAME = "tfs-locust summary"
FORMAT_VERSION = 3
"""1 = before comparisons (no ``format`` key); 2 = histograms, windows and ``run``; 3 = ``run`` names the whole
load: ``arrival`` (closed loop, an open loop's kind, a trace), ``trace`` and each user class's ``models`` entry
(version 2 recorded a trace run as a closed loop and only the first class's model and batch size)."""
CLOSED_LOOP = "closed loop"
"""``run["arrival"]`` of a closed loop (each user sends when its last answer came)."""


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


def mix_key(pairs):
    """A weighted mix as a load, whatever its order and scale: ((8, 3.0), (1, 6.0)) -> '1:2,8:1' (values sorted,
    weights divided by the smallest); one entry -> its value alone ('8'); () -> ''."""
    if len(pairs) <= 1:
        return str(pairs[0][0]) if pairs else ""
    low = min(weight for _, weight in pairs)
    return ",".join(f"{value}:{weight / low:.6g}" for value, weight in sorted(pairs))


def model_entries(settings_list, weights=None):
    """The JSON ``run["models"]``: per user class (``settings_list``: Settings; ``weights``: the classes' Locust
    weights, default 1 each) ``model`` (name), ``batch_size`` (``mix_key`` of its batch sizes: '8', '1:2,8:1'),
    ``data_mix`` (``mix_key`` of its data files' names when it mixes several, else ''), ``share`` (its weight over
    all classes', 0..1, 6 decimals) and ``mix_seed`` (when it mixes, else None)."""
    weights = list(weights) if weights is not None else [1.0] * len(settings_list)
    total = sum(weights) or 1.0
    return [{"model": s.model_name,
             "batch_size": mix_key(s.batch_mix or ((s.batch_size, 1.0),)),
             "data_mix": mix_key(tuple((os.path.basename(path), w) for path, w in s.data_mix)) if len(s.data_mix) > 1 else "",
             "share": round(weight / total, 6),
             "mix_seed": s.mix_seed if s.mixed else None} for s, weight in zip(settings_list, weights)]


def trace_facts(trace, path):
    """The JSON ``run["trace"]`` of a ``tfs_user.capacity.traces.Trace`` read from ``path``: ``file`` (its name),
    ``requests`` and ``sha256``, the digest of the requests it holds (send times, models, batch sizes as read:
    a gzip copy or another comment is the same trace)."""
    digest = hashlib.sha256()
    for i, t in enumerate(trace.times):
        model = trace.models[i] if trace.models else ""
        size = trace.batch_sizes[i] if trace.batch_sizes else ""
        digest.update(f"{t!r},{model},{size}\n".encode())
    return {"file": os.path.basename(path), "requests": len(trace.times), "sha256": digest.hexdigest()}


def arrival_of(options):
    """``run["arrival"]``: ``trace`` (--arrival-trace), an open loop's kind (--arrival: poisson, constant, gamma:CV)
    at an --arrival-rate or in a rate sweep, else CLOSED_LOOP."""
    from tfs_user.capacity.plans import parse_sweep

    if getattr(options, "arrival_trace", ""):
        return "trace"
    sweep = getattr(options, "sweep", "") or ""
    rate_sweep = bool(sweep) and parse_sweep(sweep).kind == "rate"
    if float(getattr(options, "arrival_rate", 0.0) or 0.0) > 0 or rate_sweep:
        return str(getattr(options, "arrival", "poisson"))
    return CLOSED_LOOP


def run_facts_of(run, workers=None):
    """``run_facts`` of a ``tfs_user.run.TfsRun``: its user classes' Settings and weights, its trace as read."""
    environment = run.environment
    settings, weights = [], []
    for user_class in run.tfs_user_classes():
        try:
            settings.append(run.settings_by_class.get(user_class) or user_class.make_settings(environment))
        except ValueError:  # a bad option: reported where the users need it
            continue
        weights.append(float(getattr(user_class, "weight", 1) or 1))
    trace = run.capacity.config.trace if run.capacity is not None else None
    return run_facts(settings, environment.parsed_options, workers, weights=weights, trace=trace)


def run_facts(settings_list, options, workers=None, weights=None, trace=None):
    """The JSON ``run`` key: what was run (protocol, transport, each user class's model, batch sizes, data mix
    and share, the load: users, ``arrival``, rate, trace, step plan) and where (tool version, host name, CPU
    count, load average at the end). ``settings_list``: the run's Settings (one per user class); ``options``:
    Locust's parsed options; ``workers``: a master's worker count; ``weights``: the classes' Locust weights;
    ``trace``: --arrival-trace as read (``traces.Trace``; read here when None). ``model`` and ``batch_size`` are
    the first class's (its first batch size); ``models`` has them all."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    from tfs_user.settings import Settings

    first = settings_list[0] if settings_list else Settings()
    sweep = getattr(options, "sweep", "") or ""
    trace_path = getattr(options, "arrival_trace", "") or ""
    if trace_path and trace is None:
        from tfs_user.capacity.traces import read_trace

        trace = read_trace(trace_path)
    models = model_entries(settings_list, weights)
    seeds = sorted({m["mix_seed"] for m in models if m["mix_seed"] is not None})
    return {
        "protocol": first.protocol,
        "transport": "http" if first.http else "grpc",
        "model": first.model_name,
        "model_version": first.model_version,
        "signature": first.signature_name,
        "batch_size": first.batch_size,
        "models": models,
        "mix_seed": seeds[0] if len(seeds) == 1 else seeds or None,
        "user_classes": len(settings_list),
        "users": getattr(options, "num_users", None),
        "arrival": arrival_of(options),
        "arrival_rate": float(getattr(options, "arrival_rate", 0.0) or 0.0),
        "trace": trace_facts(trace, trace_path) if trace_path else None,
        "trace_speedup": float(getattr(options, "trace_speedup", 1.0)) if trace_path else None,
        "trace_loop": bool(getattr(options, "trace_loop", False)) if trace_path else None,
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
