"""Per-request Python costs of TfsUser's hot path, each step timed alone (microseconds per call).

    python benchmarks/hot_path.py [--repo PATH]

Steps, in the order ``TfsUser.predict`` runs them: the body lookup, the clocks,
``check_response`` (parses the PredictResponse), firing the request event
(Locust's own stats listener + our statistics listener, which records into an
HdrHistogram), and the pieces of that listener alone. No network: the gRPC
call itself is measured by ``overhead.py``. Complements a sampling profile
(py-spy), which cannot split a few-microsecond step from its neighbours.
"""

import argparse
import os
import sys
import timeit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--number", type=int, default=20000)
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.abspath(args.repo))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import time

    from locust import events
    from locust.env import Environment

    from tfs_user.data.files import Batches, synthetic_array
    from tfs_user.phases import CONTEXT_KEY, Phase, Sample
    from tfs_user.protocols.tfs.outcomes import check_response
    from tfs_user.protocols.tfs.messages import predict_pb2
    from tfs_user.protocols.tfs.request_bodies import RequestFactory
    from tfs_user.run import TfsRun
    from tfs_user.stats import LatencyStats
    from tfs_user.protocols.tfs.tensors import ndarray_to_tensor_proto

    factory = RequestFactory(Batches(synthetic_array((4,)), 1), "null", "input", "serving_default")
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "null"
    response.outputs["prob"].CopyFrom(ndarray_to_tensor_proto(synthetic_array((1,), frames=1)))
    body = response.SerializeToString()

    env = Environment(events=events)
    env.create_local_runner()
    run = TfsRun.of(env)
    env.events.request.add_listener(run._on_request)  # what TfsRun.start does for a local runner
    recorder = run.recorder
    fire = env.events.request.fire
    stats = LatencyStats()
    histogram = stats.histogram
    counter = [0]

    def fire_event():
        counter[0] += 1
        fire(request_type="gRPC", name="Predict null", response_time=0.8 + (counter[0] % 500) / 1000.0,
             response_length=len(body), exception=None,
             context={CONTEXT_KEY: Sample(Phase.MEASURED, 1)}, start_time=time.time())

    steps = [
        ("body lookup: factory.request(k)", lambda: factory.request(counter[0])),
        ("time.time()", time.time),
        ("time.perf_counter()", time.perf_counter),
        ("check_response (PredictResponse parse + checks)", lambda: check_response(body, 1)),
        ("request event fire (Locust stats + our listener)", fire_event),
        ("  our listener alone: Recorder.record", lambda: recorder.record("x", 0.9, True, 1, 1.0, 2.0)),
        ("  of which HdrHistogram.record_value", lambda: histogram.record_value(900)),
        ("  Locust stats alone: RequestStats.log", lambda: env.stats.log_request("gRPC", "y", 0.9, 20)),
        ("context dict build", lambda: {CONTEXT_KEY: Sample(Phase.MEASURED, 1)}),
    ]
    print(f"{'step':<52}{'us/call':>10}")
    for name, fn in steps:
        best = min(timeit.repeat(fn, number=args.number, repeat=3)) / args.number * 1e6
        print(f"{name:<52}{best:>10.2f}")
    print(f"(events fired into Locust stats: {env.stats.total.num_requests}; ours: "
          f"{sum(s.requests for s in recorder.names.values())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
