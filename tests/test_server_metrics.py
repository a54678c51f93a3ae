"""tfs_user.server_metrics: scrape a metrics page, parse it, and turn two pages into one model's figures.

The pages are written here as each server writes them (names, label names and order, bucket
boundaries, line order), from the servers' source and docs:
- TF Serving: tensorflow_serving/util/prometheus_exporter.cc (buckets, then _sum, then _count;
  bucket limits printed by absl::StrCat, six significant digits), servables/tensorflow/util.cc
  (request_latency and runtime_latency: Exponential(10, 1.8, 33) microseconds),
  batching/batching_session.cc (queuing_latency: Exponential(100, 1.2, 52) microseconds).
- OVMS: docs/metrics.md and docs/metrics_output.out (buckets floor(10 * 1.8^i), 33 of them).
- Triton: docs/user_guide/metrics.md and qa/ (counters without _total; failures by reason).
- MLServer 1.7.1: a page read from a running MLServer (prometheus_client's format: _total, _created).
Expected figures are worked out by hand below each page.
"""

import http.server
import socket
import subprocess
import sys
import threading
import time

import pytest

from tfs_user.server_metrics import (MetricsError, NoFigures, ServerFigures, parse, scrape, server_figures)
from tfs_user.server_metrics.snapshots import HistogramDelta, quantile

approx = pytest.approx


def _histogram(name, labels, les, per_bucket, total, order=("buckets", "sum", "count")):
    """Lines of one histogram series: ``per_bucket`` {le text: observations in that bucket}."""
    buckets, cumulative = [], 0
    for le in [*les, "+Inf"]:
        cumulative += per_bucket.get(le, 0)
        buckets.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
    parts = {"buckets": buckets, "sum": [f"{name}_sum{{{labels}}} {total}"],
             "count": [f"{name}_count{{{labels}}} {cumulative}"]}
    return "\n".join(line for part in order for line in parts[part])


# --- TF Serving ---------------------------------------------------------------------------------

TF_LES = ["10", "18", "32.4", "58.32", "104.976", "188.957", "340.122", "612.22", "1102", "1983.59", "3570.47",
          "6426.84", "11568.3", "20823", "37481.3", "67466.4", "121440", "218591", "393464", "708235", "1.27482e+06",
          "2.29468e+06", "4.13043e+06", "7.43477e+06", "1.33826e+07", "2.40887e+07", "4.33596e+07", "7.80473e+07",
          "1.40485e+08", "2.52873e+08", "4.55172e+08", "8.19309e+08", "1.47476e+09"]
TF_QUEUE_LES = [f"{100 * 1.2 ** i:.6g}" for i in range(52)]  # "100", "120", "144", "172.8", ...
TF_REQ = 'model_name="resnet",API="Predict",entrypoint="GRPC"'
TF_RUN = 'model_name="resnet",API="Predict",runtime="TF1"'
TF_OTHER = 'model_name="other",API="Predict",entrypoint="GRPC"'


def tf_page(ok, bad, request, runtime, queue=None, other_ok=50, other=None):
    """A TF Serving page; request/runtime/queue: (per bucket, sum) or None (not published)."""
    lines = ["# TYPE :tensorflow:serving:request_count counter",
             f':tensorflow:serving:request_count{{model_name="resnet",status="OK"}} {ok}',
             f':tensorflow:serving:request_count{{model_name="resnet",status="INVALID_ARGUMENT"}} {bad}',
             f':tensorflow:serving:request_count{{model_name="other",status="OK"}} {other_ok}',
             "# TYPE :tensorflow:serving:request_latency histogram",
             _histogram(":tensorflow:serving:request_latency", TF_REQ, TF_LES, *request),
             _histogram(":tensorflow:serving:request_latency", TF_OTHER, TF_LES, *(other or ({}, 0)))]
    if runtime:
        lines += ["# TYPE :tensorflow:serving:runtime_latency histogram",
                  _histogram(":tensorflow:serving:runtime_latency", TF_RUN, TF_LES, *runtime)]
    if queue:
        lines += ["# TYPE :tensorflow:serving:batching_session:queuing_latency histogram",
                  _histogram(":tensorflow:serving:batching_session:queuing_latency",
                             'thread_pool_name="model_server_batch_threads"', TF_QUEUE_LES, *queue)]
    return parse("\n".join(lines) + "\n")


TF_START = dict(ok=100, bad=2, request=({"1102": 100}, 90000), runtime=({"612.22": 100}, 50000),
                queue=({"120": 10}, 1100))
TF_END = dict(ok=300, bad=5, request=({"1102": 180, "1983.59": 118, "3570.47": 2}, 350000),
              runtime=({"612.22": 300}, 150000), queue=({"120": 210}, 23100),
              other_ok=1000, other=({"3570.47": 900}, 3_000_000))


