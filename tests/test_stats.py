"""Latency statistics against numpy on known samples; merging, worker messages, and the reports built on them."""

import csv
import json
import math
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

import msgpack
import numpy as np
import pytest

from tfs_user.results.status import STALE_S, SourceRates, StatusLine
from tfs_user.results.report import AGGREGATED, CSV_COLUMNS, format_summary, summary, write_csv, write_json
from tfs_user.results.verdict import Verdict, decide, slo_violations
from tfs_user.stats import PERCENTILES, LatencyStats, Recorder

N = 20000
T0 = 1_700_000_000.0  # wall-clock seconds, like time.time()


@pytest.fixture(scope="module")
def samples():
    """20000 lognormal latencies in ms, mostly 0.2..50 ms (a few beyond, not clipped)."""
    rng = np.random.default_rng(7)
    return rng.lognormal(mean=math.log(3.0), sigma=0.9, size=N)


def nearest_rank(values, p):
    """The nearest-rank percentile: the ceil(p/100 * n)-th smallest value."""
    ordered = np.sort(values)
    rank = max(math.ceil(p / 100 * len(ordered) - 1e-9), 1)
    return ordered[rank - 1]


def close(got, expected):
    """Within 0.1 % relative or 1 us (values in ms)."""
    return abs(got - expected) <= max(1e-3 * abs(expected), 1e-3)


def fill(values, ok=True, frames=4, start=T0, step=0.001, first=0):
    """LatencyStats of ``values``; request i (counted from ``first``) starts at start + i * step."""
    stats = LatencyStats()
    for i, v in enumerate(values, first):
        stats.record(float(v), ok, frames, start + i * step, start + i * step + float(v) / 1000)
    return stats


def roundtrip(message):
    """What a worker report does to a message: msgpack out and in (as Locust's rpc does)."""
    return msgpack.loads(msgpack.dumps(message), raw=False, strict_map_key=False)


# --- LatencyStats -----------------------------------------------------------------


def test_percentiles_match_numpy(samples):
    stats = fill(samples)
    for p in PERCENTILES:
        got = stats.percentile_ms(p)
        assert close(got, nearest_rank(samples, p)), (p, got, nearest_rank(samples, p))
        if p != 99.9:  # numpy computes 0.999 * 20000 as 19980.000000000004 and takes rank 19981
            assert close(got, np.percentile(samples, p, method="inverted_cdf")), p
        assert samples.min() <= got <= samples.max()  # clamped to the exact min/max
    assert stats.percentile_ms(100) == samples.max()


def hdr_equivalent_ms(stats, value_ms):
    """What the histogram can say of one value: the top of its HDR bucket, clamped to the exact min/max."""
    top = stats.histogram.get_highest_equivalent_value(round(value_ms * 1000)) / 1000
    return min(max(top, stats.min_ms), stats.max_ms)


# (n, p) where the nearest rank ceil(p*n/100) and hdrh's round-half-up int(p*n/100 + 0.5) differ,
# and a few where they agree; p 0 and 100 are the exact min and max
SMALL_N_TABLE = [(160, 99), (170, 99), (31, 95), (13, 90), (20, 95), (40, 99), (10, 50), (3, 50), (7, 90), (150, 99), (1000, 99.9),
                 (2, 50), (5, 99.9), (1, 99), (1999, 99.9), (160, 50), (160, 90), (100, 99), (4, 0), (4, 100)]


@pytest.mark.parametrize("n,p", SMALL_N_TABLE)
def test_small_n_percentiles_are_the_nearest_rank(n, p):
    """Values 1..n ms in a shuffled order: the percentile is numpy's inverted_cdf value (the nearest rank)
    as the HDR histogram holds it, never a neighbouring rank."""
    values = np.random.default_rng(n).permutation(np.arange(1, n + 1, dtype=float))
    stats = fill(values)
    exact_rank = max(math.ceil(Fraction(Decimal(repr(p))) * n / 100), 1)  # values are 1..n: value = rank
    expected = float(np.percentile(values, p, method="inverted_cdf"))
    if Fraction(p / 100 * n) != Fraction(Decimal(repr(p))) * n / 100:  # numpy computes 0.999 * 1000 as 999.0000000000001
        expected = float(exact_rank)
    assert expected == exact_rank
    assert stats.percentile_ms(p) == hdr_equivalent_ms(stats, expected), (n, p, stats.percentile_ms(p))
    row = stats.summary()
    if p in PERCENTILES:
        assert row[f"p{p:g}_ms"] == stats.percentile_ms(p)


