"""The demo server's own Prometheus page: what it measured of each inference call (Predict, ModelInfer),
named and labelled as TF Serving or OVMS publish theirs, so that a scraper reads it as it reads them.

``DemoServer.serve_inference`` measures each call with ``time.perf_counter`` (microseconds on the page):

- queue: from the call's arrival at the worker pool (grpc's ``submit``) to its start on a worker thread
  (``tfs_user.demo.timed_pool``): the wait for one of the ``--workers`` threads. Every inference call, those
  cancelled while they waited included (counted as failures with status CANCELLED or DEADLINE_EXCEEDED).
- inference: the "model", ``predict`` plus the injected delay's sleep (``--delay-ms``, ``--slow-delay-ms``):
  what the server was told to take. Successful calls.
- request: from the arrival at the pool to the response ready (the queue and the whole handler).
  Successful calls: a failed call is counted as a failure only, as TF Serving's request_latency and
  OVMS's request time leave failures out.

Formats (``FORMATS``); a model's series appear at its first call (``tfs``, as TF Serving's) or at 0 from
the start for each served version (``ovms``, as OVMS's):

- ``tfs``: counter ``:tensorflow:serving:request_count`` {model_name, status ("OK" or the gRPC code name)};
  histograms ``:tensorflow:serving:request_latency`` {model_name, API, entrypoint="GRPC"},
  ``:tensorflow:serving:runtime_latency`` {model_name, API, runtime="TF1"} (inference) and
  ``:tensorflow:serving:batching_session:queuing_latency`` {thread_pool_name="demo-server"} (queue).
  API is the call, "Predict" (as TF Serving's gRPC Predict) or "ModelInfer". TF Serving publishes a
  queue time only with batching on, per batching thread pool, all models: the demo's pool is its workers.
- ``ovms``: counters ``ovms_requests_success`` / ``ovms_requests_fail`` {api ("TensorFlowServing" for
  Predict, "KServe" for ModelInfer), interface="gRPC", method, name, version}; histograms
  ``ovms_request_time_us`` {interface, name, version}, ``ovms_inference_time_us`` and
  ``ovms_wait_for_infer_req_time_us`` (queue) {name, version}; gauges {name, version}
  ``ovms_current_requests`` (calls in the handler now) and ``ovms_infer_req_queue_size`` (the worker
  threads, as OVMS's nireq).

``version`` is the version that answered; a failed call, and the current-requests gauge, carry the
model's latest served version ("" for a model not served: such calls are counted under their name too).
Counters are written ``NAME_total``: prometheus_client's text format always names a counter so, where
TF Serving and OVMS write ``NAME``; tfs_user.server_metrics reads both.
"""

import bisect
import math
import threading
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

FORMATS = ("tfs", "ovms")
POOL_NAME = "demo-server"
"""The worker pool's name: its threads' name prefix and TF Serving's ``thread_pool_name`` label."""

# TF Serving prints its bounds with 6 significant digits (absl::StrCat): the same values here.
TFS_LATENCY_BUCKETS_US = tuple(float(f"{10 * 1.8 ** i:.6g}") for i in range(33))
"""request_latency and runtime_latency (servables/tensorflow/util.cc, ``Exponential(10, 1.8, 33)``):
10, 18, 32.4, 58.32 ... 1.47476e9 us (25 minutes), then +Inf."""
TFS_QUEUE_BUCKETS_US = tuple(float(f"{100 * 1.2 ** i:.6g}") for i in range(52))
"""batching_session queuing_latency (batching/batching_session.cc, ``Exponential(100, 1.2, 52)``):
100, 120, 144 ... 1.09205e6 us (1.1 s), then +Inf."""
OVMS_BUCKETS_US = tuple(float(math.floor(10 * 1.8 ** i)) for i in range(33))
"""OVMS's three histograms (src/model_metric_reporter.cpp, ``floor(10 * 1.8^i)``, 33): 10, 18, 32, 58 ...
1474755971 us, then +Inf."""


@dataclass(frozen=True)
class _Family:
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    labels: tuple
    bounds: tuple = ()  # histograms: the bucket upper bounds in microseconds, +Inf added