def test_tf_serving_figures_over_the_window():
    figures = server_figures(tf_page(**TF_START), tf_page(**TF_END), "resnet")
    assert isinstance(figures, ServerFigures) and figures.server == "TF Serving"
    assert (figures.requests, figures.failures) == (200, 3)  # 300-100 OK; 5-2 INVALID_ARGUMENT; "other" ignored
    r = figures.request_ms  # in the window: 80 in (612.22, 1102], 118 in (1102, 1983.59], 2 in (1983.59, 3570.47]
    assert r.mean == approx(260000 / 200 / 1000)
    assert r.p50 == approx((1102 + (1983.59 - 1102) * (100 - 80) / 118) / 1000)  # rank 100 of 200
    assert r.p50_bucket == approx((1.102, 1.98359))
    assert r.p99 == approx(1.98359) and r.p99_bucket == approx((1.102, 1.98359))  # rank 198 = the bucket's top
    i = figures.inference_ms  # 200 in (340.122, 612.22]
    assert i.mean == approx(0.5)
    assert i.p50 == approx((340.122 + (612.22 - 340.122) * 100 / 200) / 1000)
    assert i.p99 == approx((340.122 + (612.22 - 340.122) * 198 / 200) / 1000)
    q = figures.queue_ms  # 200 in (100, 120]
    assert (q.mean, q.p50, q.p99) == (approx(0.11), approx(0.11), approx(0.1198))
    assert q.p99_bucket == approx((0.1, 0.12))
    assert any("whole batching thread pool" in note for note in figures.notes)
    assert figures.server_batch is None


def test_tf_serving_without_batching_or_runtime_latency_gives_none_not_zero():
    start = tf_page(**{**TF_START, "runtime": None, "queue": None})
    end = tf_page(**{**TF_END, "runtime": None, "queue": None})
    figures = server_figures(start, end, "resnet")
    assert figures.inference_ms is None and figures.queue_ms is None
    assert figures.request_ms.mean == approx(1.3)
    assert ":tensorflow:serving:runtime_latency: not published" in figures.notes
    assert "queue_ms: no batching queue metric (batching off)" in figures.notes


def test_a_counter_reset_gives_none_and_says_so():
    end = tf_page(**{**TF_END, "ok": 40})  # the server restarted: OK went from 100 down to 40
    figures = server_figures(tf_page(**TF_START), end, "resnet")
    assert figures.requests is None
    assert figures.failures == 3  # the other series did not go down
    assert any("went down from 100 to 40 (counter reset)" in note for note in figures.notes)


# --- OVMS ---------------------------------------------------------------------------------------

OVMS_LES = ["10", "18", "32", "58", "104", "188", "340", "612", "1101", "1983", "3570", "6426", "11568", "20822",
            "37481", "67466", "121439", "218591", "393464", "708235", "1274823", "2294682", "4130428", "7434771",
            "13382588", "24088659", "43359586", "78047255", "140485060", "252873108", "455171596", "819308872",
            "1474755971"]
OVMS_ORDER = ("count", "sum", "buckets")


def ovms_page(ok, fail, request, inference, wait, current=0, queue=4, other=0):
    k = 'api="TensorFlowServing",interface="gRPC"'
    lines = ["# HELP ovms_requests_success Number of successful requests to a model or a DAG.",
             "# TYPE ovms_requests_success counter",
             f'ovms_requests_success{{{k},method="Predict",name="resnet",version="1"}} {ok}',
             f'ovms_requests_success{{api="KServe",interface="gRPC",method="ModelInfer",name="resnet",version="1"}} 0',
             f'ovms_requests_success{{{k},method="GetModelMetadata",name="resnet",version="1"}} {ok // 100}',
             f'ovms_requests_success{{api="KServe",interface="gRPC",method="ModelReady",name="resnet"}} {ok // 50}',
             f'ovms_requests_success{{{k},method="Predict",name="dummy",version="1"}} {other}',
             "# HELP ovms_requests_fail Number of failed requests to a model or a DAG.",
             "# TYPE ovms_requests_fail counter",
             f'ovms_requests_fail{{{k},method="Predict",name="resnet",version="1"}} {fail}',
             'ovms_requests_fail{api="TensorFlowServing",interface="REST",method="GetModelStatus",name="resnet"} '
             f'{fail}',
             "# HELP ovms_infer_req_queue_size Inference request queue size (nireq).",
             "# TYPE ovms_infer_req_queue_size gauge",
             f'ovms_infer_req_queue_size{{name="resnet",version="1"}} {queue}',
             'ovms_infer_req_queue_size{name="dummy",version="1"} 2',
             "# HELP ovms_current_requests Number of inference requests currently in process.",
             "# TYPE ovms_current_requests gauge",
             f'ovms_current_requests{{name="resnet",version="1"}} {current}',
             'ovms_current_requests{name="dummy",version="1"} 3',
             "# HELP ovms_request_time_us Processing time of requests to a model or a DAG.",
             "# TYPE ovms_request_time_us histogram",
             _histogram("ovms_request_time_us", 'interface="REST",name="resnet",version="1"', OVMS_LES, {}, 0,
                        OVMS_ORDER),
             _histogram("ovms_request_time_us", 'interface="gRPC",name="resnet",version="1"', OVMS_LES, *request,
                        OVMS_ORDER),
             _histogram("ovms_request_time_us", 'interface="gRPC",name="dummy",version="1"', OVMS_LES,
                        {"104": other}, other * 100, OVMS_ORDER),
             "# HELP ovms_inference_time_us Inference execution time in the OpenVINO backend.",
             "# TYPE ovms_inference_time_us histogram",
             _histogram("ovms_inference_time_us", 'name="resnet",version="1"', OVMS_LES, *inference, OVMS_ORDER),
             _histogram("ovms_inference_time_us", 'name="dummy",version="1"', OVMS_LES, {"58": other}, other * 50,
                        OVMS_ORDER),
             "# HELP ovms_wait_for_infer_req_time_us Request waiting time in the scheduling queue.",
             "# TYPE ovms_wait_for_infer_req_time_us histogram",
             _histogram("ovms_wait_for_infer_req_time_us", 'name="resnet",version="1"', OVMS_LES, *wait, OVMS_ORDER)]
    return parse("\n".join(lines) + "\n")