def test_a_slow_tail_over_one_percent_is_p99():
    """158 requests at 1 ms and 2 at 50 ms: 1.25 % are slow, so p99 is 50 ms and a 10 ms p99 SLO is missed
    (rounding the rank half up read p99 1.0 ms and passed)."""
    recorder = Recorder()
    for i, ms in enumerate([1.0] * 158 + [50.0] * 2):
        recorder.record("Predict m", ms, True, 1, T0 + i, T0 + i + ms / 1000)
    data = summary(recorder)
    assert data["rows"][-1]["p99_ms"] == 50.0
    assert slo_violations(data, SimpleNamespace(slo_p99_ms=10.0, slo_min_fps=0, slo_max_fail_ratio=1)) == [
        "SLO missed: p99 latency 50.000 ms > --slo-p99-ms 10"]


def test_exact_count_min_max_mean_frames(samples):
    s = fill(samples).summary()
    assert s["requests"] == N and s["failures"] == 0 and s["fail_ratio"] == 0.0
    assert s["frames"] == 4 * N
    assert s["min_ms"] == samples.min() and s["max_ms"] == samples.max()
    assert s["mean_ms"] == pytest.approx(samples.mean(), rel=1e-12)
    assert [k for k in s if k.startswith("p")] == ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99.9_ms"]


def test_window_rps_fps():
    stats = LatencyStats()
    stats.record(10.0, True, 8, T0 + 1.0, T0 + 1.010)
    stats.record(20.0, True, 8, T0 + 0.5, T0 + 0.520)  # earliest start
    stats.record(5.0, False, 8, T0 + 3.0, T0 + 4.5)  # failure still bounds the window
    s = stats.summary()
    assert s["window_s"] == pytest.approx(4.0)
    assert s["rps"] == pytest.approx(2 / 4.0) and s["fps"] == pytest.approx(16 / 4.0)


def test_failures_counted_not_in_latency(samples):
    stats = fill(samples[:1000])
    for i in range(250):
        stats.record(1e6, False, 4, T0 + 100, T0 + 101)  # huge failed latency must not show
    s = stats.summary()
    assert (s["requests"], s["failures"], s["frames"]) == (1250, 250, 4000)
    assert s["fail_ratio"] == pytest.approx(0.2)
    assert s["max_ms"] == samples[:1000].max() and s["mean_ms"] == pytest.approx(samples[:1000].mean())
    for p in PERCENTILES:
        assert close(s[f"p{p:g}_ms"], nearest_rank(samples[:1000], p))
    assert s["window_s"] == pytest.approx(101.0)


def test_empty_and_failures_only():
    empty = LatencyStats().summary()
    counts = ("requests", "failures", "frames", "window_s")
    assert all(empty[k] == 0 for k in counts)
    assert all(value is None for k, value in empty.items() if k not in counts)  # statistics of an empty set
    only = LatencyStats()
    only.record(3.0, False, 2, T0, T0 + 2)
    s = only.summary()
    assert (s["requests"], s["failures"], s["fail_ratio"], s["frames"]) == (1, 1, 1.0, 0)
    assert s["window_s"] == 2.0 and s["fps"] == 0.0 and s["rps"] == 0.0  # a measured window with no frames: 0
    assert all(s[k] is None for k in ("min_ms", "mean_ms", "p50_ms", "p99_ms", "p99.9_ms", "max_ms"))


