"""Reference clients for ``benchmarks/overhead.py``: each runs one closed loop and prints one JSON line.

    python benchmarks/clients.py plain --target 127.0.0.1:9000 --request-file req.bin --requests 2000
    python benchmarks/clients.py old --target 127.0.0.1:9000 --model-name null --input-name input \
        --shape 1,4 --requests 2000
    python benchmarks/clients.py futures --target 127.0.0.1:9000 --request-file req.bin --requests 2000 --concurrency 8
    python benchmarks/clients.py aio --target 127.0.0.1:9000 --request-file req.bin --requests 2000 --concurrency 8

``plain``: the baseline. A synchronous grpcio loop (no gevent, no Locust) sending
one pre-built serialized ``PredictRequest`` with ``channel.unary_unary`` on raw
bytes, as ``tfs_user.protocols.tfs.predict.predict_call`` does; timed with ``time.perf_counter``.
It imports only grpc, so nothing but the loop is measured.

``old``: the old ``grpc_latency.py`` style: ``tf.make_tensor_proto`` on every
iteration, a ``PredictRequest`` message through the generated stub (so the
response is parsed), ``datetime.datetime.now()`` timing.

``futures``: the same pre-built request, ``--concurrency`` calls kept in flight
with ``predict.future()``; each done-callback (on gRPC's channel thread) notes
the latency and starts the next call. No gevent.

``aio``: the same request with ``grpc.aio``, ``--concurrency`` asyncio tasks
each looping ``await predict(body)``. No gevent.

All send ``--warmup`` requests first (connection set-up), then measure
``--requests`` requests. The JSON line holds ``cpu_s`` (user + sys of this
process, all threads, from ``resource.getrusage(RUSAGE_SELF)`` taken right
before and after the measured loop: imports and set-up are left out),
``wall_s``, ``requests`` and the latencies' ``min_ms``/``p50_ms``/``p99_ms`` (exact, from
the sorted list).
"""

