"""A small gRPC model server for demos, tests and calibration, speaking two protocols on one port.

Like OVMS and Triton, it answers TF Serving's API and the Open Inference Protocol (KServe v2) on the
same port. It implements the parts a load test touches: ``PredictionService/Predict``,
``PredictionService/GetModelMetadata`` (``signature_def`` only) and ``ModelService/GetModelStatus``
(``tfs_user.demo.tfs_service``); ``inference.GRPCInferenceService`` ServerLive, ServerReady,
ModelReady, ServerMetadata, ModelMetadata and ModelInfer (``tfs_user.demo.kserve_service``).
Delays, failures, counts and recording are shared (``DemoServer.serve_inference``): a Predict and a
ModelInfer count, delay and fail alike, and below "Predict" means either. Predict requests are
validated the way TF Serving does it (model name and version, signature name, input alias, dtype,
shape) and answered with the same gRPC status codes (``tfs_user.demo.handlers``); ModelInfer
requests the way Triton and OVMS do (model and version, input names, datatypes, shapes, raw or
typed contents, requested outputs; ``tfs_user.demo.kserve_handlers``). With ``metrics_port`` it publishes
what it measured of each Predict and ModelInfer (wait for a worker, model time, whole time) as a
Prometheus page named as TF Serving's or OVMS's (``tfs_user.demo.metrics``).

The "model" is a real, cheap numpy function (``tfs_user.demo.model``): a
float32 ``[batch, output_size]`` softmax output whose rows sum to 1. Injected on
purpose: a fixed delay per Predict, every N-th Predict slower, every M-th
Predict failing with a chosen status code, a wrong output batch dimension,
GetModelMetadata failing with a chosen status code, versions that become
AVAILABLE only some seconds after start (LOADING before, like TF Serving). Counters (requests, frames, the wall-clock window
of successful requests) let a test compare what the load generator reported
with what the server saw; with ``record=True`` the server also keeps each
Predict it received (decoded input tensors, model spec, gRPC metadata), so a
test can compare the bytes on the wire with the file and options. ``tfs_user.demo.inference`` holds
what both protocols share (``Abort``, ``ReceivedRequest``, running the model).

It uses a plain ``grpc.server`` with a thread pool (no gevent), so it runs
in-process next to a test or as its own process::

    python -m tfs_user.demo_server --port 9000 --delay-ms 20   (tfs_user.demo.main)
"""

import threading
import time

import grpc

from tfs_user.demo import calls, kserve_service, tfs_service, timed_pool
from tfs_user.demo.arguments import checked_arguments
from tfs_user.demo.inference import Abort, ReceivedRequest
from tfs_user.demo.ledger import DEFAULT_RECORD_LIMIT, SERVICE_TIMES_KEPT, Ledger  # noqa: F401 (kept public here)
from tfs_user.demo.metrics import POOL_NAME, DemoMetrics
from tfs_user.demo.model import ModelConfig, model_function

INFERENCE_METHODS = ("/tensorflow.serving.PredictionService/Predict", "/inference.GRPCInferenceService/ModelInfer")
STOP_SETTLE_S = 5.0
"""Seconds ``stop`` waits for the handlers of the calls it cut off (an injected delay may hold one)."""

__all__ = ["DEFAULT_RECORD_LIMIT", "SERVICE_TIMES_KEPT", "DemoServer", "ModelConfig", "ReceivedRequest",
           "model_function"]


