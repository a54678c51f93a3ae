"""Zero users start no test: a headless ``-u 0`` (seen: it ran its --run-time and exited 0 without a request) and
the web form's "Number of users" 0 (seen: "Swarming started", running with 0 users) are one line, before anything
starts; a load shape that sets the users itself (``--sweep users:...``) still runs."""

import json
import time
import urllib.request

import pytest

from test_webui import web_locust  # noqa: F401 (the fixture)
from tfs_user.demo.server import ModelConfig

TINY = ModelConfig(shape=(-1, 4), output_size=1)
REFUSED = "is 0: no user would start and the run would send nothing; expected 1 or more"


@pytest.mark.parametrize("args", [
    (), ("--arrival-rate", "10"), ("--sweep", "rate:5,10", "--step-time", "1s"),
    # forked workers end with the master (seen: exit 2 after 5 minutes of "Failed to connect to master")
    ("--processes", "2"),
])
def test_headless_zero_users_is_one_line_and_exit_2(demo_server, run_locust, args):
    server = demo_server(models=[TINY])
    started = time.monotonic()
    run = run_locust("--host", server.address, "-u", "0", "-t", "30s", *args, timeout=60)
    assert run.returncode == 2, run.output[-3000:]
    errors = [line for line in run.output.splitlines() if "error:" in line]
    assert errors == [f"error: --users {REFUSED} (the users bound the requests in flight, in open loop too)"], run.output
    assert "Traceback" not in run.output and "All users spawned" not in run.output
    assert server.counts()["requests"] == 0
    assert time.monotonic() - started < 30, "the refusal waited for something"  # a bound, not a timing claim


def test_a_users_sweep_sets_the_users_itself(demo_server, run_locust):
    server = demo_server(models=[TINY])
    run = run_locust("--host", server.address, "-u", "0", "--sweep", "users:1", "--step-time", "1s",
                     "--status-interval", "0", timeout=60)
    assert run.returncode == 0, run.output[-3000:]
    assert server.counts()["ok"] > 0


def _swarm(url, host, **fields):
    fields = {"user_count": "0", "spawn_rate": "1", "host": host, **fields}  # fields: more or other form values
    body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in fields.items()).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/swarm", data=body), timeout=10) as response:
        return json.loads(response.read())


def _state(url):
    with urllib.request.urlopen(url + "/stats/requests", timeout=10) as response:
        return json.loads(response.read())["state"]


def test_the_web_forms_zero_users_is_refused_and_nothing_starts(demo_server, web_locust):
    server = demo_server(models=[TINY])
    url = web_locust(server.address, "--status-interval", "0")
    answer = _swarm(url, server.address)
    assert answer["success"] is False, answer
    assert answer["message"] == f"error: Number of users {REFUSED} (the users bound the requests in flight, in open loop too)"
    time.sleep(1.0)  # Locust would have started its users by now
    assert _state(url) == "ready" and server.counts()["requests"] == 0
    # one user starts; while it runs, an edit to 0 users goes through, as in Locust (it scales down, the test goes on)
    assert _swarm(url, server.address, user_count="1")["success"] is True
    deadline = time.monotonic() + 30
    while _state(url) != "running" and time.monotonic() < deadline:  # Locust's page refreshes every 2 s
        time.sleep(0.2)
    assert server.counts()["ok"] > 0 and _state(url) == "running"
    answer = _swarm(url, server.address)
    assert answer["success"] is True, answer
