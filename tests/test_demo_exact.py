"""The demo server is the suite's oracle: every call it received ends as exactly one of ok, failed or
cancelled, on its counters, its metrics page and its shutdown line (issue 29).

Calls whose client gave up: a deadline that passes while the handler runs (the client sees
DEADLINE_EXCEEDED: no frames, not OK), a deadline that passes while the call waits for the only worker
(the handler never runs: its wait still belongs in the queue figures, the longest ones under
overload), and a call the server's own stop cut off.
"""

import signal
import subprocess
import sys
import threading
import time

import grpc
import numpy as np

from conftest import ROOT
from tfs_user.demo.server import DemoServer, ModelConfig
from tfs_user.protocols.tfs.messages import predict_pb2, prediction_service_pb2_grpc
from tfs_user.protocols.tfs.tensors import ndarray_to_tensor_proto
from tfs_user.server_metrics import parse, scrape, server_figures

SMALL = ModelConfig(shape=(-1, 8, 8, 3), output_size=10)


def request():
    r = predict_pb2.PredictRequest()
    r.model_spec.name = "resnet"
    r.inputs["input"].CopyFrom(ndarray_to_tensor_proto(np.ones((2, 8, 8, 3), np.float32)))
    return r


def call(address, timeout_s, codes):
    with grpc.insecure_channel(address) as channel:
        try:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request(), timeout=timeout_s)
            codes.append("OK")
        except grpc.RpcError as e:
            codes.append(e.code().name)


def page_series(url, name):
    return {dict(labels).get("status"): v for labels, v in parse(scrape(url, timeout_s=10)).series(name).items()}


def test_deadlines_in_the_handler_and_in_the_queue_are_cancelled_calls_on_every_count():
    # One worker, a 600 ms model: call A (no hurry) holds the worker; B's 300 ms deadline passes in the queue;
    # C (sent alone afterwards) has its 200 ms deadline pass in the handler.
    server = DemoServer([SMALL], workers=1, delay_ms=600, metrics_port=0)
    server.start()
    try:
        start = parse(scrape(server.metrics_url, timeout_s=10))
        codes = []
        a = threading.Thread(target=call, args=(server.address, 30, codes))
        a.start()
        deadline = time.time() + 10
        while server.counts()["requests"] < 1 and time.time() < deadline:  # A is in the handler
            time.sleep(0.01)
        call(server.address, 0.3, codes)  # B waits behind A, gives up
        a.join()
        server._ledger.settle(10)
        call(server.address, 0.2, codes)  # C: alone, gives up in the handler
        assert server._ledger.settle(10) == 0
        time.sleep(0.1)  # B's task ran when A left the worker: let its record land (it is after A's answer)
        assert codes == ["DEADLINE_EXCEEDED", "OK", "DEADLINE_EXCEEDED"]
        c = server.counts()
        assert (c["requests"], c["ok"], c["failed"], c["cancelled"], c["frames"]) == (3, 1, 0, 2, 2), c
        assert c["ok"] + c["failed"] + c["cancelled"] == c["requests"]
        end = parse(scrape(server.metrics_url, timeout_s=10))
        status = page_series(server.metrics_url, ":tensorflow:serving:request_count")
        assert status == {"OK": 1.0, "DEADLINE_EXCEEDED": 2.0}, status
        f = server_figures(start, end, "resnet")
        assert (f.requests, f.failures) == (1, 2)
        queue = end.series(":tensorflow:serving:batching_session:queuing_latency_count")
        assert sum(queue.values()) == 3  # B's wait is in the queue figures
        waits = end.series(":tensorflow:serving:batching_session:queuing_latency_sum")
        assert sum(waits.values()) >= 0.3e6 * 0.9, waits  # B waited at least until A left (600 ms), > its 300 ms
    finally:
        server.stop()


def test_the_shutdown_line_counts_a_call_the_stop_cut_off():
    proc = subprocess.Popen([sys.executable, "-m", "tfs_user.demo_server", "--port", "0", "--shape=-1,8,8,3",
                             "--output-size", "10", "--slow-every", "2", "--slow-delay-ms", "2500"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("demo server listening on "), line + proc.stderr.read()
        address, codes = line.split()[-1], []
        call(address, 30, codes)  # 1: ok
        slow = threading.Thread(target=call, args=(address, 30, codes))
        slow.start()  # 2: in the handler for 2.5 s when the stop (1 s grace) cuts it off
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        slow.join(30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert codes[0] == "OK" and codes[1] != "OK", codes
    assert out == "demo server served 2 requests (1 ok, 0 failed, 1 cancelled), 2 frames\n", out
