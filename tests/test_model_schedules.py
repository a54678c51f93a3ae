"""Per-model schedules in the open loop (issue 33): with ``--models``, each model's share of an open-loop rate is
its own schedule, taken only by its users; a trace's ``model`` and ``batch_size`` columns choose each request.
Every count is checked against the demo server's per-model (and per-batch-size) counts."""

import collections
import json
import math
import re

import pytest

from tfs_user.capacity.lanes import LanePlan, LaneError, round_robin, split
from tfs_user.capacity.traces import Trace
from tfs_user.demo.server import ModelConfig

SMALL = ModelConfig(name="small", shape=(-1, 4), output_size=1, delay_ms=1.0)
BIG = ModelConfig(name="big", shape=(-1, 4), output_size=1, delay_ms=2.0)
FIXED = ModelConfig(name="fixed", shape=(1, 4), output_size=1)
MODELS = "small share=3; big share=1"
EQUAL_USERS = json.dumps([{"user_class_name": "small", "fixed_count": 2}, {"user_class_name": "big", "fixed_count": 2}])


def _summary(run):
    return json.loads((run.folder / "s.json").read_text())


def _rows(data):
    return {row["name"]: row for row in data["rows"]}


def test_round_robin_keeps_every_prefix_near_the_shares():
    picks = round_robin([3.0, 1.0], 8)
    assert picks == [0, 0, 1, 0, 0, 0, 1, 0]  # smooth: never 3 of one before the other gets its turn
    for n in range(1, 41):
        count = collections.Counter(round_robin([3.0, 1.0], n))
        assert abs(count[0] - 0.75 * n) < 1, (n, count)


def test_lane_plan_splits_rates_and_lines_by_model():
    plan = LanePlan.make((("small", {"share": 3.0}), ("big", {})), "ignored")
    assert plan.rates(40.0) == {"small": 30.0, "big": 10.0}
    trace = Trace((0.0, 0.1, 0.2, 0.3, 0.4), models=("big", "", "small", "", ""), batch_sizes=(1, 4, 4, 1, 8))
    plan = LanePlan.make((("small", {"share": 3.0}), ("big", {})), "", trace, "t.csv")
    # lines without a model go by the shares (small, small, big), named ones to their model
    assert plan.line_keys == ("big", "small", "small", "small", "big")
    assert plan.lines("small") == (1, 2, 3) and plan.sizes_of("small") == (1, 4) and plan.sizes_of("big") == (1, 8)
    with pytest.raises(LaneError, match=r"trace 't.csv' line 2: model 'nosuch' is not one of this run's models "
                                        r"\(small, big\)"):
        LanePlan.make((("small", {}), ("big", {})), "", Trace((0.0, 0.1), models=("small", "nosuch")), "t.csv")
    one = LanePlan.make((), "resnet", Trace((0.0, 0.1), models=("resnet", "")), "t")
    assert not one.per_model and one.line_keys == ("", "")


def test_split_gives_each_worker_its_users_part_of_each_model():
    plan = LanePlan.make((("small", {"share": 3.0}), ("big", {})), "")
    workers = {"w1": {"small": 2, "big": 0}, "w2": {"small": 1, "big": 1}}
    parts = split(plan, 40.0, workers)
    assert parts["w1"]["small"] == (20.0, (0, 2)) and parts["w2"]["small"] == (10.0, (1, 2))
    assert parts["w1"]["big"] == (0.0, None) and parts["w2"]["big"] == (10.0, (0, 1))  # all of big where its user is
    # a model nobody runs keeps its rate, shared by all users: its slots fall due there, counted as never sent
    nobody = split(plan, 40.0, {"w1": {"small": 2}, "w2": {"small": 2}})
    assert nobody["w1"]["big"] == (5.0, (0, 2)) and nobody["w2"]["big"] == (5.0, (1, 2))
    # one model (one lane): a worker without a user has no part of the rate or of a trace's lines
    one = LanePlan.make((), "resnet")
    assert split(one, 40.0, {"w1": {}, "w2": {"R": 1}}) == {"w1": {"": (0.0, None)}, "w2": {"": (40.0, (0, 1))}}
    # no user anywhere: the schedule is kept, evenly, so its slots fall due and are counted as never sent
    assert split(one, 40.0, {"w1": {}, "w2": {}}) == {"w1": {"": (20.0, (0, 2))}, "w2": {"": (20.0, (1, 2))}}


def _due(model):
    return model["sent"] + model["unsent"]