OVMS_START = dict(ok=10, fail=0, request=({"6426": 10}, 60000), inference=({"6426": 10}, 48000), wait=({"10": 10}, 50))
OVMS_END = dict(ok=510, fail=4, request=({"6426": 210, "11568": 295, "20822": 5}, 3_560_000),
                inference=({"6426": 510}, 2_448_000), wait=({"10": 500, "18": 10}, 2550), current=8, other=40)


def test_ovms_figures_over_the_window():
    figures = server_figures(ovms_page(**OVMS_START), ovms_page(**OVMS_END), "resnet")
    assert figures.server == "OVMS"
    # Predict and ModelInfer calls only: GetModelMetadata, ModelReady, GetModelStatus and "dummy" are left out
    assert (figures.requests, figures.failures) == (500, 4)
    r = figures.request_ms  # 200 in (3570, 6426], 295 in (6426, 11568], 5 in (11568, 20822]; REST series: none
    assert r.mean == approx(3_500_000 / 500 / 1000)
    assert r.p50 == approx((6426 + (11568 - 6426) * (250 - 200) / 295) / 1000)
    assert r.p50_bucket == approx((6.426, 11.568))
    assert r.p99 == approx(11.568)  # rank 495 = 200 + 295
    i = figures.inference_ms  # 500 in (3570, 6426]
    assert (i.mean, i.p50, i.p99) == (approx(4.8), approx(4.998), approx(6.39744))  # 3570 + 2856 * 250/500, * 495/500
    q = figures.queue_ms  # 490 in [0, 10], 10 in (10, 18]
    assert q.mean == approx(0.005)
    assert q.p50 is None and q.p50_bucket == approx((0.0, 0.01))  # the first bucket, from 0: no invented number
    assert q.p99 == approx(0.014) and q.p99_bucket == approx((0.01, 0.018))  # 10 + 8 * (495 - 490) / 10 us
    assert figures.gauges == {"ovms_current_requests": 8, "ovms_infer_req_queue_size": 4}


def test_no_requests_in_the_window_gives_no_times():
    page = ovms_page(**OVMS_START)
    figures = server_figures(page, page, "resnet")
    assert (figures.requests, figures.failures) == (0, 0)
    assert figures.request_ms is None and figures.inference_ms is None and figures.queue_ms is None
    assert "ovms_request_time_us: no observations in the window" in figures.notes


def test_a_histogram_reset_gives_none_and_says_so():
    end = ovms_page(**{**OVMS_END, "request": ({"6426": 5}, 30000)})  # count 5 < 10 at the start
    figures = server_figures(ovms_page(**OVMS_START), end, "resnet")
    assert figures.request_ms is None and figures.inference_ms is not None
    assert any(note.startswith("ovms_request_time_us_count: went down") for note in figures.notes)
    # restarted and busier since: the count grew past the start's, a bucket did not
    end = ovms_page(**{**OVMS_END, "request": ({"6426": 5, "11568": 600}, 6_000_000)})
    figures = server_figures(ovms_page(**OVMS_START), end, "resnet")
    assert figures.request_ms is None
    assert "ovms_request_time_us: bucket le=6426 went down from 10 to 5 (counter reset)" in figures.notes


# --- Triton -------------------------------------------------------------------------------------

def triton_page(success, failures, inferences, executions, request_us, queue_us, compute_us, latencies=True):
    m, o = 'model="densenet_onnx",version="1"', 'model="simple",version="1"'
    lines = ["# HELP nv_inference_request_success Number of successful inference requests, all batch sizes",
             "# TYPE nv_inference_request_success counter",
             f"nv_inference_request_success{{{m}}} {success}", f"nv_inference_request_success{{{o}}} {success * 7}",
             "# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes",
             "# TYPE nv_inference_request_failure counter",
             *[f'nv_inference_request_failure{{model="densenet_onnx",reason="{r}",version="1"}} {n}'
               for r, n in zip(("REJECTED", "CANCELED", "BACKEND", "OTHER"), failures)],
             f'nv_inference_request_failure{{model="simple",reason="OTHER",version="1"}} {success}',
             "# HELP nv_inference_count Number of inferences performed (does not include cached requests)",
             "# TYPE nv_inference_count counter",
             f"nv_inference_count{{{m}}} {inferences}", f"nv_inference_count{{{o}}} {success * 7}",
             "# HELP nv_inference_exec_count Number of model executions performed (does not include cached requests)",
             "# TYPE nv_inference_exec_count counter",
             f"nv_inference_exec_count{{{m}}} {executions}", f"nv_inference_exec_count{{{o}}} {success * 7}",
             "# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution",
             "# TYPE nv_inference_pending_request_count gauge",
             f"nv_inference_pending_request_count{{{m}}} 5", f"nv_inference_pending_request_count{{{o}}} 0"]
    if latencies:
        for name, value in (("request_duration_us", request_us), ("queue_duration_us", queue_us),
                            ("compute_infer_duration_us", compute_us)):
            lines += [f"# TYPE nv_inference_{name} counter",
                      f"nv_inference_{name}{{{m}}} {value}", f"nv_inference_{name}{{{o}}} {success * 70}"]
    lines += ["# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)", "# TYPE nv_gpu_utilization gauge",
              'nv_gpu_utilization{gpu_uuid="GPU-5c8f35d4-2b1d-4bd7-8a3e-000000000000"} 0.8',
              'nv_gpu_utilization{gpu_uuid="GPU-9e1a6b70-11aa-4c3e-9b2f-000000000001"} 0.4']
    return parse("\n".join(lines) + "\n")


