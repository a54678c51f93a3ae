"""Baseline comparison (issue 32): windows, the verdict per figure, refusals, and python -m tfs_user.compare.

Summaries here are built from LatencyStats fed with chosen latencies and times, so every figure, window and
verdict is known exactly; runs of the real thing are in test_compare_runs.py.
"""

import csv
import json
import math
import subprocess
import sys

import pytest
from hdrh.histogram import HdrHistogram

from conftest import ROOT
from tfs_user.results import compare, windows
from tfs_user.results.summary_keys import FORMAT_NAME, FORMAT_VERSION, exact_keys
from tfs_user.stats import LatencyStats

T0 = 1_800_000_000.0  # a whole second: window i covers [T0 + i, T0 + i + 1)
MODEL = {"model": "m", "batch_size": "1", "data_mix": "", "share": 1.0, "mix_seed": None}
RUN = {"protocol": "tfs", "transport": "grpc", "model": "m", "batch_size": 1, "models": [MODEL], "mix_seed": None,
       "users": 4, "arrival": "closed loop", "arrival_rate": 0.0, "trace": None, "trace_speedup": None,
       "trace_loop": None, "sweep": "", "step_time": "", "tool_version": "0.1.0", "host": "h", "cpu_count": 2,
       "processes": None, "workers": None}


def stats_of(levels, per_window=200, spread=0.02, slow_every=0, slow_ms=0.0, fail_every=0):
    """Windowed LatencyStats: window i (1 s) holds ``per_window`` requests around ``levels[i]`` ms (+/- spread)."""
    stats = LatencyStats(windowed=True)
    for i, level in enumerate(levels):
        for k in range(per_window):
            ms = slow_ms if slow_every and k % slow_every == slow_every - 1 else level * (1 + spread * ((k % 11) - 5) / 5)
            t = T0 + i + (k + 0.5) / per_window
            stats.record(ms, not (fail_every and k % fail_every == 0), 1, t - ms / 1000, t)
    return stats


def document(stats, steps=None, **run):
    row = {"name": "Aggregated", **stats.summary(), **exact_keys(stats)}
    doc = {"rows": [row], "format": {"name": FORMAT_NAME, "version": FORMAT_VERSION}, "run": dict(RUN, **run)}
    if steps is not None:
        doc["steps"] = [{"step": i + 1, **s.summary(), **exact_keys(s), "within_slo": True} for i, s in enumerate(steps)]
        doc["best_step"] = len(steps)
    return doc


NOISY = [5.0, 5.2, 4.9, 5.1, 5.0, 4.8, 5.2, 5.0, 5.1, 4.9]


def verdicts(comparison):
    return {(row.step, row.figure): row.verdict for row in comparison.rows}


