"""A baseline of several runs (issue 32): its figures, the noise between its runs, refusals, the command.

Summaries are built as in test_compare.py (LatencyStats fed with chosen latencies), so every expected figure
and half-width is computed here from the summaries' own numbers with plain arithmetic; the t quantiles are
the tables' (scipy.stats.t.ppf gives the same digits).
"""

import csv
import json
import math
import shutil

import pytest

from conftest import ROOT
from test_compare import NOISY, _cli, document, stats_of
from tfs_user.results import baseline_runs, compare, compare_plot
from tfs_user.results.compare_cli import baseline_paths
from tfs_user.stats import LatencyStats

T_0975 = {1: 12.706204736174707, 2: 4.302652729749464, 3: 3.182446305284263, 4: 2.7764451051977987,
          9: 2.2621571627409915, 29: 2.045229642132703}
"""t(0.975, df): scipy.stats.t.ppf(0.975, df)."""
JUMPY = [5.0, 7.0, 4.0, 6.5, 4.5, 7.5, 4.2, 6.8, 4.4, 7.2]


def _row(comparison, figure, step=None):
    return next(r for r in comparison.rows if r.figure == figure and r.step == step)


def _mean(values):
    return sum(values) / len(values)


def _sd(values):
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def test_t_quantiles_are_the_tables_even_for_one_degree_of_freedom():
    for df, t in T_0975.items():
        assert baseline_runs.t_quantile_exact(0.975, df) == pytest.approx(t, rel=1e-9), df
    assert baseline_runs.t_quantile_exact(0.995, 3) == pytest.approx(5.840909309733349, rel=1e-9)
    with pytest.raises(ValueError):
        baseline_runs.t_quantile_exact(0.975, 1.5)


def test_one_baseline_file_gives_exactly_the_comparison_before_several_runs():
    # written by the comparison as it was before baselines of several runs (commit f748478)
    golden = json.loads((ROOT / "tests" / "data" / "compare_one_baseline.json").read_text())
    base = document(stats_of(NOISY), steps=[stats_of(NOISY), stats_of(JUMPY)])
    new = document(stats_of([1.06 * v for v in JUMPY], per_window=190, fail_every=50),
                   steps=[stats_of([1.3 * v for v in NOISY], per_window=160), stats_of(NOISY)])
    for given in (base, [base]):
        comparison = compare.compare(given, new)
        assert compare.format_table(comparison) == golden["table"]
        saved = comparison.to_json()
        assert saved["worse"] == golden["json"]["worse"] and saved["notices"] == golden["json"]["notices"]
        assert saved["baseline_runs"] == 1
        for row, before in zip(saved["rows"], golden["json"]["rows"], strict=True):
            assert row.pop("noise_windows") == row["noise"] and row.pop("noise_runs") is None
            assert row == before


def _three(levels=(5.0, 5.4, 4.7), rates=(200, 190, 210), fails=(0, 50, 100)):
    return [document(stats_of([level * v / 5.0 for v in NOISY], per_window=rate, fail_every=fail))
            for level, rate, fail in zip(levels, rates, fails)]


def test_the_noise_between_runs_is_the_prediction_interval_of_one_more_run():
    bases = _three()
    new = document(stats_of([1.02 * v for v in NOISY], per_window=195))
    comparison = compare.compare(bases, new, names=["a.json", "b.json", "c.json"])
    rows = [doc["rows"][-1] for doc in bases]
    factor = T_0975[2] * math.sqrt(1 + 1 / 3)
    for figure, key in (("p50", "p50_ms"), ("p90", "p90_ms"), ("p99", "p99_ms"), ("fps", "fps")):
        logs = [math.log(r[key]) for r in rows]
        row = _row(comparison, figure)
        assert row.base == pytest.approx(math.exp(_mean(logs)), rel=1e-12), figure  # geometric mean: the centre
        assert row.noise_runs == pytest.approx(100 * (math.exp(factor * _sd(logs)) - 1), rel=1e-9), figure
        pooled = [math.log(w[key]) for r in rows for w in r["windows"]["rows"] if w["full"]]
        own = [math.log(w[key]) for w in new["rows"][-1]["windows"]["rows"] if w["full"]]
        assert len(pooled) == 30 and row.noise_windows == pytest.approx(
            100 * (math.exp(compare.half_width(pooled, own)) - 1), rel=1e-12)
        assert row.noise == max(row.noise_runs, row.noise_windows) and row.allowed == max(row.noise, row.threshold)
    points = [100 * r["fail_ratio"] for r in rows]  # none, 4 of 190 and 3 of 210 a window failed
    fail = _row(comparison, "fail")
    assert points == pytest.approx([0.0, 400 / 190, 300 / 210])
    assert fail.base == pytest.approx(_mean(points) / 100) and fail.noise_runs == pytest.approx(factor * _sd(points))
    assert fail.change == pytest.approx(-100 * fail.base)