TRITON_START = dict(success=1000, failures=(0, 0, 1, 0), inferences=1000, executions=1000, request_us=5_000_000,
                    queue_us=1_000_000, compute_us=2_000_000)
TRITON_END = dict(success=1600, failures=(3, 0, 2, 0), inferences=3400, executions=1300, request_us=8_000_000,
                  queue_us=1_600_000, compute_us=3_800_000)


def test_triton_figures_over_the_window():
    figures = server_figures(triton_page(**TRITON_START), triton_page(**TRITON_END), "densenet_onnx")
    assert figures.server == "Triton"
    assert (figures.requests, figures.failures) == (600, 4)  # failures: 3 REJECTED + 1 BACKEND
    assert figures.request_ms.mean == approx(5.0)  # 3,000,000 us / 600 requests
    assert figures.queue_ms.mean == approx(1.0)  # 600,000 / 600
    assert figures.inference_ms.mean == approx(3.0)  # 1,800,000 / 600
    assert figures.request_ms.p50 is None and figures.request_ms.p99 is None  # counters: no buckets
    assert figures.server_batch == approx(8.0)  # 2400 inferences / 300 executions
    assert figures.gauges == {"nv_inference_pending_request_count": 5, "nv_gpu_utilization": approx(0.6)}


def test_triton_with_counter_latencies_off_gives_none_not_zero():
    start, end = triton_page(**TRITON_START, latencies=False), triton_page(**TRITON_END, latencies=False)
    figures = server_figures(start, end, "densenet_onnx")
    assert figures.requests == 600
    assert figures.request_ms is None and figures.queue_ms is None and figures.inference_ms is None
    assert "nv_inference_queue_duration_us: not published" in figures.notes


# --- MLServer -----------------------------------------------------------------------------------

ML_LES = ["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0", "7.5", "10.0"]
GRPC = 'grpc_method="{}",grpc_service="inference.GRPCInferenceService",grpc_type="UNARY"'
ML_ORDER = ("buckets", "count", "sum")


def mlserver_page(success, failure, duration, handling, started=True):
    """As MLServer 1.7.1 writes it; ``started=False``: before the first inference (no model_infer_* yet)."""
    lines = ["# HELP python_gc_objects_collected_total Objects collected during gc",
             "# TYPE python_gc_objects_collected_total counter",
             'python_gc_objects_collected_total{generation="0"} 1234.0']
    if started:
        lines += ["# HELP model_infer_request_success_total Model infer request success count",
                  "# TYPE model_infer_request_success_total counter",
                  f'model_infer_request_success_total{{model="iris",version=""}} {success}',
                  "# HELP model_infer_request_success_created Model infer request success count",
                  "# TYPE model_infer_request_success_created gauge",
                  'model_infer_request_success_created{model="iris",version=""} 1.796315091833511e+09',
                  "# HELP model_infer_request_failure_total Model infer request failure count",
                  "# TYPE model_infer_request_failure_total counter",
                  f'model_infer_request_failure_total{{model="iris",version=""}} {failure}',
                  f'model_infer_request_failure_total{{model="nope",version=""}} {failure * 5}',
                  "# HELP model_infer_request_duration Model infer request duration",
                  "# TYPE model_infer_request_duration summary",
                  f'model_infer_request_duration_count{{model="iris",version=""}} {duration[0]}',
                  f'model_infer_request_duration_sum{{model="iris",version=""}} {duration[1]}',
                  'model_infer_request_duration_count{model="nope",version=""} 1.0',
                  'model_infer_request_duration_sum{model="nope",version=""} 3.795399970840663e-05']
    lines += ["# HELP grpc_server_handling_seconds Histogram of response latency (seconds) of gRPC that had been "
              "application-level handled by the server.",
              "# TYPE grpc_server_handling_seconds histogram",
              _histogram("grpc_server_handling_seconds", GRPC.format("ModelReady"), ML_LES, {"0.005": 40}, 0.01,
                         ML_ORDER),
              _histogram("grpc_server_handling_seconds", GRPC.format("ModelInfer"), ML_LES, *handling, ML_ORDER)]
    return parse("\n".join(lines) + "\n")