def test_empty_statistics_are_empty_in_csv_json_and_console(tmp_path):
    recorder = Recorder()
    recorder.record("Predict m", 5.0, False, 4, T0, T0 + 1)
    data = summary(recorder)
    write_csv(str(tmp_path / "t.csv"), data)
    with open(tmp_path / "t.csv") as f:
        row = list(csv.DictReader(f))[-1]
    assert row["Failures"] == "1" and row["p99 ms"] == "" and row["Min ms"] == "" and row["FPS"] == "0.000"
    write_json(str(tmp_path / "t.json"), data, Verdict(3, ("SLO missed: p99 latency: no successful requests",)))
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["rows"][-1]["p99_ms"] is None and doc["rows"][-1]["mean_ms"] is None
    text = format_summary(data)
    assert "0.000" not in text.split("\n")[-3] and " -" in text  # the Aggregated row shows - for latency


@pytest.mark.parametrize("ms", [0.001, 0.5, 1.0, 2.0, 2.047])
def test_small_values_exact_to_the_microsecond(ms):
    stats = fill([ms] * 5)
    for p in PERCENTILES:
        assert stats.percentile_ms(p) == ms  # 2.000 ms reads 2.0, not rounded to whole ms


def test_value_just_above_2ms_within_0_1_percent():
    stats = fill([2.5, 12.345, 49.999])
    assert close(stats.percentile_ms(0.1), 2.5) and close(stats.percentile_ms(50), 12.345)
    assert close(stats.percentile_ms(99.9), 49.999)
    assert stats.percentile_ms(50) != 12  # not whole ms


def test_merge_of_split_equals_all(samples):
    whole = fill(samples)
    rng = np.random.default_rng(3)
    mask = rng.random(N) < 0.3
    a = fill(samples[mask], start=T0 + 5)
    b = fill(samples[~mask], start=T0)
    last_end = max(a.last_end, b.last_end)
    a.merge(b)
    assert a.summary()["requests"] == N
    for p in PERCENTILES:
        assert a.percentile_ms(p) == whole.percentile_ms(p)
    assert a.min_ms == whole.min_ms and a.max_ms == whole.max_ms and a.frames == whole.frames
    assert a.sum_ms == pytest.approx(whole.sum_ms, rel=1e-12)
    assert a.first_start == T0 and a.last_end == last_end


def test_merge_with_empty_both_ways(samples):
    stats = fill(samples[:100])
    before = stats.summary()
    stats.merge(LatencyStats())
    assert stats.summary() == before
    empty = LatencyStats()
    empty.merge(stats)
    assert empty.summary() == before


def test_message_roundtrip_preserves_all(samples):
    stats = fill(samples)
    stats.record(7.0, False, 4, T0 - 1, T0)
    back = LatencyStats.from_message(roundtrip(stats.to_message()))
    assert back.summary() == stats.summary()
    assert (back.first_start, back.last_end) == (stats.first_start, stats.last_end)
    assert back.histogram.get_total_count() == N


@pytest.mark.parametrize("kind", ["empty", "failures-only"])
def test_message_roundtrip_without_successes(kind):
    stats = LatencyStats()
    if kind == "failures-only":
        stats.record(3.0, False, 1, T0, T0 + 1)
    back = LatencyStats.from_message(roundtrip(stats.to_message()))
    assert back.summary() == stats.summary()
    other = fill([1.5, 2.5])
    other.merge(back)  # inf/None handled: min and window stay right
    assert other.min_ms == 1.5 and other.failures == stats.failures
    assert other.first_start == T0


def test_distributed_merge_via_messages(samples):
    """Three workers' messages merged on a master equal one process that saw everything."""
    whole = fill(samples)
    parts = np.array_split(samples, 3)
    master = LatencyStats()
    offset = 0
    for part in parts:
        worker = fill(part, first=offset)
        offset += len(part)
        master.merge(LatencyStats.from_message(roundtrip(worker.to_message())))
    for key, value in whole.summary().items():
        assert master.summary()[key] == pytest.approx(value, rel=1e-12), key


# --- Recorder ---------------------------------------------------------------------


