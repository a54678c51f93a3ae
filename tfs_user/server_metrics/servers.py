"""What each model server publishes, turned into the figures of one model over a window.

``server_figures(start, end, model)`` takes the Snapshots read at the start and the end of the
window. Names are as the servers publish them (see snapshots.Snapshot for ``_total``):

- TF Serving (tensorflow_serving/servables/tensorflow/util.cc, batching/batching_session.cc):
  ``:tensorflow:serving:request_count`` {model_name, status}, histograms in microseconds
  ``:tensorflow:serving:request_latency`` {model_name, API, entrypoint} (successful requests only),
  ``:tensorflow:serving:runtime_latency`` {model_name, API, runtime}, and with batching on
  ``:tensorflow:serving:batching_session:queuing_latency`` {thread_pool_name}: per thread pool,
  not per model.
- OVMS (docs/metrics.md): counters ``ovms_requests_success`` / ``ovms_requests_fail``
  {api, interface, method, name, version}, histograms in microseconds ``ovms_request_time_us``
  {interface, name, version}, ``ovms_inference_time_us``, ``ovms_wait_for_infer_req_time_us``
  {name, version}; gauges ``ovms_current_requests``, ``ovms_infer_req_queue_size``.
- Triton (docs/user_guide/metrics.md): counters {model, version} ``nv_inference_request_success``,
  ``nv_inference_request_failure`` (+ reason), ``nv_inference_count``, ``nv_inference_exec_count``
  and cumulative microseconds ``nv_inference_request_duration_us``, ``nv_inference_queue_duration_us``,
  ``nv_inference_compute_infer_duration_us`` (mean = delta microseconds / delta successes; no
  percentiles); gauges ``nv_inference_pending_request_count``, ``nv_gpu_utilization`` {gpu_uuid}.
- MLServer (mlserver/handlers/dataplane.py, py-grpc-prometheus): counters {model, version}
  ``model_infer_request_success`` / ``model_infer_request_failure``, summary in seconds
  ``model_infer_request_duration`` (count and sum only), and for the whole server the histogram in
  seconds ``grpc_server_handling_seconds`` {grpc_type, grpc_service, grpc_method}. Both time failed calls
  too, and MLServer publishes no time of successful calls alone.
- KServe's Python model server (kserve/metrics.py, kserve/model.py; read at 0.21): histograms in seconds
  {model_name} ``request_preprocess_seconds``, ``request_predict_seconds``, ``request_postprocess_seconds``
  (prometheus_client's default buckets, 5 ms .. 10 s), no counter. Preprocess and predict observe every call
  that reached the model, failed ones too; postprocess only the calls whose predict returned. So calls =
  predict's count, successes = postprocess's, failures = the difference; calls refused before the model
  (unknown model, undecodable body) are in none of them. No queue time and no time of the whole request.

Precision (``PRECISE_RATIO``): a p50/p99 is a number only when the bucket that holds it spans at most a
factor of 2 (upper bound <= 2 x lower bound); else (the first bucket, from 0; the +Inf bucket; a wide one
such as MLServer's 0-5 ms or KServe's 10-25 ms) it is None and only its bucket is told.
"""

from dataclasses import dataclass, field

from tfs_user.server_metrics.snapshots import WindowError, counter_delta, histogram_delta, quantile

INFER_METHODS = ("Predict", "ModelInfer")  # OVMS's method label for the inference calls
PRECISE_RATIO = 2.0
"""A p50/p99 estimate is given as a number only inside a bucket whose upper bound is at most this times its lower."""
REQUEST_WORDS = ("request", "infer", "predict", "latency", "duration", "inference", "model")
"""Words of metric names that look like a model server's request metrics (listed first when a page is not known)."""


@dataclass(frozen=True)
class Stat:
    """A time in milliseconds: ``mean``, and where the server publishes a histogram ``p50``/``p99``
    estimated inside a bucket, whose bounds (low_ms, high_ms; high may be math.inf) are
    ``p50_bucket``/``p99_bucket``; an estimate is None when its bucket is too wide (``PRECISE_RATIO``).
    ``with_failures``: the server's figure times failed calls too (it has none of successful calls alone)."""

    mean: float | None
    p50: float | None = None
    p99: float | None = None
    p50_bucket: tuple | None = None
    p99_bucket: tuple | None = None
    with_failures: bool = False


@dataclass(frozen=True)
class ServerFigures:
    """One model on one server over the window. None where the server does not publish a figure
    or it could not be computed (``notes`` says why); never 0 in its place.

    ``requests``/``failures``: inference requests the server counted (successes; failures); ``request_ms`` (the server's
    whole handling), ``queue_ms``, ``inference_ms``: Stat; ``server_batch``: mean batch the server ran
    (Triton: delta inference count / delta execution count); ``gauges``: values at the end scrape.
    """

    server: str
    model: str
    requests: int | None = None
    failures: int | None = None
    request_ms: Stat | None = None
    queue_ms: Stat | None = None
    inference_ms: Stat | None = None
    preprocess_ms: Stat | None = None
    postprocess_ms: Stat | None = None
    server_batch: float | None = None
    gauges: dict = field(default_factory=dict)
    notes: tuple = ()