_TFS = {
    ":tensorflow:serving:request_count": _Family(
        "counter", "Demo server: inference calls by model and status.", ("model_name", "status")),
    ":tensorflow:serving:request_latency": _Family(
        "histogram", "Demo server: arrival at the worker pool to response ready, successful calls, microseconds.",
        ("model_name", "API", "entrypoint"), TFS_LATENCY_BUCKETS_US),
    ":tensorflow:serving:runtime_latency": _Family(
        "histogram", "Demo server: model and injected delay, successful calls, microseconds.",
        ("model_name", "API", "runtime"), TFS_LATENCY_BUCKETS_US),
    ":tensorflow:serving:batching_session:queuing_latency": _Family(
        "histogram", "Demo server: wait for a free worker thread, inference calls, microseconds.",
        ("thread_pool_name",), TFS_QUEUE_BUCKETS_US),
}
_OVMS = {
    "ovms_requests_success": _Family(
        "counter", "Demo server: successful inference calls.", ("api", "interface", "method", "name", "version")),
    "ovms_requests_fail": _Family(
        "counter", "Demo server: failed inference calls.", ("api", "interface", "method", "name", "version")),
    "ovms_request_time_us": _Family(
        "histogram", "Demo server: arrival at the worker pool to response ready, successful calls.",
        ("interface", "name", "version"), OVMS_BUCKETS_US),
    "ovms_inference_time_us": _Family(
        "histogram", "Demo server: model and injected delay, successful calls.", ("name", "version"), OVMS_BUCKETS_US),
    "ovms_wait_for_infer_req_time_us": _Family(
        "histogram", "Demo server: wait for a free worker thread, inference calls.", ("name", "version"),
        OVMS_BUCKETS_US),
    "ovms_current_requests": _Family("gauge", "Demo server: inference calls in the handler now.", ("name", "version")),
    "ovms_infer_req_queue_size": _Family("gauge", "Demo server: worker threads (--workers).", ("name", "version")),
}
_OVMS_API = {"Predict": "TensorFlowServing", "ModelInfer": "KServe"}


class _Histogram:
    """One histogram series: observations per bucket (the last one +Inf) and their sum, microseconds."""

    def __init__(self, bounds):
        self.bounds, self.counts, self.sum = bounds, [0] * (len(bounds) + 1), 0.0

    def observe(self, value):
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # a value equal to a bound is in its bucket (le)
        self.sum += value

    def cumulative(self):
        """[(le text, observations <= le), ..., ("+Inf", all)] and the sum."""
        les = [str(int(b)) if b.is_integer() else repr(b) for b in self.bounds] + ["+Inf"]
        total, buckets = 0, []
        for le, count in zip(les, self.counts):
            total += count
            buckets.append((le, total))
        return buckets, self.sum