import argparse
import json
import resource
import sys
import time


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _percentile(sorted_ms, percent):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_ms:
        return 0.0
    rank = max(1, -(-len(sorted_ms) * percent // 100))
    return sorted_ms[int(rank) - 1]


def _result(latencies_ms, cpu_s, wall_s, errors):
    latencies_ms.sort()
    return {
        "requests": len(latencies_ms),
        "errors": errors,
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "rps": len(latencies_ms) / wall_s if wall_s > 0 else 0.0,
        "min_ms": latencies_ms[0] if latencies_ms else 0.0,
        "p50_ms": _percentile(latencies_ms, 50),
        "p99_ms": _percentile(latencies_ms, 99),
        "mean_ms": sum(latencies_ms) / len(latencies_ms) if latencies_ms else 0.0,
    }


MAX_MESSAGE = 256 << 20
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


def run_plain(args):
    import grpc

    with open(args.request_file, "rb") as f:
        body = f.read()
    options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
    channel = grpc.insecure_channel(args.target, options=options)
    predict = channel.unary_unary(PREDICT_METHOD)
    for _ in range(args.warmup):
        predict(body, timeout=args.timeout)
    latencies = []
    errors = 0
    perf_counter = time.perf_counter
    cpu0, wall0 = _cpu_s(), perf_counter()
    for _ in range(args.requests):
        start = perf_counter()
        try:
            predict(body, timeout=args.timeout)
        except grpc.RpcError:
            errors += 1
            continue
        latencies.append((perf_counter() - start) * 1000.0)
    wall, cpu = perf_counter() - wall0, _cpu_s() - cpu0
    channel.close()
    return _result(latencies, cpu, wall, errors)


def _read_body_and_channel(args, grpc_module):
    with open(args.request_file, "rb") as f:
        body = f.read()
    options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
    return body, grpc_module.insecure_channel(args.target, options=options)


def run_futures(args):
    import threading

    import grpc

    body, channel = _read_body_and_channel(args, grpc)
    predict = channel.unary_unary(PREDICT_METHOD)
    for _ in range(args.warmup):
        predict(body, timeout=args.timeout)
    latencies = []
    errors = [0]
    lock = threading.Lock()
    finished = threading.Event()
    state = {"started": 0, "ended": 0}
    perf_counter = time.perf_counter

    def start():
        begin = perf_counter()
        future = predict.future(body, timeout=args.timeout)
        # the callback runs at once, in this thread, if the call is already done: no lock may be held here
        future.add_done_callback(lambda f: done(f, begin))

    def done(future, begin):
        end = perf_counter()
        with lock:
            if future.exception() is None:
                latencies.append((end - begin) * 1000.0)
            else:
                errors[0] += 1
            state["ended"] += 1
            more = state["started"] < args.requests
            if more:
                state["started"] += 1
            elif state["ended"] == args.requests:
                finished.set()
        if more:
            start()

    cpu0, wall0 = _cpu_s(), perf_counter()
    first = min(args.concurrency, args.requests)
    state["started"] = first
    for _ in range(first):
        start()
    finished.wait()
    wall, cpu = perf_counter() - wall0, _cpu_s() - cpu0
    channel.close()
    return _result(latencies, cpu, wall, errors[0])


def run_aio(args):
    import asyncio

    import grpc
    import grpc.aio

    async def main():
        body, channel = _read_body_and_channel(args, grpc.aio)
        predict = channel.unary_unary(PREDICT_METHOD)
        for _ in range(args.warmup):
            await predict(body, timeout=args.timeout)
        latencies = []
        errors = 0
        left = [args.requests]
        perf_counter = time.perf_counter

        async def loop():
            nonlocal errors
            while left[0] > 0:
                left[0] -= 1
                begin = perf_counter()
                try:
                    await predict(body, timeout=args.timeout)
                except grpc.RpcError:
                    errors += 1
                    continue
                latencies.append((perf_counter() - begin) * 1000.0)

        cpu0, wall0 = _cpu_s(), perf_counter()
        await asyncio.gather(*(loop() for _ in range(args.concurrency)))
        wall, cpu = perf_counter() - wall0, _cpu_s() - cpu0
        await channel.close()
        return _result(latencies, cpu, wall, errors)

    return asyncio.run(main())


def run_old(args):
    import datetime
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    shape = tuple(int(d) for d in args.shape.split(","))
    frames = np.random.default_rng(0).uniform(0, 255, size=(8 * shape[0], *shape[1:])).astype(np.float32)
    options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
    channel = grpc.insecure_channel(args.target, options=options)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    batch = shape[0]

    def one(i):
        start_row = (i * batch) % len(frames)
        img = frames[start_row:start_row + batch]
        request = predict_pb2.PredictRequest()
        request.model_spec.name = args.model_name
        request.model_spec.signature_name = "serving_default"
        request.inputs[args.input_name].CopyFrom(tf.make_tensor_proto(img, shape=img.shape))
        start_time = datetime.datetime.now()
        stub.Predict(request, args.timeout)
        end_time = datetime.datetime.now()
        return (end_time - start_time).total_seconds() * 1000.0

    for i in range(args.warmup):
        one(i)
    latencies = []
    errors = 0
    cpu0, wall0 = _cpu_s(), time.perf_counter()
    for i in range(args.requests):
        try:
            latencies.append(one(i))
        except grpc.RpcError:
            errors += 1
    wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
    channel.close()
    return _result(latencies, cpu, wall, errors)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=["plain", "old", "futures", "aio"])
    p.add_argument("--target", required=True, help="HOST:PORT")
    p.add_argument("--request-file", help="plain: serialized PredictRequest")
    p.add_argument("--model-name", default="resnet")
    p.add_argument("--input-name", default="input")
    p.add_argument("--shape", default="1,224,224,3", help="old: request shape, batch first")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=8, help="futures/aio: calls in flight (default: 8)")
    args = p.parse_args(argv)
    run = {"plain": run_plain, "old": run_old, "futures": run_futures, "aio": run_aio}[args.kind]
    result = run(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