ML_START = dict(success=3.0, failure=0.0, duration=(3.0, 0.03), handling=({"0.005": 1, "0.01": 2}, 0.02))
ML_END = dict(success=10.0, failure=1.0, duration=(11.0, 0.11), handling=({"0.005": 3, "0.01": 6, "0.025": 2}, 0.11))


def test_mlserver_figures_over_the_window():
    figures = server_figures(mlserver_page(**ML_START), mlserver_page(**ML_END), "iris")
    assert figures.server == "MLServer"
    assert (figures.requests, figures.failures) == (7, 1)  # "nope"'s failures are left out
    assert figures.inference_ms.mean == approx(10.0)  # 0.08 s / 8 calls of the dataplane (7 + 1 failed)
    assert figures.inference_ms.p50 is None  # a summary without quantiles
    r = figures.request_ms  # ModelInfer: 2 in (0, 0.005], 4 in (0.005, 0.01], 2 in (0.01, 0.025] seconds
    assert r.mean == approx(0.09 / 8 * 1000)
    assert r.p50 == approx((0.005 + 0.005 * (4 - 2) / 4) * 1000) and r.p50_bucket == approx((5.0, 10.0))
    assert r.p99 is None and r.p99_bucket == approx((10.0, 25.0))  # 2.5x wide: the bucket only
    assert r.with_failures and figures.inference_ms.with_failures  # MLServer times failed calls too
    assert figures.queue_ms is None


def test_series_created_during_the_window_count_from_zero():
    start = mlserver_page(**ML_START, started=False)  # MLServer creates model_infer_* at the first inference
    figures = server_figures(start, mlserver_page(**ML_END), "iris")
    assert (figures.requests, figures.failures) == (10, 1)
    assert figures.inference_ms.mean == approx(0.11 / 11 * 1000)


# --- recognising, parsing -----------------------------------------------------------------------

def test_another_model_or_an_unknown_server_gives_no_figures_and_a_reason():
    missing = server_figures(ovms_page(**OVMS_START), ovms_page(**OVMS_END), "bert")
    assert isinstance(missing, NoFigures)
    assert missing.reason == "OVMS metrics name no model 'bert' in ovms_requests_success (models: dummy, resnet)"
    other = parse("# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 3\n")
    unknown = server_figures(other, other, "resnet")
    assert isinstance(unknown, NoFigures) and unknown.reason.startswith("no metrics of a known model server")
    assert "http_requests" in unknown.reason


def test_counters_are_keyed_without_total_whether_or_not_the_server_wrote_it():
    snapshot = parse('# TYPE nv_inference_count counter\nnv_inference_count{model="m",version="1"} 7\n'
                     '# TYPE model_infer_request_success_total counter\n'
                     'model_infer_request_success_total{model="m",version=""} 3.0\n'
                     'model_infer_request_success_created{model="m",version=""} 1.7e+09\n')
    assert snapshot.samples == {("nv_inference_count", frozenset({"model": "m", "version": "1"}.items())): 7.0,
                                ("model_infer_request_success", frozenset({"model": "m", "version": ""}.items())): 3.0}


@pytest.mark.parametrize("text", ["<html><body>Not found</body></html>", '{"status": "ok"}', "metric{a=\"1\" 2\n",
                                  "metric{a=\"1\"} notanumber\n", "hello world"])
def test_malformed_text_raises_metrics_error(text):
    with pytest.raises(MetricsError, match="not Prometheus text"):
        parse(text)


def test_a_quantile_in_the_inf_bucket_is_its_lower_bound():
    histogram = HistogramDelta(count=10, sum=0, buckets=((100.0, 5), (200.0, 9), (float("inf"), 10)))
    assert quantile(histogram, 0.99) == (200.0, (200.0, float("inf")))
    assert quantile(histogram, 0.5) == (100.0, (0.0, 100.0))  # rank 5: the top of the first bucket
    assert quantile(HistogramDelta(0, 0, ((100.0, 0), (float("inf"), 0))), 0.5) is None