class DemoServer:
    """A gRPC model server on a thread pool speaking TF Serving's API and the Open Inference Protocol on one
    port, with injected delay and failures. "Predict" below means either inference call (Predict, ModelInfer).

    Args:
        models: the served models (a list of ModelConfig; default one ``resnet``).
        host: address to bind, e.g. "127.0.0.1" or "0.0.0.0".
        port: TCP port; 0 picks a free one (read ``.port`` after ``start()``).
        delay_ms: milliseconds every successful Predict sleeps (models inference time).
        slow_every: if > 0, every slow_every-th Predict (1-based, counting all
            Predict calls) sleeps ``slow_delay_ms`` instead of ``delay_ms``.
        slow_delay_ms: the delay of those slow requests, milliseconds.
        fail_every: if > 0, every fail_every-th Predict fails at once (no delay)
            with status ``fail_code`` and details "injected failure".
        fail_code: a grpc.StatusCode name such as "UNAVAILABLE", "INTERNAL",
            "RESOURCE_EXHAUSTED".
        workers: thread-pool size = the most Predicts served at the same time.
        metadata: False makes GetModelMetadata and GetModelStatus (and ServerLive,
            ServerReady, ModelReady, ModelMetadata) answer UNIMPLEMENTED, like a
            server without them.
        tls: None (insecure) or (certificate PEM bytes, private key PEM bytes,
            client CA PEM bytes or None); with a client CA, clients must
            present a certificate it signed (mutual TLS).
        record: True keeps every Predict received (``received()``), for tests.
        record_limit: the most requests kept; beyond it the oldest are dropped
            (their ``index`` tells). Memory is about record_limit x request size.
        bad_output_batch: True answers every successful Predict with
            ``batch + 1`` output rows, a server whose output has the wrong
            first dimension.
        metadata_code: None, or a grpc.StatusCode name (e.g. "INTERNAL") that
            every GetModelMetadata and ModelMetadata fails with (details "injected metadata failure").
        available_after_s: seconds after ``start()`` before the versions are
            AVAILABLE; until then GetModelStatus reports them LOADING, ServerReady and
            ModelReady say false, and GetModelMetadata/ModelMetadata/Predict answer
            NOT_FOUND, as TF Serving does while a model loads. ``status_times`` and
            ``metadata_times`` keep the arrival (``time.time()``) of every
            GetModelStatus or ModelReady / GetModelMetadata or ModelMetadata call.
        kserve_typed_outputs: True answers ModelInfer in typed ``contents`` (``fp32_contents``) instead
            of ``raw_output_contents``, as some servers do.
        server_options: ((key, value), ...) gRPC server channel arguments added to ours,
            e.g. a strict keepalive policy: ``(("grpc.http2.min_ping_interval_without_data_ms",
            60000), ("grpc.keepalive_permit_without_calls", 0))``.
        metrics_port: None (no metrics page), or the TCP port of its Prometheus page on ``host``, 0 = any free
            port: ``metrics_port`` is the bound one after ``start()``, ``metrics_url`` the page's address.
        metrics_format: "tfs" (TF Serving's metric names) or "ovms" (OVMS's); see ``tfs_user.demo.metrics``.
        rest_port: None (gRPC only), or the TCP port of its REST APIs (TF Serving's and the Open Inference
            Protocol's, ``tfs_user.demo.rest``) on ``host``, 0 = any free port; ``rest_address`` after ``start()``.

    Message sizes are unlimited in both directions (gRPC's default receive
    limit of 4 MB would reject a batch of 8 float32 224x224x3 frames).
    Raises ValueError (one line) for a bad value.
    """

    def __init__(self, models=None, host="127.0.0.1", port=0, delay_ms=0.0, slow_every=0, slow_delay_ms=0.0,
                 fail_every=0, fail_code="UNAVAILABLE", workers=16, metadata=True, tls=None,
                 record=False, record_limit=DEFAULT_RECORD_LIMIT, bad_output_batch=False, metadata_code=None,
                 available_after_s=0.0, server_options=(), kserve_typed_outputs=False, metrics_port=None,
                 metrics_format="tfs", rest_port=None):
        self.models, self.fail_code, self.metadata_code = checked_arguments(
            models, fail_code, metadata_code, available_after_s, workers, record_limit, metrics_port,
            delay_ms=delay_ms, slow_every=slow_every, slow_delay_ms=slow_delay_ms, fail_every=fail_every)
        self.available_after_s = float(available_after_s)
        self.available_at = None
        """``time.time()`` when the versions become AVAILABLE (set by ``start()``)."""
        self.status_times = []
        """Arrival (``time.time()``) of each GetModelStatus or ModelReady call."""
        self.metadata_times = []
        """Arrival (``time.time()``) of each GetModelMetadata or ModelMetadata call."""
        self.host = host
        self.port = port
        self.server_options = tuple(tuple(option) for option in server_options)
        self.delay_ms = float(delay_ms)
        self.slow_every = int(slow_every)
        self.slow_delay_ms = float(slow_delay_ms)
        self.fail_every = int(fail_every)
        self.workers = int(workers)
        self.metadata = metadata
        self.tls = tls
        self.bad_output_batch = bool(bad_output_batch)
        self.kserve_typed_outputs = bool(kserve_typed_outputs)
        self.last_call_metadata = {}
        """gRPC metadata (key -> value) of the last Predict call, for tests."""
        self._lock = threading.Lock()
        self._server = None
        self._ledger = Ledger(record, record_limit)
        self.metrics_port = metrics_port
        self.rest_port = rest_port
        self._rest = None
        self._metrics = DemoMetrics(self.models, metrics_format, self.workers)

    @property
    def address(self):
        """"HOST:PORT" to give a client (IPv6 hosts in brackets)."""
        return f"{_bracketed(self.host)}:{self.port}"

    @property
    def rest_address(self):
        """"HOST:PORT" of the REST APIs (give it as http://HOST:PORT, https:// with TLS); None without ``rest_port``."""
        return None if self._rest is None else f"{_bracketed(self.host)}:{self._rest.port}"

    @property
    def metrics_url(self):
        """"http://HOST:PORT/metrics", the Prometheus page; None without ``metrics_port``."""
        return None if self.metrics_port is None else f"http://{_bracketed(self.host)}:{self.metrics_port}/metrics"

    def start(self):
        """Bind and start serving (and the metrics page); returns the bound port. Raises RuntimeError if a port
        cannot be bound."""
        if self._server is not None:
            raise RuntimeError("DemoServer is already started")
        # the page first: a gRPC server stopped before it started still holds its port (seen), so it must not have to
        metrics_port = None if self.metrics_port is None else self._metrics.serve(self.host, self.metrics_port)
        options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1),
                   ("grpc.so_reuseport", 0), *self.server_options]
        self._pool = timed_pool.TimedThreadPool(
            max_workers=self.workers, thread_name_prefix=POOL_NAME, methods=INFERENCE_METHODS,
            on_unserved=lambda method, queue_s, deadline: calls.unserved(self, method, queue_s, deadline))
        server = grpc.server(self._pool, options=options)
        tfs_service.add_to_server(self, server)
        kserve_service.add_to_server(self, server)
        host = _bracketed(self.host)
        try:
            if self.tls:
                cert, key, client_ca = self.tls
                credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                                          require_client_auth=client_ca is not None)
                port = server.add_secure_port(f"{host}:{self.port}", credentials)
            else:
                port = server.add_insecure_port(f"{host}:{self.port}")
        except RuntimeError:
            port = 0
        if port == 0:
            server.stop(None)
            self._metrics.close()
            raise RuntimeError(f"cannot bind {host}:{self.port}; expected a free port (or 0 for any free port)")
        if self.rest_port is not None:
            from tfs_user.demo.rest import RestServer

            try:
                self._rest = RestServer(self, self.host, self.rest_port)
            except OSError as e:
                server.stop(None)
                self._metrics.close()
                raise RuntimeError(f"cannot bind {host}:{self.rest_port} ({e.strerror}); expected a free port (or 0)") from None
            self._rest.start()
        self.port, self.metrics_port = port, metrics_port
        self.available_at = time.time() + self.available_after_s
        server.start()
        self._server = server
        return port

    def stop(self, grace=None, settle_s=STOP_SETTLE_S):
        """Stop serving; in-flight calls get ``grace`` seconds to finish (None: cancel them now). Blocks until
        stopped, and then until the handlers of the calls it cut off have ended (at most ``settle_s``): they
        count as cancelled, so ``counts()`` is final. Returns the number still in a handler then (0: final)."""
        if self._server is None:
            return 0
        if self._rest is not None:
            self._rest.stop()
        self._server.stop(grace).wait()
        self._server = None
        waiting = threading.Thread(target=self._pool.shutdown, daemon=True)  # calls still queued end as cancelled
        waiting.start()
        waiting.join(settle_s)
        left = self._ledger.settle(max(0.0, settle_s))
        self._metrics.close()
        return left

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def counts(self):
        """A snapshot of the inference counters (Predict and ModelInfer alike).

        Returns a dict: requests (Predict and ModelInfer calls received), ok, failed (any
        error status, injected or not), cancelled (the client's deadline passed, or it cancelled, before
        the answer: in the handler or while the call waited for a worker; ok + failed + cancelled =
        requests once no call is in a handler), frames (sum of the batch sizes of
        successful requests), first_ok_start and last_ok_end (``time.time()``
        seconds: arrival of the earliest successful request, completion of the
        latest one; None before any), models (per model name as the calls named it:
        ``{name: {requests, ok, failed, frames}}``) and batches (``{batch size: successful calls}``).
        """
        return self._ledger.snapshot()

    def reset_counts(self):
        """Zero the counters and forget the recorded requests; the slow_every/fail_every cycles restart at request 1."""
        self._ledger.reset()

    def service_times_ms(self):
        """How long this server took to answer each successful Predict, ms (floats, completion order).

        Measured around the handler (decoding, model, injected delay, and however late the
        delay's sleep woke up on a busy machine): what a client's latency adds its transport to.
        The latest SERVICE_TIMES_KEPT; cleared by ``reset_counts``.
        """
        return self._ledger.service_times_ms()

    def received(self):
        """The inference calls (Predict, ModelInfer) received since start (or ``reset_counts``), a list of
        ReceivedRequest in arrival order.

        Empty unless the server was made with ``record=True``; at most
        ``record_limit`` (the latest). Each holds the decoded input tensors by
        alias, the model spec and the gRPC metadata; ``code`` is filled in when
        the call is answered.
        """
        return self._ledger.received()

    # --- request handling (called on the server's worker threads) ---

    def serve_inference(self, request, context, protocol):
        """Answer one inference call (Predict, ModelInfer) with this server's counts, recording and injections.

        ``protocol`` is the protocol's handler module (or an object with its functions):
        ``receipt(index, start, request, context)`` -> ReceivedRequest, ``predict(models, request,
        bad_output_batch)`` -> (response, batch size), ``model_name(request)``; errors are ``Abort``.
        Runs on the server's worker threads (``tfs_user.demo.calls``); what it measured of the call goes to
        ``tfs_user.demo.metrics``, its counts and records to ``tfs_user.demo.ledger``.
        """
        return calls.serve_inference(self, request, context, protocol)

    def loading(self):
        """Whether the versions are still LOADING (``available_after_s`` not yet passed)."""
        return self.available_at is not None and time.time() < self.available_at

    def check_loaded(self, model_name):
        """Raise Abort(NOT_FOUND) while the versions are LOADING, as TF Serving answers then."""
        if self.loading():
            raise Abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({model_name})")

    def note_call(self, times):
        """Keep the arrival (``time.time()``) of a metadata or status call in ``times``."""
        with self._lock:
            times.append(time.time())


def _bracketed(host):
    """``host`` as it goes before ":PORT" (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host else host
