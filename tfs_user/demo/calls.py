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
    index, received = server._ledger.arrived(lambda i: protocol.receipt(i, start, request, context))
    try:
        if server.fail_every and index % server.fail_every == 0:
            raise Abort(server.fail_code, "injected failure")
        server.check_loaded(name)
        model_started = time.perf_counter()
        response, batch = protocol.predict(server.models, request, server.bad_output_batch)
        slow = server.slow_every and index % server.slow_every == 0
        delay_ms = server.slow_delay_ms if slow else server.delay_ms
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)
        inference_s = time.perf_counter() - model_started
    except Exception as e:  # Abort: a request error; anything else is a bug, reported as INTERNAL
        server._ledger.failed()
        code, details = (e.code, e.details) if isinstance(e, Abort) else \
            (grpc.StatusCode.INTERNAL, f"demo server error: {e!r}")
        if received is not None:
            received.code = code.name
        server._metrics.failed(name, method, code.name, on_worker - arrived)
        context.abort(code, details)
    end = time.time()
    server._ledger.succeeded(batch, start, end, (time.perf_counter() - started) * 1000.0)
    if received is not None:
        received.code = "OK"
    version = response.model_version if method == "ModelInfer" else str(response.model_spec.version.value)
    server._metrics.succeeded(name, method, version, on_worker - arrived, inference_s, time.perf_counter() - arrived)
    return response