def test_recorder_total_merge_and_message(samples):
    a, b = Recorder(), Recorder()
    for i, v in enumerate(samples[:1250]):  # 1000 successes: whole-number ranks for every percentile
        (a if i % 2 else b).record("Predict x" if i % 3 else "Predict y", float(v), i % 5 != 0, 2, T0 + i, T0 + i + 1)
    a.warmup, a.warmup_failures, a.after_stop = 3, 1, 2
    b.warmup, b.after_stop = 4, 5
    merged = Recorder()
    merged.merge(Recorder.from_message(roundtrip(a.to_message())))
    merged.merge(Recorder.from_message(roundtrip(b.to_message())))
    assert (merged.warmup, merged.warmup_failures, merged.after_stop) == (7, 1, 7)
    assert sorted(merged.names) == ["Predict x", "Predict y"]
    total = merged.total()
    assert total.requests == 1250 and total.failures == 250 and total.frames == 2 * 1000
    ok = np.array([v for i, v in enumerate(samples[:1250]) if i % 5 != 0])
    for p in PERCENTILES:
        assert close(total.percentile_ms(p), nearest_rank(ok, p))
    assert total.window_s == pytest.approx(1250.0)
    assert merged.names["Predict y"].requests == 417
    assert Recorder().is_empty() and not merged.is_empty()


# --- report -----------------------------------------------------------------------


@pytest.fixture
def recorder(samples):
    r = Recorder()
    for i, v in enumerate(samples[:1000]):
        r.record("Predict b", float(v), True, 4, T0 + i * 0.01, T0 + i * 0.01 + 0.005)
    for i, v in enumerate(samples[1000:1500]):
        r.record("Predict a", float(v), i % 50 != 0, 4, T0 + 1 + i * 0.01, T0 + 1 + i * 0.01 + 0.004)
    r.warmup, r.warmup_failures, r.after_stop = 2, 1, 3
    return r


def test_summary_rows_and_aggregated(recorder):
    data = summary(recorder)
    assert [row["name"] for row in data["rows"]] == ["Predict a", "Predict b", AGGREGATED]
    total = data["rows"][-1]
    assert total["requests"] == 1500 and total["failures"] == 10 and total["frames"] == 4 * 1490
    assert total["fps"] == pytest.approx(total["rps"] * 4)
    assert total["window_s"] == pytest.approx(9.995)
    assert (data["warmup_requests"], data["warmup_failures"], data["after_stop_requests"]) == (2, 1, 3)
    assert data["rows"][1] == dict(name="Predict b", **recorder.names["Predict b"].summary())


def test_write_csv_columns_and_values(recorder, tmp_path):
    data = summary(recorder)
    path = tmp_path / "sub" / "out_tfs.csv"
    write_csv(str(path), data)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Name", "Requests", "Failures", "Fail ratio", "Frames", "Window s", "Requests/s", "FPS",
                       "Min ms", "Mean ms", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "p99.9 ms", "Max ms"]
    assert len(rows) == 4
    for line, row in zip(rows[1:], data["rows"]):
        by_title = dict(zip(rows[0], line))
        assert by_title["Name"] == row["name"]
        assert by_title["Requests"] == str(row["requests"]) and by_title["Frames"] == str(row["frames"])
        for title, key in CSV_COLUMNS[3:]:
            if key == "frames":
                continue
            text = by_title[title]
            decimals = 6 if key == "fail_ratio" else 3  # a ratio shows thresholds like 0.0001
            assert text.split(".")[1].__len__() == decimals, (title, text)
            assert float(text) == pytest.approx(row[key], abs=0.5 * 10 ** -decimals)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_write_json_verdict(recorder, tmp_path):
    data = summary(recorder)
    path = tmp_path / "summary.json"
    write_json(str(path), data, Verdict(0))
    doc = json.loads(path.read_text())
    assert doc["passed"] is True and doc["slo_violations"] == [] and doc["exit_code"] == 0
    assert doc["rows"][-1]["p99_ms"] == data["rows"][-1]["p99_ms"] and doc["warmup_requests"] == 2
    write_json(str(path), data, Verdict(3, ("SLO missed: x",)))
    doc = json.loads(path.read_text())
    assert doc["passed"] is False and doc["slo_violations"] == ["SLO missed: x"] and doc["exit_code"] == 3
    write_json(str(path), data, Verdict(1))  # failures without a fail-ratio SLO: not passed, no SLO line
    doc = json.loads(path.read_text())
    assert doc["passed"] is False and doc["slo_violations"] == [] and doc["exit_code"] == 1


