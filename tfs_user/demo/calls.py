"""One inference call (Predict or ModelInfer) on the demo server: counts, recording, injected failures
and delays, the model, and what its metrics page learns of the call. Runs on the server's worker threads."""

import time

import grpc

from tfs_user.demo import timed_pool
from tfs_user.demo.inference import Abort


def serve_inference(server, request, context, protocol):
    """Answer one inference call for ``server`` (a DemoServer); see ``DemoServer.serve_inference``."""
    start = time.time()
    started = time.perf_counter()
    arrived, on_worker = timed_pool.arrival()  # perf_counter: arrival at the worker pool, start on this worker
    name, method = protocol.model_name(request), type(request).__name__.removesuffix("Request")  # Predict, ModelInfer
    server._metrics.started(name)
    server.last_call_metadata = dict(context.invocation_metadata())
    index, received = server._ledger.arrived(lambda i: protocol.receipt(i, start, request, context), name)
    try:
        if server.fail_every and index % server.fail_every == 0:
            raise Abort(server.fail_code, "injected failure")
        server.check_loaded(name)
        model_started = time.perf_counter()
        response, batch = protocol.predict(server.models, request, server.bad_output_batch)
        slow = server.slow_every and index % server.slow_every == 0
        model = server.models.get(name)
        own = model.delay_ms if model is not None and model.delay_ms is not None else server.delay_ms
        delay_ms = server.slow_delay_ms if slow else own
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        inference_s = time.perf_counter() - model_started
    except Exception as e:  # Abort: a request error; anything else is a bug, reported as INTERNAL
        code, details = (e.code, e.details) if isinstance(e, Abort) else \
            (grpc.StatusCode.INTERNAL, f"demo server error: {e!r}")
        _failed(server, context, name, method, received, code, on_worker - arrived)
        context.abort(code, details)
    if not context.is_active():  # the client's deadline passed (or it cancelled) in the handler: it saw no answer
        _failed(server, context, name, method, received, None, on_worker - arrived)
        context.abort(gone_code(context), "the client's deadline passed or it cancelled before the answer")
    end = time.time()
    server._ledger.succeeded(batch, start, end, (time.perf_counter() - started) * 1000.0, name)
    if received is not None:
        received.code = "OK"
    version = response.model_version if method == "ModelInfer" else str(response.model_spec.version.value)
    server._metrics.succeeded(name, method, version, on_worker - arrived, inference_s, time.perf_counter() - arrived)
    return response


def gone_code(context):
    """The status a call the client abandoned ended with: DEADLINE_EXCEEDED when its deadline passed, else
    CANCELLED."""
    remaining = context.time_remaining()
    return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= 0 else grpc.StatusCode.CANCELLED


def _failed(server, context, name, method, received, code, queue_s):
    """Count a call that ended without an OK answer: failed with ``code``, or cancelled when the client is gone
    (``code`` None: it is known to be)."""
    cancelled = code is None or not context.is_active()
    if cancelled:
        code = gone_code(context)
    server._ledger.failed(cancelled, name)
    if received is not None:
        received.code = code.name
    server._metrics.failed(name, method, code.name, queue_s)


def unserved(server, method, queue_s, deadline):
    """A call to ``method`` (full gRPC name) cancelled while it waited ``queue_s`` for a worker (``deadline``:
    the client's, ``time.time()`` seconds, or None): counted as cancelled, its wait in the queue figures. Its
    request was never read, so it counts for the server's model when it serves one (else model "")."""
    server._ledger.unserved()
    code = "DEADLINE_EXCEEDED" if deadline is not None and time.time() >= deadline else "CANCELLED"
    model = next(iter(server.models)) if len(server.models) == 1 else ""
    server._metrics.failed(model, method.rsplit("/", 1)[-1], code, queue_s, started=False)
