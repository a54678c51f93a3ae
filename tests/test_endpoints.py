"""Several endpoints (--host a:PORT,b:PORT): round-robin users, one row per endpoint, pre-flight on each,
one endpoint down costs only its share. Real demo servers on 127.0.0.1, real locust subprocesses."""

import json
import os
import subprocess
import time

import pytest

from conftest import locust_command
from tfs_user.transport.endpoints import endpoint_index, row_name
from tfs_user.settings import OptionError, Settings
from tfs_user.transport.target import TargetError, parse_targets


# ---------------------------------------------------------------- parsing and assignment

def test_host_lists_parse_to_one_target_each():
    assert parse_targets("a:8500, grpc://b:8500") == ("a:8500", "b:8500")
    assert parse_targets("a,b:1") == ("a:9000", "b:1")
    assert parse_targets("[::1]:1,[::1]:2") == ("[::1]:1", "[::1]:2")
    assert parse_targets("dns:///tfs.default.svc:8500") == ("dns:///tfs.default.svc:8500",)
    assert parse_targets("dns:///tfs") == ("dns:///tfs:9000",)
    s = Settings.for_host("a:1,b:2")
    assert s.endpoints == ("a:1", "b:2") and not s.tls
    assert Settings.for_host("grpcs://a:1,grpcs://b:2").tls


@pytest.mark.parametrize("host, words", [
    ("a:1,,b:2", "empty entry"),
    ("a:1,a:1", "more than once"),
    ("grpcs://a:1,b:2", "mixes grpcs://"),
    ("dns://tfs:1", "dns:///NAME:PORT"),
    ("a:1,b:x", "port 'x'"),
])
def test_bad_host_lists_are_one_line(host, words):
    with pytest.raises((TargetError, OptionError)) as error:
        Settings.for_host(host)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_users_go_round_robin_and_workers_are_offset():
    endpoints = ("a", "b", "c")
    assert [endpoint_index(n, endpoints) for n in range(1, 7)] == [0, 1, 2, 0, 1, 2]
    # one user per worker process: worker w's user goes to endpoint w mod E
    assert [endpoint_index(1, endpoints, w) for w in range(4)] == [0, 1, 2, 0]
    assert row_name("Predict m", "a:1") == "Predict m @ a:1" and row_name("Predict m", "") == "Predict m"


# ---------------------------------------------------------------- real runs

def _rows(run, *servers):
    rows = run.tfs_csv()
    return [rows.get(f"Predict small @ {s.address}") for s in servers], rows["Aggregated"]


def test_two_servers_each_serve_their_share_and_rows_match_their_counts(demo_server, small_model, run_locust, tmp_path):
    a = demo_server(models=[small_model], delay_ms=2)
    b = demo_server(models=[small_model], delay_ms=2)
    run = run_locust("--host", f"{a.address},{b.address}", "-u", "4", "-r", "4", "--run-time", "4s",
                     "--model-name", "small", "--synthetic-shape", "8,8,3", "--warmup-iterations", "0",
                     "--json-summary", "out.json")
    assert run.returncode == 0, run.output
    (row_a, row_b), total = _rows(run, a, b)
    assert row_a and row_b, run.output
    served = [a.counts()["requests"], b.counts()["requests"]]
    for row, count in zip((row_a, row_b), served):
        # the server also counts requests that completed after stop (left out of our rows)
        assert int(row["Requests"]) <= count <= int(row["Requests"]) + 4, (row, count)
        assert int(row["Failures"]) == 0
        assert int(row["Requests"]) == pytest.approx(int(total["Requests"]) / 2, rel=0.10), (row_a, row_b)
    assert int(row_a["Requests"]) + int(row_b["Requests"]) == int(total["Requests"])
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["endpoints"] == [a.address, b.address]
    assert {r["name"]: r["requests"] for r in document["rows"]}[f"Predict small @ {a.address}"] == int(row_a["Requests"])
    assert f"Endpoints (2, users round-robin): {a.address}, {b.address}" in run.output
    # Locust's own table keeps one request name
    assert "Predict small" in run.locust_csv() and not any("@" in name for name in run.locust_csv())


def test_processes_spread_users_over_endpoints_by_worker_index(demo_server, small_model, run_locust, tmp_path):
    a = demo_server(models=[small_model])
    b = demo_server(models=[small_model])
    conf = tmp_path / "two.conf"  # the endpoint list from a config file
    conf.write_text(f"host = {a.address},{b.address}\nprocesses = 2\nusers = 2\nspawn-rate = 2\n")
    run = run_locust("--config", str(conf), "--iterations", "30", "--warmup-iterations", "0", "--model-name", "small",
                     "--synthetic-shape", "8,8,3")
    assert run.returncode == 0, run.output
    (row_a, row_b), _ = _rows(run, a, b)
    # one user per worker: without the worker offset both would go to the first endpoint
    assert a.counts()["requests"] == 30 == int(row_a["Requests"])
    assert b.counts()["requests"] == 30 == int(row_b["Requests"])