@dataclass(frozen=True)
class NoFigures:
    """No figures: the metrics are of no known server, or do not name the model; ``reason`` says which."""

    reason: str


class _Window:
    """Start and end Snapshots, and the notes of what could not be computed."""

    def __init__(self, start, end):
        self.start, self.end, self.notes = start, end, []

    def count(self, name, match):
        """Delta of a counter as an int, or None (noted: absent or reset)."""
        value = self._delta(counter_delta, name, match)
        return None if value is None else int(round(value))

    def stat(self, name, match, to_ms, with_failures=False):
        """Stat from a histogram (``to_ms``: server unit -> ms), or None (noted); ``with_failures``: it times failed
        calls too."""
        histogram = self._delta(histogram_delta, name, match)
        if histogram is None:
            return None
        if histogram.count <= 0:
            self.notes.append(f"{name}: no observations in the window")
            return None
        (p50, b50), (p99, b99) = (_estimate(quantile(histogram, q), to_ms) for q in (0.50, 0.99))
        return Stat(histogram.sum / histogram.count * to_ms, p50, p99, b50, b99, with_failures)

    def calls(self, name, match):
        """Observations of a histogram over the window (its ``_count``), as an int, or None (noted)."""
        return self.count(f"{name}_count", match)

    def mean(self, sum_name, count_name, match, to_ms, with_failures=False):
        """Stat with only a mean: delta of a cumulative time / delta of a count, or None (noted)."""
        total, count = self._delta(counter_delta, sum_name, match), self._delta(counter_delta, count_name, match)
        if total is None or count is None:
            return None
        if count <= 0:
            self.notes.append(f"{sum_name}: no requests in the window")
            return None
        return Stat(total / count * to_ms, with_failures=with_failures)

    def gauges(self, names, match):
        """{name: sum of the end values of the series that match} for the names the end page has."""
        found = {name: self.end.series(name, match) for name in names}
        return {name: sum(values.values()) for name, values in found.items() if values}

    def _delta(self, how, name, match):
        try:
            value = how(self.start, self.end, name, match)
        except WindowError as e:
            self.notes.append(str(e))
            return None
        if value is None:
            self.notes.append(f"{name}: not published")
        return value


def _estimate(found, to_ms):
    """(value or None, bucket bounds) in ms of a ``quantile`` result; the value None when the bucket is wide."""
    if found is None:
        return None, None
    value, (low, high) = found
    precise = low > 0 and high <= PRECISE_RATIO * low  # also False for the +Inf bucket
    return (value * to_ms if precise else None), (low * to_ms, high * to_ms)


def _by(label, model, **more):
    """A labels matcher: ``label`` is the model, each other label in ``more`` passes its predicate."""
    return lambda labels: labels.get(label) == model and all(test(labels.get(k)) for k, test in more.items())


def _tf_serving(w, model):
    mine = _by("model_name", model)
    queue_names = [n for n in (":tensorflow:serving:batching_session:queuing_latency",
                               ":tensorflow:serving:saved_model_with_batching:queuing_latency")
                   if f"{n}_count" in w.end.names()]
    queue = w.stat(queue_names[0], lambda labels: True, 1e-3) if queue_names else None
    if queue_names:
        w.notes.append(f"queue_ms: {queue_names[0]} is for the whole batching thread pool, all models")
    else:
        w.notes.append("queue_ms: no batching queue metric (batching off)")
    count = ":tensorflow:serving:request_count"
    requests = w.count(count, _by("model_name", model, status=lambda s: s == "OK"))
    # one counter by status: a status series appears at its first request, so none but OK means 0 failures
    bad = _by("model_name", model, status=lambda s: s != "OK")
    failures = w.count(count, bad) if w.end.series(count, bad) else (0 if requests is not None else None)
    return dict(requests=requests, failures=failures,
                request_ms=w.stat(":tensorflow:serving:request_latency", mine, 1e-3),
                inference_ms=w.stat(":tensorflow:serving:runtime_latency", mine, 1e-3), queue_ms=queue)


def _ovms(w, model):
    mine, calls = _by("name", model), _by("name", model, method=lambda m: m in INFER_METHODS)
    return dict(requests=w.count("ovms_requests_success", calls), failures=w.count("ovms_requests_fail", calls),
                request_ms=w.stat("ovms_request_time_us", mine, 1e-3),
                queue_ms=w.stat("ovms_wait_for_infer_req_time_us", mine, 1e-3),
                inference_ms=w.stat("ovms_inference_time_us", mine, 1e-3),
                gauges=w.gauges(["ovms_current_requests", "ovms_infer_req_queue_size"], mine))