def test_the_package_imports_neither_locust_nor_grpc():
    code = ("import sys, tfs_user.server_metrics\n"
            "print(sorted(m for m in ('locust', 'grpc', 'gevent') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- scrape() against a real HTTP server --------------------------------------------------------

PAGE = '# TYPE nv_inference_count counter\nnv_inference_count{model="m",version="1"} 7\n'


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(1.5)
        status, kind, body = {"/metrics": (200, "text/plain; version=0.0.4", PAGE),
                              "/slow": (200, "text/plain", PAGE),
                              "/html": (200, "text/html", "<html><body>Model server</body></html>"),
                              "/empty": (200, "text/plain", "")}.get(self.path, (404, "text/plain", "not found"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # /slow: the client gave up first
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def http_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_scrape_reads_the_page(http_url):
    assert scrape(f"{http_url}/metrics") == PAGE
    assert parse(scrape(f"{http_url}/metrics")).samples  # and it parses
    assert scrape(f"{http_url}/empty") == ""  # a server with no metrics yet


def test_scrape_names_an_http_status(http_url):
    with pytest.raises(MetricsError) as e:
        scrape(f"{http_url}/nothing")
    assert str(e.value) == f"server metrics {http_url}/nothing: HTTP 404 Not Found"


def test_scrape_names_a_refused_connection():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connecting is refused
        with pytest.raises(MetricsError) as e:
            scrape(f"http://127.0.0.1:{port}/metrics")
    assert str(e.value) == f"server metrics http://127.0.0.1:{port}/metrics: connection refused"


def test_scrape_names_a_timeout(http_url):
    began = time.monotonic()
    with pytest.raises(MetricsError) as e:
        scrape(f"{http_url}/slow", timeout_s=0.2)
    assert str(e.value) == f"server metrics {http_url}/slow: no answer within 0.2 s"
    assert time.monotonic() - began < 1.4


def test_scrape_names_a_page_that_is_not_prometheus_text(http_url):
    with pytest.raises(MetricsError) as e:
        scrape(f"{http_url}/html")
    assert str(e.value) == (f"server metrics {http_url}/html: not Prometheus text (Content-Type 'text/html', "
                            "first line '<html><body>Model server</body></html>')")
    with pytest.raises(MetricsError, match="not an http"):
        scrape("file:///etc/passwd")


# --- entries: what the reports show -------------------------------------------------------------

from tfs_user.server_metrics import entries  # noqa: E402
from tfs_user.server_metrics.entries import ClientSide  # noqa: E402


def _ovms_window(ok):
    start = ovms_page(10, 0, ({"1983": 10}, 15000), ({"1101": 10}, 9000), ({"10": 10}, 50))
    end = ovms_page(10 + ok, 1, ({"1983": 10 + ok}, 15000 + 1500 * ok), ({"1101": 10 + ok}, 9000 + 900 * ok),
                    ({"10": 10 + ok}, 50 + 5 * ok))
    return start, end


@pytest.mark.parametrize("sent, warned", [(101, False), (103, False), (99, False), (104, True), (98, True)])
def test_the_count_cross_check_allows_the_requests_in_flight_and_no_more(sent, warned):
    start, end = _ovms_window(100)  # 100 successes and 1 failure in the window: 101 counted
    e = entries.entry("http://h/metrics", start, end, "resnet", ClientSide(sent, 2, 2.0))
    assert (e["server"], e["requests"], e["failures"], e["client_requests"]) == ("OVMS", 100, 1, sent)
    assert e["count_gap"] == 101 - sent
    assert (e["warning"] is not None) == warned
    if warned:
        direction = f"{sent - 101} fewer" if sent > 101 else f"{101 - sent} more"
        why = "requests lost on the way, or a metrics page that does not update (a cache, a static file, another " \
            "replica behind a load balancer)" if sent > 101 else "other clients of this model, or retries"
        assert f"the server counted 101 requests of model 'resnet', we sent {sent} (measured): {direction}, more " \
               f"than the 2 the window's edges allow" in e["warning"], e["warning"]
        assert e["warning"].endswith(why), e["warning"]
    assert e["count_slack"] == 2


def test_an_entry_has_the_servers_times_in_ms_and_network_plus_client():
    start, end = _ovms_window(100)
    e = entries.entry("http://h/metrics", start, end, "resnet", ClientSide(101, 4, 2.25))
    assert e["request_ms"]["mean"] == approx(1.5) and e["inference_ms"]["mean"] == approx(0.9)
    assert e["queue_ms"]["mean"] == approx(0.005)
    assert e["request_ms"]["p50_bucket_ms"] == [approx(1.101), approx(1.983)]  # the bucket that holds the median
    assert e["network_client_ms"] == approx(2.25 - 1.5)
    no_client = entries.entry("http://h/metrics", start, end, "resnet", ClientSide(101, 4, None))
    assert no_client["network_client_ms"] is None  # no successful request of ours: empty, not 0


def test_a_failed_scrape_or_unknown_page_is_an_entry_with_its_error_and_no_figures():
    start, end = _ovms_window(5)
    refused = MetricsError("server metrics http://h/metrics: connection refused")
    for pages, error in (((refused, end), str(refused)), ((start, None), "server metrics http://h/metrics: not scraped"),
                         ((parse("# TYPE x counter\nx 1\n"),) * 2, "server metrics http://h/metrics: no metrics of a known")):
        e = entries.entry("http://h/metrics", *pages, "resnet", ClientSide(5, 1, 1.0))
        assert e["error"].startswith(error), e["error"]
        assert e["requests"] is None and e["request_ms"]["mean"] is None and e["count_gap"] is None
        assert e["warning"] is None


def test_step_columns_sum_requests_and_weight_mean_times_by_requests():
    a = {"requests": 100, **{k: {"mean": m} for (k, _), m in zip(entries.TIMES, (2.0, 1.0, 0.5))}}
    b = {"requests": 300, **{k: {"mean": m} for (k, _), m in zip(entries.TIMES, (4.0, None, 1.5))}}
    down = {"requests": None, **{k: {"mean": None} for k, _ in entries.TIMES}}
    assert entries.step_columns({"a": a, "b": b, "c": down}) == {
        "server_requests": 400, "server_request_ms": approx(3.5), "server_queue_ms": approx(1.0),
        "server_inference_ms": approx(1.25)}
    assert entries.step_columns({"c": down}) == dict.fromkeys(entries.STEP_KEYS)
    # one URL: its own figures exactly (the step row and the server CSV must not differ in the last bit)
    one = {"requests": 53, **{k: {"mean": m} for (k, _), m in zip(entries.TIMES, (0.30957626791974346, None, 0.1))}}
    assert entries.step_columns({"a": one, "c": down}) == {
        "server_requests": 53, "server_request_ms": 0.30957626791974346, "server_queue_ms": None,
        "server_inference_ms": 0.1}


def test_csv_rows_and_console_lines_show_none_as_empty_never_zero():
    start, end = _ovms_window(100)
    good = entries.entry("http://h/metrics", start, end, "resnet", ClientSide(101, 2, 2.0))
    bad = entries.entry("http://x/metrics", MetricsError("server metrics http://x/metrics: HTTP 404 Not Found"), end,
                        "resnet", ClientSide(101, 2, 2.0))
    header, *rows = entries.csv_rows([("test", {"h": good, "x": bad}), ("step 1", {"h": good})])
    table = [dict(zip(header, row)) for row in rows]
    assert [(r["Window"], r["URL"]) for r in table] == [("test", "http://h/metrics"), ("test", "http://x/metrics"),
                                                        ("step 1", "http://h/metrics")]
    assert (table[0]["Server"], table[0]["Requests"], table[0]["Request mean ms"], table[0]["Server batch"]) == \
        ("OVMS", "100", "1.500", "")
    assert (table[1]["Requests"], table[1]["Queue p99 ms"], table[1]["Error"]) == \
        ("", "", "server metrics http://x/metrics: HTTP 404 Not Found")
    text = "\n".join(entries.lines({"h": good, "x": bad}, "the master (workers do not scrape)"))
    assert "scraped by the master (workers do not scrape)" in text
    assert "  http://x/metrics: no figures (HTTP 404 Not Found)" in text
    assert "  http://h/metrics (OVMS, model resnet): 100 requests, 1 failures; we sent 101" in text
    assert "Warning" not in text


def test_tf_serving_without_a_failure_series_has_zero_failures_not_none():
    # TF Serving's request_count has one series per status, made at its first request: no failed request yet,
    # no failure series, and the OK series says how many there were of all
    page = lambda ok: parse(f'# TYPE :tensorflow:serving:request_count counter\n'
                            f':tensorflow:serving:request_count{{model_name="resnet",status="OK"}} {ok}\n')
    figures = server_figures(page(5), page(25), "resnet")
    assert (figures.requests, figures.failures) == (20, 0)


# --- issue 29: times of the same requests as ours, no invented precision, KServe, unknown pages ------------

def test_mlserver_with_failures_says_so_in_its_figures_and_leaves_out_network_plus_client():
    # 42 failed calls beside 10 successes: MLServer's times are mostly of the failures (seen: "0 requests" beside a
    # 1.9 ms request mean, and a network + client figure subtracting unlike things)
    start = mlserver_page(**ML_START)
    end = mlserver_page(success=13.0, failure=42.0, duration=(55.0, 0.03 + 52 * 0.0019),
                        handling=({"0.005": 53, "0.01": 2}, 0.02 + 52 * 0.0019))
    e = entries.entry("http://m/metrics", start, end, "iris", ClientSide(52, 2, 2.0))
    assert (e["requests"], e["failures"]) == (10, 42)
    assert e["request_ms"]["with_failures"] and e["inference_ms"]["with_failures"]
    assert e["network_client_ms"] is None
    assert "network + client: left out, the server's request time includes 42 of 52 failed calls" in e["notes"][-1]
    text = "\n".join(entries.lines({"m": e}, "this process"))
    assert "request (failed calls included) mean 1.900" in text and "inference (failed calls included) mean" in text
    # one failure in 1001 calls (below FAILURE_SHARE): the subtraction stays, the figures still say it
    end = mlserver_page(success=1003.0, failure=1.0, duration=(1004.0, 1.0), handling=({"0.005": 1003, "0.01": 2}, 1.0))
    e = entries.entry("http://m/metrics", start, end, "iris", ClientSide(1001, 2, 2.0))
    assert e["network_client_ms"] == approx(2.0 - e["request_ms"]["mean"]) and e["request_ms"]["mean"] == approx(0.98 / 1002 * 1000)
    assert "(failed calls included)" in "\n".join(entries.lines({"m": e}, "this process"))
    # servers whose request time is of successful requests only (OVMS here) subtract whatever the failures
    start, end = _ovms_window(100)
    ovms = entries.entry("http://h/metrics", start, end, "resnet", ClientSide(101, 2, 2.0))
    assert ovms["failures"] == 1 and ovms["network_client_ms"] == approx(0.5)
    assert ovms["request_ms"]["with_failures"] is False


def test_an_estimate_in_a_wide_bucket_is_its_bucket_everywhere():
    # MLServer's first bucket is 0-5 ms: a p50 "2.513" inside it beside a 0.79 ms mean would mean nothing
    start = mlserver_page(**ML_START)
    end = mlserver_page(success=1003.0, failure=0.0, duration=(1003.0, 1.0), handling=({"0.005": 1003, "0.01": 2}, 0.81))
    e = entries.entry("http://m/metrics", start, end, "iris", ClientSide(1000, 2, 2.0))
    stat = e["request_ms"]
    assert (stat["p50"], stat["p50_bucket_ms"], stat["p99"], stat["p99_bucket_ms"]) == (None, [0.0, 5.0], None, [0.0, 5.0])
    assert entries.estimate_text(stat, "p50") == "<= 5.000"
    assert "p50 <= 5.000, p99 <= 5.000" in "\n".join(entries.lines({"m": e}, "this process"))
    header, row = entries.csv_rows([("test", {"m": e})])
    assert dict(zip(header, row))["Request p50 ms"] == "<= 5.000"
    from tfs_user.web.tab import server_rows
    assert server_rows({"m": e})[0]["request_p50"] == "<= 5.000"
    # a bucket within a factor of 2 keeps its number (TF Serving's and OVMS's grow by 1.8)
    start, end = _ovms_window(100)
    ovms = entries.entry("http://h/metrics", start, end, "resnet", ClientSide(101, 2, 2.0))
    assert ovms["request_ms"]["p50"] == approx(1.101 + (1.983 - 1.101) * 0.5)


KS_LES = ["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0", "7.5", "10.0"]


def kserve_page(calls, done, created=1.7e9):
    """KServe 0.21's /metrics for model kmodel: ``calls`` reached the model (pre- and predict observed), ``done``
    of them returned (postprocess observed); preprocess 1 ms, predict 20 ms, postprocess 2 ms each."""
    lines = ["# HELP python_gc_objects_collected_total Objects collected during gc",
             "# TYPE python_gc_objects_collected_total counter",
             'python_gc_objects_collected_total{generation="0"} 99.0',
             "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.",
             "# TYPE process_cpu_seconds_total counter", "process_cpu_seconds_total 3.2"]
    for step, n, seconds in (("preprocess", calls, 0.001), ("predict", calls, 0.02), ("postprocess", done, 0.002)):
        name = f"request_{step}_seconds"
        lines += [f"# HELP {name} {step} latency", f"# TYPE {name} histogram",
                  _histogram(name, 'model_name="kmodel"', KS_LES,
                             {next(le for le in KS_LES if float(le) >= seconds): n}, n * seconds, ML_ORDER),
                  f"# HELP {name}_created {step} latency", f"# TYPE {name}_created gauge",
                  f'{name}_created{{model_name="kmodel"}} {created}']
    return parse("\n".join(lines) + "\n")


def test_kserve_model_server_figures_over_the_window():
    f = server_figures(kserve_page(10, 10), kserve_page(110, 100), "kmodel")
    assert (f.server, f.requests, f.failures) == ("KServe", 90, 10)  # predict 100 calls, postprocess 90
    assert f.inference_ms.mean == approx(20.0) and f.inference_ms.with_failures
    assert f.inference_ms.p50 is None and f.inference_ms.p50_bucket == approx((10.0, 25.0))  # 2.5x: bucket only
    assert f.preprocess_ms.mean == approx(1.0) and f.postprocess_ms.mean == approx(2.0)
    assert not f.postprocess_ms.with_failures
    assert f.request_ms.mean == approx(23.0) and f.request_ms.with_failures and f.queue_ms is None
    e = entries.entry("http://k/metrics", kserve_page(10, 10), kserve_page(110, 100), "kmodel",
                      ClientSide(100, 2, 25.0))
    assert e["count_gap"] == 0 and e["warning"] is None
    assert e["network_client_ms"] is None  # 10 % failures inside its times
    text = "\n".join(entries.lines({"k": e}, "this process"))
    assert "(KServe, model kmodel): 90 requests, 10 failures; we sent 100" in text
    assert "preprocess (failed calls included) mean 1.000" in text and "postprocess mean 2.000" in text
    clean = entries.entry("http://k/metrics", kserve_page(10, 10), kserve_page(110, 110), "kmodel",
                          ClientSide(100, 2, 25.0))
    assert clean["network_client_ms"] == approx(2.0)
    restarted = server_figures(kserve_page(500, 500), kserve_page(600, 600, created=1.8e9), "kmodel")
    assert restarted.requests is None and any("counter reset" in note for note in restarted.notes)


def test_an_unknown_page_lists_the_names_that_look_like_request_metrics_first():
    page = parse("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n"
                 "# TYPE python_info gauge\npython_info 1\n# TYPE aaa gauge\naaa 1\n# TYPE zz_infer_latency histogram\n"
                 'zz_infer_latency_bucket{le="+Inf"} 1\nzz_infer_latency_count 1\nzz_infer_latency_sum 1\n'
                 "# TYPE my_request_total counter\nmy_request_total 4\n# TYPE b gauge\nb 1\n# TYPE c gauge\nc 1\n")
    reason = server_figures(page, page, "m").reason
    assert reason.endswith("names: my_request, zz_infer_latency, aaa, b, c and 2 more"), reason
    assert "(TF Serving, OVMS, Triton, MLServer, KServe)" in reason