def test_preflight_checks_every_endpoint(demo_server, small_model, run_locust, free_port):
    a = demo_server(models=[small_model])
    other = demo_server()  # serves resnet, not small
    run = run_locust("--host", f"{a.address},{other.address}", "-u", "1", "--iterations", "2", "--model-name", "small",
                     "--synthetic-shape", "8,8,3")
    assert run.returncode == 2, run.output
    assert f"error: endpoint {other.address}: model 'small' not found at {other.address}" in run.output
    assert a.counts()["requests"] == 0
    nothing = f"127.0.0.1:{free_port()}"
    run = run_locust("--host", f"{a.address},{nothing}", "-u", "1", "--iterations", "2", "--model-name", "small",
                     "--synthetic-shape", "8,8,3")
    assert run.returncode == 2 and f"no gRPC server answered at {nothing}" in run.output, run.output


def test_one_endpoint_down_costs_only_its_share(demo_server, small_model, tmp_path):
    a = demo_server(models=[small_model], delay_ms=10)
    b = demo_server(models=[small_model], delay_ms=10)
    command = locust_command("--headless", "--host", f"{a.address},{b.address}", "-u", "4", "-r", "4",
                             "--run-time", "9s", "--model-name", "small", "--synthetic-shape", "8,8,3",
                             "--csv", "out", "--status-interval", "0")
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.monotonic() + 30
        while a.counts()["requests"] < 20 and time.monotonic() < deadline:  # users are running
            time.sleep(0.1)
        time.sleep(0.5)
        before = [(time.monotonic(), a.counts()["requests"])]
        time.sleep(2.0)
        before.append((time.monotonic(), a.counts()["requests"]))
        b.stop()
        time.sleep(0.5)
        after = [(time.monotonic(), a.counts()["requests"])]
        time.sleep(2.0)
        after.append((time.monotonic(), a.counts()["requests"]))
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    rate = lambda points: (points[1][1] - points[0][1]) / (points[1][0] - points[0][0])  # noqa: E731
    assert rate(after) >= 0.7 * rate(before), (rate(before), rate(after), output)
    import csv

    with open(tmp_path / "out_failures.csv") as f:
        failures = list(csv.DictReader(f))
    assert failures, output
    assert all(f"(endpoint {b.address})" in row["Error"] for row in failures), failures
    with open(tmp_path / "out_tfs.csv") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    assert int(rows[f"Predict small @ {a.address}"]["Failures"]) == 0
    assert int(rows[f"Predict small @ {b.address}"]["Failures"]) > 0


# ---------------------------------------------------------------- web UI

def _environment():
    from types import SimpleNamespace

    import configargparse

    from tfs_user.options import add_options

    parser = configargparse.ArgumentParser()
    add_options(parser)
    return SimpleNamespace(parsed_options=parser.parse_args([]), host="127.0.0.1:9000", runner=None)


def test_web_form_host_field_takes_several_endpoints_and_grpc_options():
    from tfs_user.web.form import check_form

    env = _environment()
    assert check_form(env, {"host": "127.0.0.1:1,127.0.0.1:2"})[1] is None
    assert "more than once" in check_form(env, {"host": "127.0.0.1:1,127.0.0.1:1"})[1]
    values, message = check_form(env, {"grpc_option": "grpc.keepalive_time_ms=30000"})
    assert message is None and values["grpc_option"] == "grpc.keepalive_time_ms=30000"
    assert "is not KEY=VALUE" in check_form(env, {"grpc_option": "grpc.keepalive_time_ms"})[1]


def test_web_ui_tab_has_a_row_per_endpoint_beside_aggregated():
    from types import SimpleNamespace

    from tfs_user.results.fps_meter import FpsMeter
    from tfs_user.stats import Recorder
    from tfs_user.web.tab import table_rows

    recorder = Recorder()
    for endpoint, n in (("a:1", 3), ("b:2", 2)):
        for _ in range(n):
            recorder.record(row_name("Predict m", endpoint), 5.0, True, 1, 100.0, 100.1)
    rows = table_rows(SimpleNamespace(recorder=recorder, meter=FpsMeter()))
    assert [(r["name"], r["requests"]) for r in rows] == [("Predict m @ a:1", 3), ("Predict m @ b:2", 2), ("Aggregated", 5)]


def test_dns_target_runs_with_round_robin(demo_server, small_model, run_locust):
    server = demo_server(models=[small_model])
    run = run_locust("--host", f"dns:///localhost:{server.port}", "-u", "2", "-r", "2", "--iterations", "10",
                     "--warmup-iterations", "0", "--model-name", "small", "--synthetic-shape", "8,8,3")
    assert run.returncode == 0, run.output
    assert int(run.tfs_csv()["Predict small"]["Requests"]) == 20 == server.counts()["requests"]