def _slo(p99=0.0, fps=0.0, ratio=1.0):
    return SimpleNamespace(slo_p99_ms=p99, slo_min_fps=fps, slo_max_fail_ratio=ratio)


def test_slo_defaults_give_none(recorder):
    assert slo_violations(summary(recorder), _slo()) == []
    assert slo_violations(summary(Recorder()), _slo()) == []


def test_latency_and_fps_slos_over_no_successful_request_are_missed():
    recorder = Recorder()
    recorder.record("Predict m", 5.0, False, 4, T0, T0 + 1)
    data = summary(recorder)
    assert slo_violations(data, _slo(p99=10)) == ["SLO missed: p99 latency: no successful requests"]
    assert slo_violations(data, _slo(fps=1)) == ["SLO missed: FPS: no successful requests"]
    assert slo_violations(summary(Recorder()), _slo(ratio=0.5)) == ["SLO missed: fail ratio: no measured requests"]


@pytest.mark.parametrize("slo, could_not_run, any_failure, on_error, code", [
    (dict(), False, False, 1, 0),
    (dict(), False, True, 1, 1),  # Locust's rule: any failure
    (dict(), False, True, 0, 0),  # ... with --exit-code-on-error 0
    (dict(ratio=0.05), False, True, 1, 0),  # a fail-ratio SLO replaces it (2 % failures here)
    (dict(ratio=0.01), False, True, 1, 3),
    (dict(p99=1e9), False, True, 1, 1),
    (dict(p99=0.001), False, False, 1, 3),
    (dict(p99=0.001), True, False, 1, 2),  # could not run wins
])
def test_exit_code_table(slo, could_not_run, any_failure, on_error, code):
    recorder = Recorder()
    for i in range(98):
        recorder.record("Predict m", 2.0, True, 1, T0 + i, T0 + i + 0.002)
    for i in range(2):
        recorder.record("Predict m", 2.0, False, 1, T0 + i, T0 + i + 0.002)
    verdict = decide(summary(recorder), _slo(**slo), could_not_run, any_failure, on_error)
    assert verdict.exit_code == code and verdict.passed == (code == 0)
    assert bool(verdict.violations) == (code == 3 or (code == 2 and "p99" in slo))


def test_slo_each_threshold_met_and_missed(recorder):
    data = summary(recorder)
    total = data["rows"][-1]
    p99, fps, ratio = total["p99_ms"], total["fps"], total["fail_ratio"]
    assert ratio > 0
    assert slo_violations(data, _slo(p99=p99)) == []  # equal is met
    assert slo_violations(data, _slo(p99=p99 * 1.01)) == []
    missed = slo_violations(data, _slo(p99=p99 * 0.99))
    assert len(missed) == 1 and "--slo-p99-ms" in missed[0] and f"{p99:.3f}" in missed[0]
    assert slo_violations(data, _slo(fps=fps * 0.99)) == []
    missed = slo_violations(data, _slo(fps=fps * 1.01))
    assert len(missed) == 1 and "--slo-min-fps" in missed[0]
    assert slo_violations(data, _slo(ratio=ratio)) == []
    missed = slo_violations(data, _slo(ratio=ratio / 2))
    assert len(missed) == 1 and "--slo-max-fail-ratio" in missed[0]
    missed = slo_violations(data, _slo(ratio=0.0))
    assert len(missed) == 1
    assert len(slo_violations(data, _slo(p99=p99 / 2, fps=fps * 2, ratio=ratio / 2))) == 3


def test_format_summary(recorder):
    data = summary(recorder)
    text = format_summary(data, notes=["note: demo"])
    total = data["rows"][-1]
    assert "FPS" in text and "Average latency" in text
    assert f"Average latency: {total['mean_ms']:.3f} ms" in text
    assert f"FPS: {total['fps']:.1f} frames/s" in text
    assert f"Failures: 10/1500" in text and "2 warm-up requests (1 failed), 3 completed after stop" in text
    data["warmup_requests"] = 1
    assert "Left out: 1 warm-up request (1 failed)" in format_summary(data)
    assert "Predict a" in text and AGGREGATED in text and text.endswith("note: demo")