def test_a_spread_baseline_widens_what_is_allowed():
    new = document(stats_of([5.4 * v / 5.0 for v in NOISY]))  # p50 +8 % over a 5.0 ms run
    one = _row(compare.compare(_three()[0], new), "p50")
    assert one.verdict == compare.WORSE and one.allowed == 4.0 and one.noise_runs is None
    spread = _row(compare.compare(_three(levels=(5.0, 5.5, 4.6)), new), "p50")
    assert spread.verdict == compare.SAME, spread
    assert spread.allowed == spread.noise == spread.noise_runs > max(spread.noise_windows, 4.0) + 10
    much_slower = document(stats_of([8.0 * v / 5.0 for v in NOISY]))  # +60 %: beyond any of it
    assert _row(compare.compare(_three(levels=(5.0, 5.5, 4.6)), much_slower), "p50").verdict == compare.WORSE
    calm = _row(compare.compare(_three(levels=(5.0, 5.01, 4.99)), new), "p50")  # runs that agree: the threshold holds
    assert calm.noise_runs < 2 and calm.allowed == 4.0 and calm.verdict == compare.WORSE
    jumpy_runs = [document(stats_of([f * v for v in JUMPY])) for f in (1.0, 1.005, 0.995)]
    jumpy_new = document(stats_of([1.1 * v for v in JUMPY[::-1]]))  # +10 %, windows scattered by +/-30 %
    within = _row(compare.compare(jumpy_runs, jumpy_new), "p50")  # the runs agree, their windows do not
    assert within.noise_runs < 5 and within.allowed == within.noise == within.noise_windows > 10
    assert within.verdict == compare.SAME


def test_the_worse_line_says_which_noise_allowed_what_and_the_table_shows_both():
    slower = document(stats_of([10.0 * v / 5.0 for v in NOISY]))  # twice as slow: beyond the runs' spread (+/-41 %)
    comparison = compare.compare(_three(), slower, names=["a.json", "b.json", "c.json"])
    row = _row(comparison, "p50")
    assert row.line() == (f"Worse than baseline: p50 {row.new:.2f} ms vs {row.base:.2f} ms ({row.change:+.1f} %, "
                          f"noise allows +/-{row.allowed:.1f} %; between runs +/-{row.noise_runs:.1f} %, "
                          f"within runs +/-{row.noise_windows:.1f} %)")
    table = compare.format_table(comparison).splitlines()
    assert table[1].startswith("Compared with the baseline of 3 runs (")
    assert table[2].split() == ["step", "figure", "baseline", "this", "run", "change", "noise", "runs", "windows",
                                "threshold", "allowed", "verdict"]
    assert table[3].split()[-6:-1] == [f"{v:.1f}" for v in (row.noise, row.noise_runs, row.noise_windows,
                                                            row.threshold, row.allowed)]
    assert comparison.to_json()["baseline_runs"] == 3


