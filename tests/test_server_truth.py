"""Every sentence the tool prints about a server's side is true, and its JSON is valid (issue 29).

One real run against the demo server reads several metrics endpoints at once, each a way a page can be
wrong or odd: a static page (it never changes), HTTP 404, a refused connection, garbage, the gRPC port
(not HTTP at all), a page whose observations all fall in the +Inf bucket, a server that restarted and
climbed past its old count, and the demo server's own page. Each gets its own true sentence; the run
starts whole (the loop-lag probe runs), exits 0, and writes JSON that a strict parser reads (no
Infinity, no NaN). MLServer with failures and KServe's model server are in their own modules (real
servers in their own virtualenvs).
"""

import csv
import http.server
import json

import pytest

from conftest import http_pages
from tfs_user.demo.model import ModelConfig

TINY = ModelConfig(shape=(-1, 4), output_size=1)
LES_US = ["10", "18", "32.4", "58.32"]


def strict_json(text):
    """json.loads that refuses Infinity and NaN, as browsers' and most languages' parsers do."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def tf_serving_page(ok, latency_us=None, les=LES_US):
    """A TF Serving page for model resnet: ``ok`` OK requests, each of latency ``latency_us`` (None: no histogram)."""
    lines = ["# TYPE :tensorflow:serving:request_count counter",
             f':tensorflow:serving:request_count{{model_name="resnet",status="OK"}} {ok}']
    if latency_us is not None:
        lines.append("# TYPE :tensorflow:serving:request_latency histogram")
        for le in [*les, "+Inf"]:
            count = ok if le == "+Inf" or float(le) >= latency_us else 0
            lines.append(f':tensorflow:serving:request_latency_bucket{{model_name="resnet",API="predict",'
                         f'entrypoint="GRPC",le="{le}"}} {count}')
        lines.append(f':tensorflow:serving:request_latency_sum{{model_name="resnet",API="predict",entrypoint="GRPC"}} '
                     f'{ok * latency_us}')
        lines.append(f':tensorflow:serving:request_latency_count{{model_name="resnet",API="predict",'
                     f'entrypoint="GRPC"}} {ok}')
    return "\n".join(lines) + "\n"


def restarted_page(success, created):
    """MLServer's counters (prometheus_client: ``_total`` and ``_created``) for model resnet."""
    return ("# TYPE model_infer_request_success_total counter\n"
            f'model_infer_request_success_total{{model="resnet",version=""}} {success}\n'
            "# TYPE model_infer_request_success_created gauge\n"
            f'model_infer_request_success_created{{model="resnet",version=""}} {created}\n'
            "# TYPE model_infer_request_failure_total counter\n"
            'model_infer_request_failure_total{model="resnet",version=""} 0.0\n'
            "# TYPE model_infer_request_failure_created gauge\n"
            f'model_infer_request_failure_created{{model="resnet",version=""}} {created}\n')


class _Pages(http.server.BaseHTTPRequestHandler):
    """Scripted pages; ``demo`` is the demo server (the +Inf page counts what it served)."""

    demo = None
    seen = {}

    def do_GET(self):
        n = self.seen[self.path] = self.seen.get(self.path, 0) + 1
        if self.path == "/404":
            self.send_error(404)
            return
        if self.path == "/static":
            body = tf_serving_page(1000, 20)
        elif self.path == "/garbage":
            body = "{definitely: not prometheus text}\n"
        elif self.path == "/inf":  # every request took longer than the last finite bucket
            body = tf_serving_page(self.demo.counts()["ok"], 90_000)
        elif self.path == "/restart":  # 1000 before, then it restarted and counted 1500 since
            body = restarted_page(1000.0 if n == 1 else 1500.0, 1.7e9 if n == 1 else 1.8e9)
        else:
            self.send_error(500)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def pages():
    handler = type("Pages", (_Pages,), {"seen": {}})
    with http_pages(handler) as url:
        yield handler, url


def test_each_kind_of_page_gets_a_true_sentence_and_the_json_is_valid(demo_server, run_locust, pages, free_port):
    server = demo_server(models=[TINY], workers=4, delay_ms=1, metrics_port=0)
    handler, base = pages
    handler.demo = server
    closed = free_port()
    cases = {  # name: (URL, what the console says of it, what the JSON entry says)
        "static": (f"{base}/static", "its page did not change at all between the two readings: a metrics page that "
                                     "does not update (a cache, a static file, another replica behind a load balancer)"),
        "404": (f"{base}/404", "no figures (HTTP 404 Not Found)"),
        "refused": (f"http://127.0.0.1:{closed}/metrics", "no figures (connection refused)"),
        "garbage": (f"{base}/garbage", "no figures (not Prometheus text"),
        "grpc port": (f"http://{server.address}/metrics", "no figures (the answer is not HTTP (BadStatusLine"),
        "+Inf": (f"{base}/inf", "request mean 90.000, p50 > 0.058, p99 > 0.058"),
        "restart": (f"{base}/restart", "began again between the readings (its _created time changed: counter "
                                       "reset, server restarted)"),
        "demo": (server.metrics_url, "(TF Serving, model resnet): "),
    }
    run = run_locust("--host", server.address, "-u", "2", "-r", "2", "-t", "2s", "--status-interval", "0",
                     "--json-summary", "summary.json", "--server-metrics", ",".join(url for url, _ in cases.values()))
    assert run.returncode == 0, run.output[-3000:]
    assert "Traceback" not in run.output and "Exception" not in run.output, run.output[-3000:]
    text = (run.folder / "summary.json").read_text()
    summary = strict_json(text)  # no Infinity / NaN anywhere
    assert summary["loop_lag_samples"] > 0  # the test's start ran whole (the probe started after the scrapes)
    console = run.output
    for name, (url, said) in cases.items():
        assert said in console, (name, said, [line for line in console.splitlines() if url in line])
    entries = summary["server"]
    sent = summary["rows"][-1]["requests"] + summary["warmup_requests"] + summary["after_stop_requests"]
    static = entries[cases["static"][0]]
    assert (static["requests"], static["count_gap"]) == (0, -sent) and "did not change at all" in static["warning"]
    for name in ("404", "refused", "garbage", "grpc port"):
        e = entries[cases[name][0]]
        assert e["requests"] is None and e["error"] and e["warning"] is None, (name, e)
    inf = entries[cases["+Inf"][0]]
    assert (inf["requests"], inf["count_gap"], inf["warning"]) == (sent, 0, None), inf
    assert inf["request_ms"]["p99"] is None and inf["request_ms"]["p99_bucket_ms"] == [pytest.approx(0.05832), None]
    restart = entries[cases["restart"][0]]
    assert restart["requests"] is None and restart["count_gap"] is None and restart["warning"] is None, restart
    assert any("counter reset" in note for note in restart["notes"]), restart
    demo = entries[cases["demo"][0]]
    assert (demo["requests"], demo["failures"], demo["count_gap"], demo["warning"]) == (sent, 0, 0, None), demo
    warnings = [line for line in console.splitlines() if line.startswith("Warning: server metrics")]
    assert len(warnings) == 1 and cases["static"][0] in warnings[0], warnings  # only the static page's gap
    with open(run.folder / "out_tfs_server.csv") as f:
        rows = {row["URL"]: row for row in csv.DictReader(f)}
    assert not [cell for row in rows.values() for cell in row.values() if cell.lower() in ("inf", "nan", "infinity")]
    assert rows[cases["+Inf"][0]]["Request p99 ms"] == "> 0.058"  # the +Inf bucket's p99 as its bucket in the CSV too