def test_status_line_rates(recorder):
    """A local runner: the rate since the previous line over the requests' own end times; none since = 0."""
    status = StatusLine()
    total = recorder.total()
    line, history = status.format(recorder, users=5, now=total.last_end)
    assert line.startswith("[tfs] users 5 | ")
    window = total.last_end - total.first_start
    assert f"| {total.ok / window:.1f} req/s | {total.frames / window:.1f} FPS |" in line
    assert f"p99 {total.percentile_ms(99):.3f} ms" in line and "failures 10 (0.67 %)" in line
    assert history[1:5] == [5, 1500, 10, 4 * 1490]
    line, history = status.format(recorder, users=5, now=total.last_end + 1)  # no new requests
    assert "| 0.0 req/s | 0.0 FPS |" in line


def _worker_report(rate, start, end, frames=2):
    """LatencyStats of a worker's requests at ``rate``/s ending in (start, end] (one report)."""
    stats = LatencyStats()
    n = round((end - start) * rate)
    for i in range(1, n + 1):
        stats.record(1.0, True, frames, start + i / rate - 0.001, start + i / rate)
    return stats


def test_master_status_rates_each_worker_by_its_own_end_times():
    """Two workers at 400 and 160 req/s (users split unevenly) report every 3 s, 1.5 s apart; a line every 1 s
    (one clock). Counting reports as they arrive read 0 and up to 3x; one series over the merged last end read
    320 and 800 (a report's 3 s of requests over the 1.5 s since the other's); each worker over its own
    end times reads 560."""
    rates, recorder = SourceRates(), Recorder()
    status = StatusLine(rates)
    reports = sorted([(t, "w1", 400) for t in (3, 6, 9, 12)] + [(t, "w2", 160) for t in (4.5, 7.5, 10.5)])
    printed = []
    for second in range(3, 13):
        for end, worker, rate in [r for r in reports if second - 1 < r[0] <= second]:
            rates.add_report(worker, _worker_report(rate, T0 + end - 3, T0 + end), recorder)
        printed.append(float(status.format(recorder, 2, now=T0 + second)[0].split(" | ")[1].split()[0]))
    # first spans run from a worker's first start: n requests over n - 1 gaps read 0.1 % high
    assert printed[:2] == pytest.approx([400] * 2, rel=0.002) and printed[2:] == pytest.approx([560] * 8, rel=0.002), printed
    new_test = Recorder()  # a new test starts afresh
    rates.add_report("w1", _worker_report(280, T0 + 12, T0 + 13), new_test)
    assert rates.read(new_test, now=T0 + 13) == pytest.approx((280, 560), rel=0.004)
    assert rates.read(new_test, now=T0 + 13 + STALE_S + 1) == (0.0, 0.0)  # a worker that stopped sending


# --- verdicts never contradict the figures ----------------------------------------


def _number_in(line, before):
    """The number printed right after ``before`` in a verdict line."""
    return float(line.split(before, 1)[1].split()[0])


def _edge_recorder(ms_values, failures=0, frames=1, window_s=1.0):
    recorder = Recorder()
    n = len(ms_values)
    for i, ms in enumerate(ms_values):
        start = T0 + i * window_s / n
        recorder.record("Predict m", ms, i >= failures, frames, start, start + ms / 1000)
    return recorder


