"""--grpc-option KEY=VALUE: typed channel arguments, listed in the summary; GOAWAY too_many_pings from a
server with a strict keepalive policy is one clear failure row, and the user reconnects."""

import json

import pytest

from tfs_user.transport.channel_args import channel_arguments
from tfs_user.option_values import OptionError, parse_grpc_options
from tfs_user.settings import Settings

STRICT_KEEPALIVE = (
    ("grpc.http2.min_ping_interval_without_data_ms", 60000),  # a ping more often than once a minute is a strike
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_ping_strikes", 1),
)
"""A server keepalive policy stricter than gRPC's default (300 s, 2 strikes)."""


def test_options_are_typed_and_bad_ones_are_one_line():
    assert parse_grpc_options("grpc.keepalive_time_ms=30000, grpc.lb_policy_name=round_robin") == (
        ("grpc.keepalive_time_ms", 30000), ("grpc.lb_policy_name", "round_robin"))
    assert parse_grpc_options("") == ()
    for bad in ("grpc.keepalive_time_ms", "=1", "a b=1", "k="):
        with pytest.raises(OptionError, match="is not KEY=VALUE"):
            parse_grpc_options(bad)


def test_given_options_replace_ours_on_the_channel():
    s = Settings.for_host("a:1", grpc_options=(("grpc.max_reconnect_backoff_ms", 5000), ("grpc.keepalive_time_ms", 1)))
    arguments = channel_arguments("a:1", s.transport)
    options = dict(arguments)
    assert options["grpc.max_reconnect_backoff_ms"] == 5000 and options["grpc.keepalive_time_ms"] == 1
    assert [k for k, _ in arguments].count("grpc.max_reconnect_backoff_ms") == 1
    ours = dict(channel_arguments("a:1", Settings.for_host("a:1").transport))
    assert "grpc.keepalive_time_ms" not in ours  # no keepalive pings by default
    assert dict(channel_arguments("dns:///svc:1", Settings.for_host("dns:///svc:1").transport))["grpc.lb_policy_name"] == "round_robin"


def _goaway_run(demo_server, small_model, run_locust, *options):
    # warm-up: requests 1-4 fast; request 5 takes 6 s (keepalive pings meanwhile); requests 6-9 fast again
    server = demo_server(models=[small_model], delay_ms=1, slow_every=5, slow_delay_ms=6000,
                         server_options=STRICT_KEEPALIVE)
    run = run_locust("--host", server.address, "-u", "1", "--warmup-iterations", "4", "--iterations", "5",
                     "--timeout", "20", "--model-name", "small", "--synthetic-shape", "8,8,3",
                     "--json-summary", "out.json", *options)
    return server, run


def test_our_defaults_never_provoke_too_many_pings(demo_server, small_model, run_locust):
    server, run = _goaway_run(demo_server, small_model, run_locust)
    assert run.returncode == 0, run.output
    assert "GOAWAY" not in run.output
    assert int(run.tfs_csv()["Aggregated"]["Failures"]) == 0
    assert server.counts()["ok"] == 9


def test_goaway_too_many_pings_is_one_clear_failure_and_the_user_reconnects(demo_server, small_model, run_locust, tmp_path):
    server, run = _goaway_run(demo_server, small_model, run_locust, "--grpc-option", "grpc.keepalive_time_ms=1000",
                              "--grpc-option", "grpc.http2.max_pings_without_data=0")
    assert "gRPC channel options: grpc.keepalive_time_ms=1000, grpc.http2.max_pings_without_data=0" in run.output
    assert json.loads((tmp_path / "out.json").read_text())["grpc_options"] == {
        "grpc.keepalive_time_ms": 1000, "grpc.http2.max_pings_without_data": 0}
    failures = run.failures_csv()
    assert len(failures) == 1, failures
    error = failures[0]["Error"]
    assert "GOAWAY too_many_pings" in error and "the user reconnects" in error, error
    row = run.tfs_csv()["Aggregated"]
    assert (int(row["Requests"]), int(row["Failures"])) == (5, 1), run.output
    assert server.counts()["ok"] == 8  # requests 6-9 went through a new connection
