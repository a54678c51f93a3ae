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


class _SlowProxy:
    """A TCP proxy on 127.0.0.1 port 0 that holds each new connection ``delay_s`` before it passes bytes
    on: a server whose connection set-up takes that long (far away, or a busy machine)."""

    def __init__(self, target_port, delay_s):
        import socket
        import threading

        self.delay_s, self.target_port = delay_s, target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        import time

        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            time.sleep(self.delay_s)
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.sock.close()


def test_a_connection_that_takes_longer_than_the_reconnect_backoff_to_set_up_works(demo_server, small_model,
                                                                                    run_locust):
    # gRPC takes grpc.min_reconnect_backoff_ms as each connection attempt's timeout: ours was 100 ms, and
    # the first request failed UNAVAILABLE ("tcp handshaker shutdown") on a busy machine
    server = demo_server(models=[small_model])
    proxy = _SlowProxy(server.port, delay_s=0.5)
    try:
        run = run_locust("--host", f"127.0.0.1:{proxy.port}", "-u", "1", "--iterations", "5", "--model-name", "small",
                         "--synthetic-shape", "8,8,3", "--skip-preflight", "--json-summary", "out.json")
    finally:
        proxy.close()
    data = json.loads((run.folder / "out.json").read_text())
    assert run.returncode == 0 and data["warmup_failures"] == 0, run.output[-3000:]
    assert data["rows"][-1]["requests"] == 5 and data["rows"][-1]["failures"] == 0