def test_each_model_gets_its_share_of_the_rate_not_of_the_users(demo_server, run_locust):
    server = demo_server(models=[SMALL, BIG])
    # 2 users each, shares 3:1: the rate splits 45/15 req/s whatever the users
    run = run_locust("--host", server.address, "-u", "4", "-r", "100", "-t", "3s", "--arrival-rate", "60",
                     "--arrival", "constant", "--models", MODELS, "--config-users", EQUAL_USERS,
                     "--warmup-iterations", "0", "--status-interval", "0", "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    assert 'All users spawned: {"big": 2, "small": 2}' in run.output
    data = _summary(run)
    rows, models, counts = _rows(data), data["open_loop"]["models"], server.counts()["models"]
    for name in ("small", "big"):
        # every slot sent was recorded, and the server counted exactly those (no warm-ups)
        assert rows[f"Predict {name}"]["requests"] == models[name]["sent"] == counts[name]["requests"], (name, models)
    assert models["small"]["target_rps"] == 45.0 and models["big"]["target_rps"] == 15.0
    assert rows["Predict big"]["open_loop"] == models["big"] and "open_loop" not in rows["Aggregated"]
    # both schedules run side by side from one start: slots that fell due 3:1 within one slot each
    assert abs(_due(models["small"]) - 3 * _due(models["big"])) <= 3, models
    assert data["open_loop"]["sent"] == models["small"]["sent"] + models["big"]["sent"]
    assert re.search(r"^Open loop, model big \(share 1, target 15 req/s\): sent \d+ requests", run.output, re.M)


def test_model_shares_of_the_rate_with_two_processes(demo_server, run_locust, free_port):
    server = demo_server(workers=4, models=[SMALL, BIG])
    port = str(free_port())
    run = run_locust("--processes", "2", "--master-bind-port", port, "--master-port", port, "--host", server.address,
                     "-u", "8", "-r", "100", "-t", "4s", "--arrival-rate", "60", "--arrival", "constant",
                     "--models", MODELS, "--warmup-iterations", "0", "--status-interval", "0", "--json-summary", "s.json",
                     timeout=120)
    assert run.returncode == 0, run.output
    data = _summary(run)
    rows, models, counts = _rows(data), data["open_loop"]["models"], server.counts()["models"]
    for name in ("small", "big"):
        assert rows[f"Predict {name}"]["requests"] == models[name]["sent"] == counts[name]["requests"], (name, models)
    small, big = _due(models["small"]), _due(models["big"])
    # each worker's part of a model follows its users of that model as they spawn: within counting noise of 3:1
    n = small + big
    assert abs(small / n - 0.75) <= 3 * math.sqrt(0.75 * 0.25 / n), models
    assert data["open_loop"]["sent"] + data["open_loop"]["unsent"] == small + big


def test_a_model_without_users_has_its_slots_counted_unsent_and_named(demo_server, run_locust):
    server = demo_server(models=[SMALL, BIG])
    # one user for two models: Locust gives big none; big's 10 req/s fall due and are never sent, said so
    run = run_locust("--host", server.address, "-u", "1", "-r", "10", "-t", "3s", "--arrival-rate", "40",
                     "--arrival", "constant", "--models", MODELS, "--warmup-iterations", "0", "--status-interval", "0",
                     "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    big = _summary(run)["open_loop"]["models"]["big"]
    assert big["sent"] == 0 and big["unsent"] >= 10, big  # about 30 fell due in the 3 s (its start under load: less)
    assert server.counts()["models"].get("big", {"requests": 0})["requests"] == 0
    assert (f"open loop: model big had no user here to send its share of the schedule ({big['unsent']} requests fell "
            "due and never sent); give it users") in run.output, run.output


def test_a_trace_run_ends_saying_how_many_of_its_requests_were_sent(demo_server, run_locust, tmp_path):
    # one user for two models: big's line falls due with no user to send it. Before, the run ended with "the
    # trace's 3 requests were sent" (the trace has 4) and the console said "sent 1 requests"
    server = demo_server(models=[SMALL, BIG])
    (tmp_path / "four.csv").write_text("time,model\n0,small\n0.05,big\n0.1,small\n0.15,small\n")
    run = run_locust("--host", server.address, "-u", "1", "-r", "10", "-t", "60s", "--arrival-trace", "four.csv",
                     "--models", MODELS, "--status-interval", "0", "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    assert "the trace's 4 requests fell due (3 sent, 1 never sent); ending the run" in run.output, run.output
    loop = _summary(run)["open_loop"]
    assert (loop["sent"], loop["unsent"], loop["trace_cut_short"]) == (3, 1, False), loop
    assert server.counts()["requests"] == 3 + _summary(run)["warmup_requests"]
    # 4 lines over 0.15 s: 26.666... req/s, printed as 26.67 (the JSON keeps the full value)
    assert "Open loop (trace, target 26.67 req/s): sent 3 requests at " in run.output, run.output
    assert "Open loop, model big (share 1, 1 trace request): sent 0 requests at " in run.output, run.output
    assert "1 more fell due and was never sent (no user sent it before" in run.output, run.output
    assert loop["target_rps"] == pytest.approx(4 / 0.15)


def test_open_loop_lines_count_in_the_singular_and_round_targets():
    from tfs_user.capacity.output import format_model, format_open_loop
    from tfs_user.capacity.output import trace_end_line

    assert trace_end_line(1, 1) == "the trace's 1 request fell due and was sent; ending the run"
    assert trace_end_line(2, 0, " (on the 1 worker with users)") == \
        "the trace's 2 requests fell due (0 sent, 2 never sent) (on the 1 worker with users); ending the run"
    model = dict(share=1.0, target_rps=2 / 3, trace_requests=None, sent=1, unsent=0, late=0, sent_rps=0.7)
    assert format_model("big", model).startswith("Open loop, model big (share 1, target 0.667 req/s): sent 1 request at")
    run = dict(arrival="constant", target_rps=1000 / 7, sent=1, sent_rps=None, unsent=0, late=0,
               **{k: None for k in ("send_error_p50_ms", "send_error_p99_ms", "service_p50_ms", "service_p90_ms",
                                    "service_p99_ms")})
    assert format_open_loop(run).startswith("Open loop (constant, target 142.86 req/s): sent 1 request at n/a req/s")


def _trace(tmp_path, lines=40):
    """A CSV trace: ``lines`` requests over 2 s, models and batch sizes in a fixed irregular pattern, the last 4
    without a model (they go by the shares 3:1: small, small, big, small)."""
    rows, expected = ["time,model,batch_size"], collections.Counter()
    for i in range(lines):
        model = ("small", "big", "small", "small", "big")[i % 5] if i < lines - 4 else ""
        size = (1, 4, 4, 1, 1, 2, 4)[i % 7]
        rows.append(f"{2.0 * i / lines:.4f},{model},{size}")
        expected[(model or ("small", "small", "big", "small")[i - (lines - 4)], size)] += 1
    (tmp_path / "mixed.csv").write_text("\n".join(rows) + "\n")
    return expected


def _check_trace_run(run, server, expected):
    assert run.returncode == 0, run.output
    data = _summary(run)
    rows, models = _rows(data), data["open_loop"]["models"]
    assert data["open_loop"]["trace_requests"] == sum(expected.values())
    received = collections.Counter((r.model_name, next(iter(r.inputs.values())).shape[0]) for r in server.received())
    assert received == expected, (received, expected)  # the server got each line's model and batch size, once
    for model in ("small", "big"):
        lines = sum(n for (m, _), n in expected.items() if m == model)
        assert models[model]["sent"] == models[model]["trace_requests"] == lines and models[model]["unsent"] == 0
        assert rows[f"Predict {model}"]["requests"] == lines
        for size in {s for m, s in expected if m == model}:
            row = rows[f"Predict {model} [batch {size}]"]
            assert (row["requests"], row["frames"]) == (expected[(model, size)], expected[(model, size)] * size)


def test_trace_model_and_batch_size_columns_choose_each_request(demo_server, run_locust, tmp_path):
    server = demo_server(models=[SMALL, BIG], record=True)
    expected = _trace(tmp_path)
    run = run_locust("--host", server.address, "-u", "4", "-r", "100", "-t", "60s", "--arrival-trace", "mixed.csv",
                     "--trace-speedup", "2", "--models", MODELS, "--warmup-iterations", "0", "--status-interval", "0",
                     "--json-summary", "s.json")
    assert "the trace's 40 requests fell due and were sent; ending the run" in run.output, run.output
    _check_trace_run(run, server, expected)


def test_trace_columns_with_two_processes(demo_server, run_locust, tmp_path, free_port):
    server = demo_server(workers=4, models=[SMALL, BIG], record=True)
    expected = _trace(tmp_path)
    port = str(free_port())
    # 3 small users and 1 big one over 2 workers: each model's lines go to the workers that run its users
    run = run_locust("--processes", "2", "--master-bind-port", port, "--master-port", port, "--host", server.address,
                     "-u", "4", "-r", "100", "-t", "60s", "--arrival-trace", "mixed.csv", "--trace-speedup", "2",
                     "--models", MODELS, "--warmup-iterations", "0", "--status-interval", "0", "--json-summary", "s.json",
                     timeout=120)
    assert "the trace's 40 requests fell due and were sent (on the 2 workers with users); ending the run" \
        in run.output, run.output
    _check_trace_run(run, server, expected)
    # every model's lines of each worker start at the master's one moment (trace_start), not when its first user
    # asked (the moment is 0.5 s after that: a lane opened then sent its first line ~500 ms before the moment)
    from tfs_user.capacity.trace_start import START_LEAD_S  # gevent, not Locust

    start = _summary(run)["open_loop"]["trace_start"]
    assert [w["worker_index"] for w in start["workers"]] == [0, 1], start
    assert all(-5.0 < w["start_offset_ms"] < START_LEAD_S * 1000.0 for w in start["workers"]), start
    assert "Trace start: one moment for every worker" in run.output, run.output


def test_a_trace_ends_with_true_figures_when_a_model_has_no_user_or_the_run_time_ends_it(demo_server, run_locust,
                                                                                         tmp_path):
    server = demo_server(models=[SMALL, BIG])
    (tmp_path / "t.csv").write_text("time,model\n0.0,small\n0.2,big\n0.4,small\n0.6,big\n")
    no_big = json.dumps([{"user_class_name": "small", "fixed_count": 2}, {"user_class_name": "big", "fixed_count": 0}])
    run = run_locust("--host", server.address, "-u", "2", "-r", "100", "-t", "20s", "--arrival-trace", "t.csv",
                     "--models", MODELS, "--config-users", no_big, "--warmup-iterations", "0", "--status-interval", "0",
                     "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    loop = _summary(run)["open_loop"]
    assert (loop["sent"], loop["unsent"], server.counts()["requests"]) == (2, 2, 2), loop
    # was: "the trace's 2 requests were sent" (the trace has 4)
    assert "the trace's 4 requests fell due (2 sent, 2 never sent); ending the run" in run.output, run.output
    # -t ends the run before small's last line is due, while big's 1.5 s request is in flight (the stop waits for
    # it): that line falls due then with no user left, which is no end of the trace (was: "the trace's 3 requests
    # were sent; ending the run" after "--run-time limit reached")
    slow = demo_server(models=[SMALL, ModelConfig(name="big", shape=(-1, 4), output_size=1, delay_ms=1500.0)])
    (tmp_path / "t.csv").write_text("time,model\n0.0,small\n0.2,big\n1.5,big\n2.5,small\n")
    run = run_locust("--host", slow.address, "-u", "4", "-r", "100", "-t", "2s", "--arrival-trace", "t.csv",
                     "--models", MODELS, "--config-users", EQUAL_USERS, "--warmup-iterations", "0",
                     "--status-interval", "0", "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    assert "--run-time limit reached" in run.output and "ending the run" not in run.output, run.output
    loop = _summary(run)["open_loop"]
    assert (loop["sent"], loop["unsent"], loop["trace_requests"]) == (3, 0, 4), loop


@pytest.mark.parametrize("line, message", [
    ("0.1,nosuch,1", "error: trace 'bad.csv' line 3: model 'nosuch' is not one of this run's models (small, fixed); "
                     "expected a --models name (or --model-name)"),
    ("0.1,fixed,4", "error: --arrival-trace 'bad.csv' asks model fixed for batch sizes 1, 4 (its batch_size column): "),
])
def test_a_trace_naming_an_unknown_model_or_a_refused_batch_size_exits_2(demo_server, run_locust, tmp_path, line,
                                                                          message):
    server = demo_server(models=[SMALL, FIXED])
    (tmp_path / "bad.csv").write_text(f"time,model,batch_size\n0,fixed,1\n{line}\n")
    run = run_locust("--host", server.address, "-u", "2", "-r", "2", "-t", "5s", "--arrival-trace", "bad.csv",
                     "--models", "small; fixed", csv_prefix=None)
    assert run.returncode == 2, run.output
    errors = [x for x in run.output.splitlines() if "error" in x.lower()]
    assert len(errors) == 1 and errors[0].startswith(message), run.output
    assert "Traceback" not in run.output and server.counts()["requests"] == 0