def test_sweep_steps_in_every_run_are_judged_with_each_runs_best_fps():
    def swept(*levels_rates):
        return document(stats_of(NOISY), steps=[stats_of([lv * v / 5 for v in NOISY], per_window=rate)
                                                for lv, rate in levels_rates])

    bases = [swept((5.0, 200), (5.0, 300)), swept((5.2, 190), (5.1, 290)), swept((4.9, 210))]
    comparison = compare.compare(bases, swept((5.05, 200), (5.0, 300)))
    assert {r.step for r in comparison.rows} == {None, 1}
    assert comparison.notices == ["Notice: step 2 ran in only some of the runs (a sweep ends at the first step "
                                  "that misses its SLO)"]
    best = _row(comparison, "best_fps")  # each run's best step: 2, 2 and 1
    fps = [doc["steps"][doc["best_step"] - 1]["fps"] for doc in bases]
    assert best.base == pytest.approx(math.exp(_mean([math.log(v) for v in fps])))
    assert best.noise_runs == pytest.approx(100 * (math.exp(T_0975[2] * math.sqrt(4 / 3) * _sd([math.log(v) for v in fps])) - 1))


def test_a_baseline_of_several_sweeps_merges_their_steps_without_min_ms(tmp_path):
    # a sweep's JSON steps carry max_ms but no min_ms (tfs_user.capacity.steps rows); a baseline of several
    # sweeps crashed on it (KeyError 'min_ms', a traceback from the command; a run with --baseline wrote no summary)
    steps = [stats_of([level * v / 5 for v in NOISY], per_window=rate) for level, rate in ((5.0, 200), (5.3, 190),
                                                                                         (4.8, 205), (5.1, 198))]
    docs = [document(stats_of(NOISY), steps=[step]) for step in steps]
    for doc in docs:
        del doc["steps"][0]["min_ms"]
    bases, new = docs[:3], docs[3]
    comparison = compare.compare(bases, new)
    assert {r.step for r in comparison.rows} == {None, 1}
    merged, _ = baseline_runs.baseline_of([doc["steps"][0] for doc in bases])
    assert merged["min_ms"] == pytest.approx(min(s.min_ms for s in steps[:3]), rel=1e-3)  # the histograms' precision
    assert merged["max_ms"] == max(s.max_ms for s in steps[:3])
    done = _cli(*_files(tmp_path, {"a.json": bases[0], "b.json": bases[1], "c.json": bases[2], "new.json": new}))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert [line.split()[:2] for line in done.stdout.splitlines() if line.strip().startswith("1 ")][0] == ["1", "p50"]


def test_a_figure_some_baseline_run_has_no_value_of_is_not_judged():
    # a baseline run whose requests all failed has no latency and 0 FPS; its figures were left out, so the table
    # printed the other run's (seen: "baseline 430.16 frames/s" for runs at 430.16 and 0.00 frames/s)
    good, failed = document(stats_of(NOISY)), document(stats_of([6.0] * len(NOISY), fail_every=1))
    assert failed["rows"][-1]["p50_ms"] is None and failed["rows"][-1]["fps"] == 0
    comparison = compare.compare([good, failed], document(stats_of(NOISY[::-1])))
    for figure in ("p50", "p90", "p99", "fps"):
        row = _row(comparison, figure)
        assert (row.base, row.noise_runs, row.verdict) == (None, None, compare.UNKNOWN), row
    fail = _row(comparison, "fail")  # both runs have a fail ratio: judged on their mean
    assert fail.base == pytest.approx(0.5) and fail.verdict == compare.SAME and fail.noise_runs > 0


def test_a_huge_noise_of_two_baseline_runs_keeps_the_table_in_its_columns():
    # two baseline runs whose p99 differ 8x: t(0.975, 1) makes the allowed change about 1e10 %, which ran into
    # the next columns ("+30.7 %259654208942.6259654208942.6" in a real k = 2 sweep comparison)
    calm, slow = document(stats_of(NOISY)), document(stats_of(NOISY, slow_every=20, slow_ms=40.0))
    comparison = compare.compare([calm, slow], document(stats_of(NOISY[::-1])))
    row = _row(comparison, "p99")
    assert row.noise_runs > 1e5
    line = next(x for x in compare.format_table(comparison).splitlines() if x.split()[:1] == ["p99"])
    fields = line.split()  # p99, base, ms, new, ms, change, %, noise, runs, windows, threshold, allowed, verdict
    assert len(fields) == 13, line
    assert float(fields[7]) == pytest.approx(row.noise, rel=0.05) and float(fields[11]) == pytest.approx(row.allowed, rel=0.05)


