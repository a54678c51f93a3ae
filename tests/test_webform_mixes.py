"""Every mix works from the web UI's start form (issue 33): what the form accepts takes effect, or it is refused.

Each test starts a real `locust` web UI (local runner, or a master with one ``--processes`` worker) on a free
loopback port beside a real demo server, posts ``/swarm`` as the page does (fields under their label keys) and
compares the figures with the demo server's own counts.
"""

import collections
import json
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from test_webui import stats_once_stopped, web_locust  # noqa: F401 (the fixture)
from tfs_user.data.mix import MixSequence
from tfs_user.demo.server import ModelConfig
from tfs_user.options import form_labels
from tfs_user.web import form as web_form

DYN = ModelConfig(name="dyn", input_name="input", shape=(-1, -1), output_size=1)
SMALL = ModelConfig(name="small", shape=(-1, 4), output_size=1)
BIG = ModelConfig(name="big", shape=(-1, 8), output_size=1)
STATS_CACHE_S = 2.1
"""Locust answers ``/stats/requests`` from a cache of up to 2 s: its state may be that old."""


def swarm(url, users, **options):
    """Post the start form: ``users`` users, ``host`` and ``run_time`` (Locust's fields), our options by dest (each
    under its field's label key, as the page posts it); returns Locust's JSON answer."""
    labels = form_labels()
    fields = {"user_count": str(users), "spawn_rate": str(users), "host": options.pop("host", ""),
              "run_time": options.pop("run_time", "")}
    fields.update({web_form.field_key(labels[dest]): str(value) for dest, value in options.items()})
    body = urllib.parse.urlencode(fields).encode()  # keys too: a label key has spaces and ';' in it
    with urllib.request.urlopen(urllib.request.Request(url + "/swarm", data=body), timeout=30) as response:
        return json.loads(response.read())


def tfs_rows(data):
    """The TFS tab's rows by name, from a ``/stats/requests`` answer."""
    return {row["name"]: row for row in {t["key"]: t["data"] for t in data["extended_stats"]}["tfs"]}