@pytest.mark.parametrize("case", ["p99 1.5004 ms, SLO 1.5", "FPS 99.96, SLO 100", "1 failure in 5000, SLO 0.0001"])
def test_a_verdict_line_shows_why_it_missed_and_the_csv_shows_the_judged_figure(case, tmp_path):
    """One rule for every threshold: the exact figure is judged, percentiles are whole microseconds (so the
    3 decimals printed are the figure judged), and a line naming a miss prints the figure with the digits
    that read apart from the threshold; the CSV holds the figure judged, at a precision the threshold shows.
    Before: 'p99 latency 1.500 ms > 1.5', 'FPS 100.0 < --slo-min-fps 100', Fail ratio 0.000 in the CSV."""
    if case.startswith("p99"):
        data = summary(_edge_recorder([1.5004] * 50))  # recorded as 1500 us; clamped to the exact min, 1.5004
        slo, column, key = _slo(p99=1.5), "p99 ms", "p99_ms"
        assert data["rows"][-1]["p99_ms"] == 1.5 and data["rows"][-1]["max_ms"] == 1.5004
        assert slo_violations(data, slo) == []  # 1.500 ms judged, 1.500 printed: met
    elif case.startswith("FPS"):
        data = summary(_edge_recorder([1.0] * 9996, window_s=100.0))
        data["rows"][-1]["fps"] = 99.96  # exactly the figure (the window's end adds the last 1 ms)
        slo, column, key = _slo(fps=100), "FPS", "fps"
        assert slo_violations(data, slo) == ["SLO missed: FPS 99.96 < --slo-min-fps 100"]
    else:
        data = summary(_edge_recorder([1.0] * 5000, failures=1))
        slo, column, key = _slo(ratio=0.0001), "Fail ratio", "fail_ratio"
        assert slo_violations(data, slo) == ["SLO missed: fail ratio 0.0002 > --slo-max-fail-ratio 0.0001"]
    write_csv(str(tmp_path / "t.csv"), data)
    with open(tmp_path / "t.csv") as f:
        cell = float(list(csv.DictReader(f))[-1][column])
    judged = data["rows"][-1][key]
    assert cell == pytest.approx(judged, abs=5e-7 if key == "fail_ratio" else 5e-4)
    for line in slo_violations(data, slo):  # what is printed reads as a miss, in the miss's direction
        if key == "fps":
            assert _number_in(line, "FPS ") < 100 and cell < 100
        elif key == "fail_ratio":
            assert _number_in(line, "fail ratio ") > 0.0001 and cell > 0.0001
    # a sweep step judges and prints the same way
    from tfs_user.capacity.plans import Slo, slo_misses
    row = dict(data["rows"][-1])
    step_slo = Slo(p99_ms=slo.slo_p99_ms, min_fps=slo.slo_min_fps, max_fail_ratio=slo.slo_max_fail_ratio)
    misses = slo_misses(row, step_slo)
    if key == "p99_ms":
        assert misses == []
    else:
        assert misses == [{"fps": "FPS 99.960 < 100", "fail_ratio": "fail ratio 0.0002 > 0.0001"}[key]]


@pytest.mark.parametrize("value,threshold,decimals,text", [
    (99.96, 100, 1, "99.96"), (100.04, 100, 1, "100.04"), (1.5004, 1.5, 3, "1.5004"), (0.0002, 0.0001, 4, "0.0002"),
    (0.00015, 0.0001, 4, "0.00015"), (3.612, 1.5, 3, "3.612"), (51.45, 51.4, 1, "51.5"), (51.44, 51.4, 1, "51.44")])
def test_a_missed_figure_reads_apart_from_its_threshold(value, threshold, decimals, text):
    from tfs_user.results.verdict import apart
    assert apart(value, threshold, decimals) == text


@pytest.mark.parametrize("top_ms", [1454.612728, 0.0004, 3.0005])
def test_percentiles_are_whole_microseconds_inside_min_and_max_at_that_resolution(top_ms):
    # percentiles are whole microseconds (the unit recorded; what is printed is judged), min/max exact: at the
    # printed resolution a percentile never passes them (a loop-lag summary read p99 1454.613, max 1454.6127)
    stats = LatencyStats()
    for ms in (top_ms * 0.5, top_ms):
        stats.record(ms, True, 1, 0.0, 1.0)
    s = stats.summary()
    assert round(s["min_ms"], 3) <= s["p50_ms"] and s["p99_ms"] <= round(s["max_ms"], 3), s
    assert all(round(s[k], 3) == s[k] for k in ("p50_ms", "p99_ms", "p99.9_ms")), s