def test_the_plot_overlays_the_merged_distribution_and_each_run_faintly():
    levels = ((5.0, 200), (5.4, 190), (4.7, 210))
    stats = [stats_of([lv * v / 5.0 for v in NOISY], per_window=rate) for lv, rate in levels]
    rows = [document(s)["rows"][-1] for s in stats]
    lines = compare_plot.curves(rows, document(stats_of(NOISY))["rows"][-1])
    assert [(label, alpha) for label, _, alpha, _ in lines] == [
        ("baseline (3 runs merged)", 1.0), ("each baseline run", compare_plot.FAINT), (None, compare_plot.FAINT),
        (None, compare_plot.FAINT), ("this run", 1.0)]
    merged = LatencyStats()
    for s in stats:
        merged.merge(s)
    assert dict(lines[0][3])[50.0] == merged.percentile_ms(50) and dict(lines[0][3])[99.0] == merged.percentile_ms(99)
    assert dict(lines[2][3])[50.0] == stats[1].percentile_ms(50)


def test_the_baseline_option_is_repeatable_and_takes_lists_and_patterns(tmp_path):
    import configargparse

    from tfs_user.options import add_options

    parser = configargparse.ArgumentParser(prog="locust", default_config_files=[])
    add_options(parser)
    assert parser.parse_args(["--baseline", "a.json", "--baseline", "b.json,c.json"]).baseline == "a.json,b.json,c.json"
    for name in ("main-2.json", "main-1.json", "other.json"):
        (tmp_path / name).write_text("{}")
    assert baseline_paths([f"{tmp_path}/main-*.json, {tmp_path}/other.json"]) == [
        f"{tmp_path}/main-1.json", f"{tmp_path}/main-2.json", f"{tmp_path}/other.json"]
    for texts, words in (([f"{tmp_path}/none-*.json"], "matches no file"), ([""], "no baseline file given"),
                         ([f"{tmp_path}/other.json", f"{tmp_path}/../{tmp_path.name}/other.json"], "is given twice")):
        with pytest.raises(compare.CompareError) as e:
            baseline_paths(texts)
        assert words in str(e.value) and "\n" not in str(e.value)


def _files(tmp_path, docs):
    paths = []
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
        paths.append(tmp_path / name)
    return paths


def test_baseline_files_that_cannot_be_compared_give_one_line_naming_the_file_and_exit_2(tmp_path):
    a, b, new = _three()
    wrong = document(stats_of([5.1 * v / 5.0 for v in NOISY]), users=8)
    a_path, b_path, wrong_path, new_path = _files(tmp_path, {"a.json": a, "b.json": b, "wrong.json": wrong,
                                                             "new.json": new})
    shutil.copy(a_path, tmp_path / "a-copy.json")
    (tmp_path / "bad.json").write_text("{not json")
    for args, words in (((a_path, wrong_path, new_path), f"users is 4 in this run but 8 in the baseline '{wrong_path}'"),
                        ((f"{a_path},{wrong_path}", new_path), f"in the baseline '{wrong_path}'"),
                        ((a_path, tmp_path / "bad.json", new_path), f"baseline '{tmp_path / 'bad.json'}' is not JSON"),
                        ((a_path, tmp_path / "a-copy.json", new_path), "hold the same run"),
                        ((a_path, b_path, a_path), "hold the same run"),
                        ((a_path, a_path, new_path), "is given twice"),
                        ((f"{tmp_path}/none-*.json", new_path), "matches no file")):
        done = _cli(*args)
        assert done.returncode == 2, (args, done.stdout)
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1 and words in done.stderr, (args, done.stderr)
    alone = _cli(new_path)
    assert alone.returncode == 2 and "expected the baseline's JSON summaries, then the new run's" in alone.stderr
    with pytest.raises(compare.CompareError) as e:
        compare.compare([a, wrong], new)
    assert str(e.value).startswith("cannot compare: users is 4 in this run but 8 in baseline run 2;")


