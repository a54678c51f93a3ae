"""benchmarks/arrival_rate.py: the search for the highest held rate (a fake measure; the real one runs by hand)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import arrival_rate  # noqa: E402


def _fake(limit):
    def measure(rate):
        achieved = min(rate, limit)
        result = {"target": rate, "rps": achieved, "sent_rps": achieved, "failures": 0, "requests": int(achieved * 10),
                  "send_error_p99_ms": 0.1, "late": 0, "late_ratio": 0.0, "p50_ms": 1.0, "p99_ms": 2.0,
                  "service_p99_ms": 1.5, "schedule_kept": True}
        result["held"] = arrival_rate.held(result, 0.01)
        return result
    return measure


def test_search_doubles_then_bisects_to_the_resolution():
    results, best = arrival_rate.search(_fake(1700), 250, 0.05, 20000, log=lambda text: None)
    rates = [r["target"] for r in results]
    assert rates[:4] == [250, 500, 1000, 2000]  # doubling until 2000 misses
    assert best <= 1700 * 1.01 and (min(r for r in rates if r > best) - best) / best <= 0.05, rates
    assert best >= 1700 * 0.95


def test_held_needs_both_rates_within_tolerance_no_failures_and_the_schedule_kept():
    ok = {"target": 1000, "rps": 995.0, "sent_rps": 1004.0, "failures": 0, "schedule_kept": True}
    assert arrival_rate.held(ok, 0.01)
    assert not arrival_rate.held(dict(ok, rps=985.0), 0.01)
    assert not arrival_rate.held(dict(ok, sent_rps=None), 0.01)
    assert not arrival_rate.held(dict(ok, failures=1), 0.01)
    assert not arrival_rate.held(dict(ok, schedule_kept=False), 0.01)
