"""Several models in one run (issue 33): the demo server serving them, ``--models`` as Locust user classes,
counts per model equal to the demo server's per-model counts, per-model SLOs, bad entries."""

import json
import re
import subprocess
import sys

import pytest

from tfs_user.demo.server import ModelConfig
from tfs_user.models import parse_models
from tfs_user.option_values import OptionError

SMALL = ModelConfig(name="small", shape=(-1, 8, 8, 3), output_size=10)
BIG = ModelConfig(name="big", shape=(-1, 16, 16, 3), output_size=10, delay_ms=2.0)


def test_models_parse():
    assert parse_models("small share=3 batch-size=1:1,4:1; big slo-p99-ms=50") == (
        ("small", {"share": 3.0, "batch_size": "1:1,4:1"}), ("big", {"slo_p99_ms": 50.0}))
    assert parse_models("") == ()


@pytest.mark.parametrize("text, words", [
    ("share=3", "does not start with a model name"), ("a share=0", "share='0'"), ("a share=x", "share='x'"),
    ("a colour=red", "'colour=red'"), ("a; a", "names 'a' twice"), ("a batch-size=1:0", "batch-size='1:0'"),
    ("a slo-p99-ms=-1", "slo-p99-ms='-1'"), ("a validate-outputs=maybe", "validate-outputs='maybe'"),
    ("a; ;b", "--models 'a; ;b' has an empty entry (entry 2 of 3); expected entries separated by single ';'"),
    ("a;b;", "'a;b;' has an empty entry (entry 3 of 3)"), ("a share=nan", "share='nan'"), ("a share=inf", "share='inf'"),
    ("a batch-size=1:6,,8:3", "batch-size='1:6,,8:3' in 'a batch-size=1:6,,8:3' is not valid: '1:6,,8:3' has an empty "
                              "entry (entry 2 of 3)"),
    ("a images-numpy-path=x.npy:1,", "'x.npy:1,' has an empty entry (entry 2 of 2)"),
])
def test_bad_models_entries(text, words):
    with pytest.raises(OptionError) as info:
        parse_models(text)
    assert words in str(info.value) and "\n" not in str(info.value)


def _rows(run):
    return {row["name"]: row for row in json.loads((run.folder / "s.json").read_text())["rows"]}


def test_two_models_counts_equal_the_servers_per_model_counts(demo_server, run_locust):
    server = demo_server(models=[SMALL, BIG])
    run = run_locust("--host", server.address, "-u", "4", "-r", "4", "--iterations", "50",
                     "--models", "small share=3 batch-size=1:1,4:1; big share=1 slo-p99-ms=0.001",
                     "--json-summary", "s.json")
    # big's own SLO (p99 under 1 us, never met) misses: one line naming the model; the run's overall SLOs are off
    assert run.returncode == 3, run.output
    assert re.search(r"^SLO missed: model big: p99 latency [\d.]+ ms > slo-p99-ms 0.001$", run.output, re.M), run.output
    assert "model small" not in run.output
    assert 'All users spawned: {"big": 1, "small": 3}' in run.output  # share = Locust user class weight
    rows = _rows(run)
    counts = server.counts()["models"]
    # measured + one warm-up request per user
    assert rows["Predict small"]["requests"] + 3 == counts["small"]["requests"] == counts["small"]["ok"] == 3 * 51
    assert rows["Predict big"]["requests"] + 1 == counts["big"]["requests"] == 51
    assert rows["Predict big"]["frames"] + 1 == counts["big"]["frames"]
    assert "Predict small [batch 4]" in rows and "Predict big [batch 4]" not in rows
    assert rows["Aggregated"]["requests"] == 4 * 50


def test_config_users_sets_the_model_classes(demo_server, run_locust):
    server = demo_server(models=[SMALL, BIG])
    config = json.dumps([{"user_class_name": "big", "fixed_count": 2}])
    run = run_locust("--host", server.address, "-u", "3", "-r", "3", "--iterations", "10",
                     "--models", "small; big", "--config-users", config, "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    assert 'All users spawned: {"big": 2, "small": 1}' in run.output
    counts = server.counts()["models"]
    assert (counts["big"]["requests"], counts["small"]["requests"]) == (2 * 11, 11)


def test_demo_server_command_line_serves_several_models():
    done = subprocess.run([sys.executable, "-m", "tfs_user.demo_server", "--model", "a:-1,4", "--model", "a:-1,8"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not unique" in done.stderr
    done = subprocess.run([sys.executable, "-m", "tfs_user.demo_server", "--model", "a:-1,x"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "model 'a:-1,x' is not valid" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--models", "small share=-1"], "--models share='-1'"),
    (["--models", "small; nosuch"], "nosuch"),
])
def test_bad_models_exit_2_before_any_user_starts(demo_server, run_locust, args, message):
    server = demo_server(models=[SMALL, BIG])
    run = run_locust("--host", server.address, "-u", "2", "-r", "2", "--iterations", "3", *args)
    assert run.returncode == 2, run.output
    assert message in run.output and "Traceback" not in run.output
    assert server.counts()["requests"] == 0


def test_server_metrics_per_model(run_locust):
    # the demo server's metrics page counts per model: one entry per model, each beside that model's own rows
    run = run_locust("--demo-server", "--demo-server-args",
                     "--model small:-1,8,8,3:1 --model big:-1,16,16,3:2 --output-size 10", "-u", "4", "-r", "4",
                     "--iterations", "20", "--models", "small share=1 batch-size=1:1,4:1; big share=1",
                     "--server-metrics", "demo", "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    data = json.loads((run.folder / "s.json").read_text())
    rows = {row["name"]: row for row in data["rows"]}
    entries = {e["model"]: e for e in data["server"].values()}
    assert sorted(entries) == ["big", "small"]
    for model in ("small", "big"):
        # 2 users per model, one warm-up request each
        assert entries[model]["requests"] == rows[f"Predict {model}"]["requests"] + 2 == 2 * 21
        assert entries[model]["client_requests"] == rows[f"Predict {model}"]["requests"]
    assert re.search(r"\(TF Serving, model big\): 42 requests, 0 failures; we sent 40", run.output), run.output


def test_models_from_a_config_file(demo_server, run_locust, tmp_path):
    server = demo_server(models=[SMALL, BIG])
    (tmp_path / "two.conf").write_text(f"host = {server.address}\nusers = 3\nspawn-rate = 3\ntfs-iterations = 10\n"
                                       "models = small share=2 batch-size=1:1,2:1; big share=1\n")
    run = run_locust("--config", "two.conf")
    assert run.returncode == 0, run.output
    assert 'All users spawned: {"big": 1, "small": 2}' in run.output
    counts = server.counts()["models"]
    assert (counts["small"]["requests"], counts["big"]["requests"]) == (2 * 11, 11)