class DemoMetrics:
    """The metrics of one DemoServer in one format: what its calls measured, as a prometheus_client
    collector in a CollectorRegistry of its own (several servers in one process do not clash), and the
    HTTP endpoint that serves it.

    Args:
        models: {name: ModelConfig} the server serves.
        metrics_format: "tfs" (TF Serving's names) or "ovms" (OVMS's).
        workers: the server's worker threads (``ovms_infer_req_queue_size``).

    Raises ValueError (one line) for another format.
    """

    def __init__(self, models, metrics_format="tfs", workers=16):
        if metrics_format not in FORMATS:
            raise ValueError(f"metrics_format {metrics_format!r} is not valid; expected one of {', '.join(FORMATS)}")
        self.format = metrics_format
        self._families = _TFS if metrics_format == "tfs" else _OVMS
        self._series = {name: {} for name in self._families}
        self._latest = {name: str(model.versions[-1]) for name, model in models.items()}
        self._lock = threading.Lock()
        self._http = None
        if metrics_format == "ovms":
            for name, model in models.items():
                for version in map(str, model.versions):
                    self._zero(name, version, workers)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # --- what the server measured (called on its worker threads) ---

    def started(self, model):
        """An inference call for ``model`` entered the handler."""
        if self.format == "ovms":
            with self._lock:
                self._add("ovms_current_requests", (model, self._latest.get(model, "")), 1)

    def failed(self, model, method, code, queue_s, started=True):
        """A call that started with ``started(model)`` failed with the gRPC status ``code`` (a name, e.g.
        "UNAVAILABLE", "DEADLINE_EXCEEDED" when the client's deadline passed); ``method`` is "Predict" or
        "ModelInfer", ``queue_s`` its wait for a worker, seconds. ``started`` False: a call cancelled while it
        waited, which never entered the handler."""
        version = self._latest.get(model, "")
        with self._lock:
            if self.format == "tfs":
                self._add(":tensorflow:serving:request_count", (model, code))
                self._observe(":tensorflow:serving:batching_session:queuing_latency", (POOL_NAME,), queue_s)
            else:
                if started:
                    self._add("ovms_current_requests", (model, version), -1)
                self._add("ovms_requests_fail", (_OVMS_API[method], "gRPC", method, model, version))
                self._observe("ovms_wait_for_infer_req_time_us", (model, version), queue_s)

    def succeeded(self, model, method, version, queue_s, inference_s, request_s):
        """A call that started with ``started(model)`` was answered by ``version`` (a str); its wait for a worker,
        model time and whole time (arrival at the pool to the response ready) in seconds."""
        with self._lock:
            if self.format == "tfs":
                self._add(":tensorflow:serving:request_count", (model, "OK"))
                self._observe(":tensorflow:serving:request_latency", (model, method, "GRPC"), request_s)
                self._observe(":tensorflow:serving:runtime_latency", (model, method, "TF1"), inference_s)
                self._observe(":tensorflow:serving:batching_session:queuing_latency", (POOL_NAME,), queue_s)
            else:
                self._add("ovms_current_requests", (model, self._latest.get(model, "")), -1)
                self._add("ovms_requests_success", (_OVMS_API[method], "gRPC", method, model, version))
                self._observe("ovms_request_time_us", ("gRPC", model, version), request_s)
                self._observe("ovms_inference_time_us", (model, version), inference_s)
                self._observe("ovms_wait_for_infer_req_time_us", (model, version), queue_s)

    def _zero(self, model, version, workers):
        """OVMS's series of a served version at 0 (its reporters are made when a version loads)."""
        for method, api in _OVMS_API.items():
            for name in ("ovms_requests_success", "ovms_requests_fail"):
                self._add(name, (api, "gRPC", method, model, version), 0)
        for name, labels in (("ovms_request_time_us", ("gRPC", model, version)),
                             ("ovms_inference_time_us", (model, version)),
                             ("ovms_wait_for_infer_req_time_us", (model, version))):
            self._series[name][labels] = _Histogram(self._families[name].bounds)
        self._add("ovms_current_requests", (model, version), 0)
        self._series["ovms_infer_req_queue_size"][(model, version)] = workers

    def _add(self, name, labels, amount=1):
        series = self._series[name]
        series[labels] = series.get(labels, 0) + amount

    def _observe(self, name, labels, seconds):
        series = self._series[name]
        if labels not in series:
            series[labels] = _Histogram(self._families[name].bounds)
        series[labels].observe(seconds * 1e6)

    # --- the page ---

    def collect(self):
        """prometheus_client's collector protocol: every family of the format, all read at one moment."""
        with self._lock:
            read = {name: {labels: value.cumulative() if isinstance(value, _Histogram) else value
                           for labels, value in series.items()} for name, series in self._series.items()}
        kinds = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily}
        for name, family in self._families.items():
            metric = kinds[family.kind](name, family.help, labels=family.labels)
            for labels, value in read[name].items():
                if family.kind == "histogram":
                    metric.add_metric(labels, *value)
                else:
                    metric.add_metric(labels, value)
            yield metric

    def serve(self, host, port):
        """Serve the page at http://HOST:PORT/metrics (any path answers; port 0: any free port) on a
        daemon thread; returns the bound port. Raises RuntimeError (one line) if it cannot bind."""
        try:
            self._http, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise RuntimeError(f"cannot bind the metrics port {host}:{port} ({e.strerror or e}); "
                               "expected a free port (or 0 for any free port)") from None
        return self._http.server_port

    def close(self):
        """Stop serving the page (waits up to half a second for the server's loop); nothing if not serving."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
