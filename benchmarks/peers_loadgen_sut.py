"""MLPerf LoadGen (Server scenario) sending TF Serving Predict over gRPC; runs in the LoadGen venv.

    benchmarks/.peers/loadgen/bin/python benchmarks/peers_loadgen_sut.py --target 127.0.0.1:PORT \
        --request-file req.bin --rates 100,200 --duration-s 4.8 --out-dir DIR

Started by ``benchmarks/peers.py``; imports only ``mlperf_loadgen`` and ``grpc`` (the venv holds
``mlcommons-loadgen`` and ``grpcio``, nothing of this project). ``--request-file`` is one
serialized ``tensorflow.serving.PredictRequest`` (written by peers.py with our messages); it is
sent as raw bytes with ``channel.unary_unary``, as ``benchmarks/clients.py plain`` does.

For each rate R (req/s) LoadGen runs one Server-scenario test (Poisson arrivals at
``server_target_qps`` R, performance only, at least ``--duration-s`` seconds and 100 queries); it
schedules each query, calls ``issue_queries`` at that time, and times from the scheduled time to
``QuerySamplesComplete`` (called from gRPC's callback thread). It waits for every query it issued.
Its summary goes to ``DIR/rate-R/mlperf_log_summary.txt``; one JSON line per rate on stdout:
``{"rate": R, "summary": PATH, "errors": N, "completed": N}``. Failed calls (any gRPC error)
still complete their query (LoadGen needs every query answered) and are counted in ``errors``.
"""

import argparse
import json
import os
import threading

import grpc
import mlperf_loadgen as lg

PREDICT = "/tensorflow.serving.PredictionService/Predict"


class Sut:
    """Sends each LoadGen query as one Predict future; completes it in the done-callback."""

    def __init__(self, target, body, timeout_s):
        self.channel = grpc.insecure_channel(target)
        self.predict = self.channel.unary_unary(PREDICT)  # bytes in, bytes out: no (de)serializer
        self.body = body
        self.timeout_s = timeout_s
        self.lock = threading.Lock()
        self.errors = 0
        self.completed = 0

    def warm_up(self, count=20):
        """Connection set-up before LoadGen starts timing; raises grpc.RpcError if the server is down."""
        for _ in range(count):
            self.predict(self.body, timeout=self.timeout_s)

    def issue_queries(self, samples):
        for sample in samples:
            future = self.predict.future(self.body, timeout=self.timeout_s)
            future.add_done_callback(lambda f, sample_id=sample.id: self._done(f, sample_id))

    def _done(self, future, sample_id):
        failed = future.exception() is not None
        with self.lock:
            self.completed += 1
            self.errors += failed
        lg.QuerySamplesComplete([lg.QuerySampleResponse(sample_id, 0, 0)])

    def flush_queries(self):
        pass


def run_rate(sut, rate, duration_s, out_dir, seed=0):
    """One Server-scenario test at ``rate`` req/s with its Poisson schedule drawn from ``seed``; returns the
    summary file's path."""
    settings = lg.TestSettings()
    settings.schedule_rng_seed = settings.sample_index_rng_seed = settings.qsl_rng_seed = seed
    settings.scenario = lg.TestScenario.Server
    settings.mode = lg.TestMode.PerformanceOnly
    settings.server_target_qps = float(rate)
    settings.server_target_latency_ns = 1_000_000_000  # 1 s: we read the percentiles, not LoadGen's VALID verdict
    settings.min_duration_ms = int(duration_s * 1000)
    settings.max_duration_ms = int(duration_s * 1000) * 3
    settings.min_query_count = 100
    folder = os.path.join(out_dir, f"rate-{rate:g}")
    os.makedirs(folder, exist_ok=True)
    log = lg.LogSettings()
    log.log_output.outdir = folder
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False
    lg_sut = lg.ConstructSUT(sut.issue_queries, sut.flush_queries)
    qsl = lg.ConstructQSL(1024, 1024, lambda indices: None, lambda indices: None)
    try:
        lg.StartTestWithLogSettings(lg_sut, qsl, settings, log)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(lg_sut)
    return os.path.join(folder, "mlperf_log_summary.txt")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT of the TF Serving gRPC API")
    parser.add_argument("--request-file", required=True, help="one serialized PredictRequest")
    parser.add_argument("--rates", required=True, help="comma-separated req/s, e.g. 100,200")
    parser.add_argument("--duration-s", type=float, default=5.0, help="minimum seconds per rate (default 5)")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="gRPC deadline per call (default 10)")
    parser.add_argument("--out-dir", required=True, help="folder for LoadGen's logs")
    parser.add_argument("--seed", type=int, default=0, help="LoadGen's schedule seed (its default is 0: the same "
                        "Poisson path every run; vary it per run so that repeated runs are repeated samples)")
    args = parser.parse_args()
    with open(args.request_file, "rb") as f:
        body = f.read()
    sut = Sut(args.target, body, args.timeout_s)
    sut.warm_up()
    for rate in (float(r) for r in args.rates.split(",")):
        sut.errors = sut.completed = 0
        summary = run_rate(sut, rate, args.duration_s, args.out_dir, args.seed)
        print(json.dumps({"rate": rate, "summary": summary, "errors": sut.errors, "completed": sut.completed}),
              flush=True)
    sut.channel.close()


if __name__ == "__main__":
    main()