def test_windows_merge_by_wall_clock_index_and_coarsen_past_the_limit():
    a, b = windows.Windows(), windows.Windows()
    for i in range(3):
        a.record(5.0, True, 1, T0 + i, T0 + i + 0.5)
        b.record(7.0, True, 2, T0 + i + 1, T0 + i + 1.5)
    a.merge(windows.Windows.from_message(b.to_message()))
    assert sorted(a.by_index) == [int(T0) + i for i in range(4)]
    assert [a.by_index[int(T0) + i].requests for i in range(4)] == [1, 2, 2, 1]
    many = windows.Windows()
    for i in range(windows.MAX_WINDOWS + 1):
        many.record(5.0, True, 1, T0 + i, T0 + i + 0.5)
    assert many.width_s == 2 * windows.WINDOW_S
    assert sum(s.requests for s in many.by_index.values()) == windows.MAX_WINDOWS + 1
    assert len(many.by_index) == math.ceil((windows.MAX_WINDOWS + 1) / 2)
    a.merge(many)  # a finer Windows takes the coarser width
    assert a.width_s == 2 * windows.WINDOW_S
    assert sum(s.requests for s in a.by_index.values()) == 6 + windows.MAX_WINDOWS + 1
    fine = windows.Windows()
    fine.record(5.0, True, 1, T0 + 2, T0 + 3.5)  # 1 s window int(T0) + 3 = 2 s window (int(T0) + 3) // 2
    many.merge(fine)  # a coarser Windows merges a finer one at its own width
    assert many.width_s == 2 * windows.WINDOW_S and many.by_index[(int(T0) + 3) // 2].requests == 3


def test_window_figures_mark_partial_windows_and_give_their_fps_over_the_covered_span():
    stats = stats_of([5.0, 5.0, 5.0], per_window=100)
    rows = exact_keys(stats)["windows"]["rows"]
    assert [w["requests"] for w in rows] == [100, 100, 100]
    assert rows[0]["full"] and rows[1]["fps"] == pytest.approx(100.0)
    assert rows[1]["p50_ms"] == pytest.approx(5.0, rel=0.01)
    short = LatencyStats(windowed=True)
    short.record(5.0, True, 1, T0 + 0.8, T0 + 0.9)
    short.record(5.0, True, 1, T0 + 1.0, T0 + 1.2)
    assert [w["full"] for w in exact_keys(short)["windows"]["rows"]] == [False, False]


def test_the_histogram_is_hdrhistograms_own_encoding_of_every_latency():
    stats = stats_of(NOISY)
    decoded = HdrHistogram.decode(exact_keys(stats)["hdr_histogram"].encode("ascii"))
    assert decoded.get_total_count() == stats.ok == 2000
    assert decoded.get_max_value() == stats.histogram.get_max_value()
    assert decoded.get_value_at_percentile(50) == stats.histogram.get_value_at_percentile(50)


def test_a_30_percent_slower_run_is_worse_and_an_identical_one_the_same():
    base = document(stats_of(NOISY))
    same = compare.compare(base, document(stats_of(NOISY[::-1])))
    assert set(verdicts(same).values()) == {compare.SAME}
    assert not same.worse_lines()
    slower = compare.compare(base, document(stats_of([1.3 * v for v in NOISY], per_window=154)))
    v = verdicts(slower)
    assert v[(None, "p50")] == v[(None, "p90")] == v[(None, "p99")] == compare.WORSE
    assert v[(None, "fps")] == compare.WORSE  # 154 instead of 200 frames/s
    assert v[(None, "fail")] == compare.SAME
    faster = compare.compare(base, document(stats_of([v / 1.3 for v in NOISY], per_window=260)))
    assert {verdicts(faster)[(None, f)] for f in ("p50", "p90", "p99", "fps")} == {compare.BETTER}


def test_the_worse_line_has_the_issues_format():
    row = compare.Row("p99", "p99", "ms", None, 10.10, 12.40, 22.77, 6.1, 5.0, 6.1, compare.WORSE)
    assert row.line() == "Worse than baseline: p99 12.40 ms vs 10.10 ms (+22.8 %, noise allows +/-6.1 %)"
    base = document(stats_of(NOISY))
    line = compare.compare(base, document(stats_of([1.3 * v for v in NOISY]))).worse_lines()[0]
    assert line.startswith("Worse than baseline: p50 ") and "+30." in line and "noise allows +/-" in line


def test_noise_widens_what_is_allowed_and_a_threshold_floors_it():
    quiet = document(stats_of([5.0] * 10))
    jumpy = [5.0, 7.0, 4.0, 6.5, 4.5, 7.5, 4.2, 6.8, 4.4, 7.2]
    noisy_new = compare.compare(quiet, document(stats_of([1.1 * v for v in jumpy])))
    row = next(r for r in noisy_new.rows if r.figure == "p50")
    assert row.noise > 10 and row.allowed == row.noise and row.verdict == compare.SAME
    small = compare.compare(quiet, document(stats_of([5.1] * 10)))  # +2 %, no noise at all: the threshold holds it
    row = next(r for r in small.rows if r.figure == "p50")
    assert row.noise == pytest.approx(0.0, abs=0.01) and row.allowed == 4.0 and row.verdict == compare.SAME
    strict = compare.compare(quiet, document(stats_of([5.1] * 10)), {"p50": 1.0})
    assert verdicts(strict)[(None, "p50")] == compare.WORSE


def test_a_figure_set_off_is_left_out_and_too_few_windows_are_not_judged():
    base = document(stats_of(NOISY))
    left_out = compare.compare(base, document(stats_of([2 * v for v in NOISY])), {"p50": None, "fps": None})
    assert {r.figure for r in left_out.rows} == {"p90", "p99", "fail"}
    short = compare.compare(base, document(stats_of([10.0])))
    assert set(verdicts(short).values()) == {compare.UNKNOWN}
    assert not short.worse


def test_failures_are_compared_in_percentage_points():
    base = document(stats_of(NOISY))
    failing = compare.compare(base, document(stats_of(NOISY, fail_every=10)))  # 10 % failed
    row = next(r for r in failing.rows if r.figure == "fail")
    assert row.change == pytest.approx(10.0) and row.verdict == compare.WORSE
    assert row.line().startswith("Worse than baseline: fail ratio 10.00 % vs 0.00 % (+10.0 points")


def test_sweep_steps_are_compared_one_by_one_with_the_best_fps():
    base = document(stats_of(NOISY), steps=[stats_of(NOISY), stats_of(NOISY)])
    new = document(stats_of(NOISY), steps=[stats_of(NOISY), stats_of([1.5 * v for v in NOISY], per_window=130)])
    v = verdicts(compare.compare(base, new))
    assert v[(1, "p99")] == compare.SAME and v[(2, "p99")] == compare.WORSE
    assert v[(None, "best_fps")] == compare.WORSE
    fewer = compare.compare(base, document(stats_of(NOISY), steps=[stats_of(NOISY)]))
    assert any("step 2 ran in only one" in n for n in fewer.notices)


@pytest.mark.parametrize("key, value", [("protocol", "kserve"), ("users", 8), ("arrival_rate", 100.0),
                                        ("sweep", "users:1,2"), ("transport", "http")])
def test_runs_of_another_test_are_refused_with_one_line(key, value):
    base = document(stats_of(NOISY))
    with pytest.raises(compare.CompareError) as e:
        compare.compare(base, document(stats_of(NOISY), **{key: value}))
    assert str(e.value).startswith(f"cannot compare: {key} is {value!r} in this run but") and "\n" not in str(e.value)
def test_another_tool_version_or_host_is_a_notice():
    comparison = compare.compare(document(stats_of(NOISY)),
                                 document(stats_of(NOISY), tool_version="0.2.0", host="other", cpu_count=8))
    assert [n.split(":")[1].split()[0] for n in comparison.notices] == ["tool_version", "host", "cpu_count"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tfs_user.compare", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_the_command_exits_0_3_or_2_and_writes_json_csv_and_plot(tmp_path):
    base, same, worse = tmp_path / "base.json", tmp_path / "same.json", tmp_path / "worse.json"
    base.write_text(json.dumps(document(stats_of(NOISY))))
    same.write_text(json.dumps(document(stats_of(NOISY[::-1]))))
    worse.write_text(json.dumps(document(stats_of([1.3 * v for v in NOISY]))))
    done = _cli(base, same)
    assert done.returncode == 0, done.stderr
    assert "Worse than baseline" not in done.stdout
    out = tmp_path / "cmp"
    done = _cli(base, worse, "--json", f"{out}.json", "--csv", f"{out}.csv", "--plot", f"{out}.html", "--baseline-fps", "off")
    assert done.returncode == 3, done.stderr
    worse_lines = [line for line in done.stdout.splitlines() if line.startswith("Worse than baseline: ")]
    assert [line.split()[3] for line in worse_lines] == ["p50", "p90", "p99"]
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert saved["worse"] == worse_lines
    with open(f"{out}.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["figure"], r["verdict"]) for r in table] == [("p50", "worse"), ("p90", "worse"), ("p99", "worse"),
                                                           ("fail", "same")]
    page = (tmp_path / "cmp.html").read_text()
    assert page.count("src='data:image/png;base64,") == 2 and "<script" not in page and "http" not in page
    assert page.count("<tr class='worse'>") == 3


@pytest.mark.parametrize("content, expected", [
    ("{not json", "is not JSON"),
    (json.dumps({"a": 1}), "is not a tfs-locust JSON summary"),
    (json.dumps({"rows": [], "passed": True, "exit_code": 0}), "from before baseline comparisons"),
])
def test_files_that_cannot_be_compared_give_one_line_and_exit_2(tmp_path, content, expected):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(document(stats_of(NOISY))))
    bad.write_text(content)
    for args in ((bad, good), (good, bad)):
        done = _cli(*args)
        assert done.returncode == 2
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1 and expected in done.stderr, done.stderr
    done = _cli(good, tmp_path / "missing.json")
    assert done.returncode == 2 and "No such file" in done.stderr and len(done.stderr.splitlines()) == 1
    done = _cli(good, good, "--baseline-p99", "lots")
    assert done.returncode == 2 and "'lots' is not a threshold" in done.stderr


def test_the_benchmark_table_counts_verdicts_per_condition(tmp_path):
    (tmp_path / "r01-A.json").write_text(json.dumps(document(stats_of(NOISY))))
    (tmp_path / "r01-A2.json").write_text(json.dumps(document(stats_of(NOISY[::-1]))))
    (tmp_path / "r01-slow.json").write_text(json.dumps(document(stats_of([1.3 * v for v in NOISY], per_window=154))))
    for doc in tmp_path.glob("*.json"):
        data = json.loads(doc.read_text())
        data["run"]["load_average"] = [3.0, 2.0, 1.0]
        doc.write_text(json.dumps(data))
    done = subprocess.run([sys.executable, "benchmarks/compare_noise.py", "table", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert rows["A2"].startswith("| A2 | 1 | 0/0 | 0/0 | 0/0 | 0/0 | 0/0 | 0 |"), rows
    assert rows["slow"].startswith("| slow | 1 | 1/0 | 1/0 | 1/0 | 1/0 | 0/0 | 1 |"), rows


@pytest.mark.parametrize("module", ["tfs_user.compare", "tfs_user.cli"])
def test_help_lists_the_threshold_options(module):
    # argparse formats help texts with %: a bare "%" in one broke --help with a traceback
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for figure in compare.FIGURES:
        assert figure.option in done.stdout