def _triton(w, model):
    mine, ok = _by("model", model), "nv_inference_request_success"
    inferences, executions = w.count("nv_inference_count", mine), w.count("nv_inference_exec_count", mine)
    batch = inferences / executions if inferences is not None and executions else None
    gauges = w.gauges(["nv_inference_pending_request_count"], mine)
    gpus = w.end.series("nv_gpu_utilization")
    if gpus:
        gauges["nv_gpu_utilization"] = sum(gpus.values()) / len(gpus)  # mean over the GPUs, 0.0-1.0
    w.notes.append("p50/p99: Triton publishes cumulative times, means only")
    return dict(requests=w.count(ok, mine), failures=w.count("nv_inference_request_failure", mine),
                request_ms=w.mean("nv_inference_request_duration_us", ok, mine, 1e-3),
                queue_ms=w.mean("nv_inference_queue_duration_us", ok, mine, 1e-3),
                inference_ms=w.mean("nv_inference_compute_infer_duration_us", ok, mine, 1e-3),
                server_batch=batch, gauges=gauges)


def _mlserver(w, model):
    mine = _by("model", model)
    handling = w.stat("grpc_server_handling_seconds", lambda labels: labels.get("grpc_method") == "ModelInfer", 1e3,
                      with_failures=True)
    if handling is not None:
        w.notes.append("request_ms: grpc_server_handling_seconds is for ModelInfer calls of all models")
    w.notes.append("queue_ms: not published by MLServer")
    return dict(requests=w.count("model_infer_request_success", mine),
                failures=w.count("model_infer_request_failure", mine), request_ms=handling,
                inference_ms=w.mean("model_infer_request_duration_sum", "model_infer_request_duration_count", mine,
                                    1e3, with_failures=True))


def _kserve(w, model):
    mine = _by("model_name", model)
    steps = {step: w.stat(f"request_{step}_seconds", mine, 1e3, with_failures=step != "postprocess")
             for step in ("preprocess", "predict", "postprocess")}
    calls, done = w.calls("request_predict_seconds", mine), w.calls("request_postprocess_seconds", mine)
    failures = None if calls is None or done is None else max(calls - done, 0)
    means = [stat.mean for stat in steps.values() if stat is not None]
    request = None
    if len(means) == len(steps):
        request = Stat(sum(means), with_failures=bool(failures))
        w.notes.append("request_ms: the sum of KServe's preprocess, predict and postprocess means (the model's "
                       "steps; KServe does not time the HTTP/gRPC handling around them)")
    w.notes.append("queue_ms: not published by KServe")
    return dict(requests=done, failures=failures, request_ms=request, inference_ms=steps["predict"],
                preprocess_ms=steps["preprocess"], postprocess_ms=steps["postprocess"])


# (name, a metric only it publishes, its model label, its recogniser)
SERVERS = [("TF Serving", ":tensorflow:serving:request_count", "model_name", _tf_serving),
           ("OVMS", "ovms_requests_success", "name", _ovms),
           ("Triton", "nv_inference_request_success", "model", _triton),
           ("MLServer", "model_infer_request_success", "model", _mlserver),
           ("KServe", "request_predict_seconds_count", "model_name", _kserve)]


def server_figures(start, end, model):
    """ServerFigures of ``model`` between the Snapshots ``start`` and ``end``, or NoFigures with the
    reason (no known server's metrics; the model is not in them)."""
    names = start.names() | end.names()
    for server, marker, label, recognise in SERVERS:
        if marker not in names:
            continue
        models = sorted({dict(labels).get(label) for labels in end.series(marker)} - {None})
        if model not in models:
            return NoFigures(f"{server} metrics name no model {model!r} in {marker} "
                             f"(models: {', '.join(models) or 'none'})")
        w = _Window(start, end)
        figures = recognise(w, model)
        return ServerFigures(server=server, model=model, notes=tuple(w.notes), **figures)
    families = sorted({_family(name) for name in names}, key=lambda n: (not any(w in n.lower() for w in REQUEST_WORDS), n))
    shown = ", ".join(families[:5]) or "none"
    return NoFigures(f"no metrics of a known model server ({', '.join(s[0] for s in SERVERS)}); names: {shown}"
                     + (f" and {len(families) - 5} more" if len(families) > 5 else ""))


def _family(name):
    """A sample name's family: without a histogram's ``_bucket``/``_count``/``_sum``."""
    for end in ("_bucket", "_count", "_sum"):
        if name.endswith(end):
            return name.removesuffix(end)
    return name