def state_becomes(url, states, timeout_s=30):
    """Wait until the web UI's runner is in one of ``states``; returns the last ``/stats/requests`` answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        with urllib.request.urlopen(url + "/stats/requests", timeout=5) as response:
            data = json.loads(response.read())
        if data["state"] in states or time.monotonic() >= deadline:
            return data
        time.sleep(0.1)


def stopped_after_run_time(url, run_time_s):
    """Wait out a run posted with ``run_time_s`` and Locust's 2 s cache of ``/stats/requests``, then until its runner
    has stopped; returns the last answer."""
    time.sleep(run_time_s + STATS_CACHE_S)
    return state_becomes(url, ("stopped",))


def distributed(free_port):
    """Arguments for a master with one forked worker (``--processes 1``) on a free master port."""
    port = str(free_port())
    return ("--processes", "1", "--master-bind-port", port, "--master-port", port)


@pytest.mark.parametrize("mode", ["local", "master and worker"])
def test_batch_size_and_data_file_mixes_posted_from_the_form_give_rows_equal_to_the_servers_counts(
        demo_server, web_locust, free_port, tmp_path, mode):
    server = demo_server(models=[DYN], record=True)
    rng = np.random.default_rng(2)
    np.save(tmp_path / "narrow.npy", rng.uniform(0, 1, (5, 4)).astype(np.float32))
    np.save(tmp_path / "wide.npy", rng.uniform(0, 1, (5, 6)).astype(np.float32))
    url = web_locust(server.address, "--status-interval", "0", *(distributed(free_port) if mode != "local" else ()))
    answer = swarm(url, 2, host=server.address, model_name="dyn", batch_size="1:6,8:3", mix_seed="4",
                   images_numpy_path=f"{tmp_path / 'narrow.npy'}:3,{tmp_path / 'wide.npy'}:1", tfs_iterations="60",
                   warmup_iterations="0")
    assert answer["success"] is True, answer
    rows = tfs_rows(stats_once_stopped(url))
    seen = collections.Counter(r.inputs["input"].shape for r in server.received())
    batches, files = collections.Counter(), collections.Counter()
    for (size, width), count in seen.items():
        batches[size] += count
        files[width] += count
    assert {size: rows[f"Predict dyn [batch {size}]"]["requests"] for size in (1, 8)} == batches, (rows, seen)
    assert {width: rows[f"Predict dyn [data {tmp_path / name}.npy]"]["requests"]
            for width, name in ((4, "narrow"), (6, "wide"))} == files, (rows, seen)
    assert sum(seen.values()) == 120 and rows["Aggregated"]["requests"] == 120
    # the seeded sequence of each user (worker index 0, users 1 and 2); variants file-major: (narrow, 1), (narrow, 8),
    # (wide, 1), (wide, 8) with weights 3x6, 3x3, 1x6, 1x3 (--mix-seed took effect: other seeds give other counts)
    expected = collections.Counter()
    for user in (1, 2):
        expected.update(MixSequence((18, 9, 6, 3), 4, (0, user)).take(60))
    assert seen == {(1, 4): expected[0], (8, 4): expected[1], (1, 6): expected[2], (8, 6): expected[3]}, seen


@pytest.mark.parametrize("mode", ["local", "master and worker"])
def test_models_posted_from_the_form_take_effect(demo_server, web_locust, free_port, mode):
    # Before, the form's --models was ignored: the run prepared the start-up class's model ('resnet', not served)
    # and stopped; a master handed out users of the start-up class before test_start made the new ones.
    server = demo_server(models=[SMALL, BIG])
    url = web_locust(server.address, "--status-interval", "0", *(distributed(free_port) if mode != "local" else ()))
    answer = swarm(url, 3, host=server.address, models="small share=2; big share=1 batch-size=2",
                   tfs_iterations="10", warmup_iterations="0")
    assert answer["success"] is True, answer
    rows = tfs_rows(stats_once_stopped(url))
    counts = server.counts()["models"]
    assert {m: (counts[m]["requests"], counts[m]["frames"]) for m in counts} == {"small": (20, 20), "big": (10, 20)}
    assert [(rows[f"Predict {m}"]["requests"], rows[f"Predict {m}"]["frames"]) for m in ("small", "big")] == \
        [(20, 20), (10, 20)], rows
    # a second test with other models: the classes follow the form again
    server.reset_counts()
    answer = swarm(url, 2, host=server.address, models="big", tfs_iterations="5", warmup_iterations="0")
    assert answer["success"] is True, answer
    deadline = time.monotonic() + 30
    while server.counts()["requests"] < 10 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {m: c["requests"] for m, c in server.counts()["models"].items()} == {"big": 10}


def test_a_mix_changed_on_the_form_while_a_test_runs_is_refused(demo_server, web_locust):
    # the page's "Edit running load test" posts our fields too; a running test's classes, requests and schedule
    # were made when it started, so a change to them cannot take effect: refused, one line. Users can change.
    server = demo_server(models=[SMALL, BIG])
    url = web_locust(server.address, "--status-interval", "0")
    started = dict(host=server.address, model_name="small", arrival_rate="20", batch_size="1")
    assert swarm(url, 1, **started)["success"] is True
    assert state_becomes(url, ("running",))["state"] == "running"
    for change, message in (
            ({"models": "big"}, "error: --models 'big': a test is running with --models ''"),
            ({"batch_size": "1:1,4:1"}, "error: --batch-size '1:1,4:1': a test is running with --batch-size '1'"),
            ({"arrival": "constant"}, "error: --arrival 'constant': a test is running with --arrival 'poisson'"),
            ({"arrival_rate": "30"}, "error: --arrival-rate 30.0: a test is running with --arrival-rate 20.0")):
        answer = swarm(url, 1, **{**started, **change})
        assert answer["success"] is False and answer["message"].startswith(message), answer
        assert "\n" not in answer["message"]
    assert swarm(url, 2, **started)["success"] is True  # the same values and more users: the edit goes through
    urllib.request.urlopen(urllib.request.Request(url + "/stop", data=b""), timeout=10).read()
    assert "big" not in server.counts()["models"] and server.counts()["batches"].keys() == {1}


def test_models_changed_on_the_form_with_the_class_picker_is_refused(demo_server, web_locust):
    # the page lists the user classes of start-up as checkboxes; new classes would not match what it posts
    server = demo_server(models=[SMALL, BIG])
    url = web_locust(server.address, "--status-interval", "0", "--class-picker", "--models", "small")
    answer = swarm(url, 1, host=server.address, models="big", tfs_iterations="1")
    assert answer == {"success": False, "host": server.address, "message":
                      "error: --models 'big' cannot be changed on the start form with --class-picker (the page lists "
                      "the user classes of --models 'small'); give --models when starting locust"}, answer
    assert swarm(url, 1, host=server.address, models="small", tfs_iterations="1", warmup_iterations="0")["success"]
    deadline = time.monotonic() + 30
    while server.counts()["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.counts()["models"]["small"]["requests"] == 1


def test_the_arrival_posted_from_the_form_takes_effect(demo_server, web_locust):
    # constant against Poisson, each posted on the form of one web UI: the gaps between the server's arrivals
    server = demo_server(models=[SMALL], record=True)
    url = web_locust(server.address, "--status-interval", "0")
    cv = {}
    for arrival in ("constant", "poisson"):
        server.reset_counts()
        answer = swarm(url, 4, host=server.address, model_name="small", arrival_rate="100", arrival=arrival,
                       warmup_iterations="0", run_time="1s")
        assert answer["success"] is True, answer
        assert stopped_after_run_time(url, 1.0)["state"] == "stopped"
        gaps = np.diff(sorted(r.time for r in server.received()))
        assert len(gaps) >= 40, len(gaps)
        cv[arrival] = gaps.std() / gaps.mean()
    assert cv["poisson"] > 0.6 and cv["constant"] < cv["poisson"] / 2, cv


@pytest.mark.parametrize("mode", ["local", "master and worker"])
def test_an_arrival_trace_posted_from_the_form_replays_every_line(demo_server, web_locust, free_port, tmp_path, mode):
    server = demo_server(models=[SMALL], record=True)
    (tmp_path / "form.trace").write_text("".join(f"{i * 0.04:.2f}\n" for i in range(50)))  # 50 lines over 1.96 s
    url = web_locust(server.address, "--status-interval", "0", *(distributed(free_port) if mode != "local" else ()))
    answer = swarm(url, 2, host=server.address, model_name="small", arrival_trace=str(tmp_path / "form.trace"),
                   trace_speedup="4", warmup_iterations="0")
    assert answer["success"] is True, answer
    data = stats_once_stopped(url)
    assert data["state"] == "stopped"  # the trace's end ended the run
    assert server.counts()["requests"] == 50 and tfs_rows(data)["Aggregated"]["requests"] == 50
    arrivals = [r.time for r in server.received()]
    assert max(arrivals) - min(arrivals) < 1.2, arrivals  # 0.49 s at 4x (1.96 s when the speed-up is lost)


def test_a_looping_trace_posted_from_the_form_goes_on_until_the_run_time(demo_server, web_locust, tmp_path):
    server = demo_server(models=[SMALL])
    (tmp_path / "short.trace").write_text("".join(f"{i * 0.01:.2f}\n" for i in range(20)))  # 0.19 s a pass
    url = web_locust(server.address, "--status-interval", "0")
    answer = swarm(url, 2, host=server.address, model_name="small", arrival_trace=str(tmp_path / "short.trace"),
                   trace_loop="true", warmup_iterations="0", run_time="1s")
    assert answer["success"] is True, answer
    assert stopped_after_run_time(url, 1.0)["state"] == "stopped"
    assert server.counts()["requests"] > 2 * 20, server.counts()  # several passes, not one