def test_the_command_takes_several_baseline_files_and_writes_both_noises(tmp_path):
    bases = _three()
    slower = document(stats_of([10.0 * v / 5.0 for v in NOISY], per_window=100))
    *base_paths, new_path = _files(tmp_path, {"base-1.json": bases[0], "base-2.json": bases[1], "base-3.json": bases[2],
                                              "new.json": slower})
    out = tmp_path / "cmp"
    done = _cli(*base_paths, new_path, "--json", f"{out}.json", "--csv", f"{out}.csv", "--plot", f"{out}.html")
    assert done.returncode == 3, done.stderr
    worse = [line for line in done.stdout.splitlines() if line.startswith("Worse than baseline: ")]
    assert worse and all("; between runs +/-" in line for line in worse)
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert saved["baseline_runs"] == 3 and saved["worse"] == worse
    assert all(r["noise_runs"] is not None and r["noise"] == max(r["noise_runs"], r["noise_windows"])
               for r in saved["rows"])
    with open(f"{out}.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["noise_runs"] for r in table] == [f"{r['noise_runs']:.6g}" for r in saved["rows"]]
    page = (tmp_path / "cmp.html").read_text()
    assert page.count("src='data:image/png;base64,") == 2 and "<th>Between runs</th>" in page and "(3 runs)" in page
    by_pattern = _cli(f"{tmp_path}/base-*.json", new_path, "--json", f"{out}-2.json")
    assert by_pattern.returncode == 3 and json.loads((tmp_path / "cmp-2.json").read_text()) == saved


def test_the_benchmark_table_takes_the_a_runs_of_the_rounds_before_as_the_baseline(tmp_path):
    import subprocess
    import sys

    docs = {"r01-A.json": document(stats_of(NOISY)), "r02-A.json": document(stats_of([1.01 * v for v in NOISY])),
            "r03-A.json": document(stats_of([0.99 * v for v in NOISY])), "r03-A2.json": document(stats_of(NOISY[::-1])),
            "r03-slow.json": document(stats_of([1.3 * v for v in NOISY], per_window=154)),
            "r02-slow.json": document(stats_of([1.3 * v for v in NOISY], per_window=154))}
    for doc in docs.values():
        doc["run"]["load_average"] = [3.0, 2.0, 1.0]
    _files(tmp_path, docs)
    done = subprocess.run([sys.executable, "benchmarks/compare_noise.py", "table", "--baseline-runs", "2", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "the A runs of the 2 rounds before" in done.stdout
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert set(rows) == {"condition", "A", "A2", "slow"}, rows  # round 3 only: r02-slow has no 2 rounds before it
    assert rows["A"].startswith("| A | 1 | 0/0 | 0/0 | 0/0 | 0/0 | 0/0 | 0 |"), rows
    assert rows["A2"].startswith("| A2 | 1 | 0/0 | 0/0 | 0/0 | 0/0 | 0/0 | 0 |"), rows
    assert rows["slow"].startswith("| slow | 1 | 1/0 | 1/0 | 1/0 | 1/0 | 0/0 | 1 |"), rows
    assert rows["slow"].count("|") == 12  # the median allowed column


def test_notices_about_several_baseline_runs_are_one_line_each():
    bases = _three()
    for doc, lag in zip(bases, (3.5, None, 7.25)):
        doc.update(loop_lag_warning=lag is not None, loop_lag_p99_ms=lag)
    bases[1]["run"]["host"] = "other"
    bases[2]["run"]["host"] = "third"
    new = document(stats_of(NOISY[::-1]))
    assert compare.compare(bases, new, names=["a.json", "b.json", "c.json"]).notices == [
        "Notice: host differs: 'h' here, 'other' in the baseline 'b.json', 'third' in the baseline 'c.json'",
        "Notice: in 2 of the 3 baseline runs the load generator was a bottleneck (event-loop lag p99 3.500 to "
        "7.250 ms): their latencies include that wait, so does the change"]
    assert compare.compare(bases[2], new).notices == [  # one baseline run: as before
        "Notice: host differs: 'h' here, 'third' in the baseline",
        "Notice: in the baseline the load generator was a bottleneck (event-loop lag p99 7.250 ms): its latencies "
        "include that wait, so does the change"]
