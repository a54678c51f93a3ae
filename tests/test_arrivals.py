"""Open-loop arrivals: the schedule's distribution, the rate split, and a dispatcher driven by real greenlets."""

import math
import time

import gevent
import numpy as np
import pytest

from tfs_user.capacity.arrivals import ArrivalError, DispatchStats, Dispatcher, Intervals, process_rate, process_rng


def ks_statistic_exponential(samples, rate):
    """Kolmogorov-Smirnov D of ``samples`` against Exp(rate): max |F_n(x) - F(x)| over both sides of each step."""
    x = np.sort(np.asarray(samples))
    n = len(x)
    cdf = 1.0 - np.exp(-rate * x)
    upper = np.arange(1, n + 1) / n - cdf
    lower = cdf - np.arange(0, n) / n
    return max(upper.max(), lower.max())


KS_CRITICAL_1PCT = 1.628  # sqrt(-ln(0.005)/2): critical value / sqrt(n) at alpha = 0.01, large n


def draw(intervals, n):
    return np.array([intervals.next() for _ in range(n)])


def test_poisson_interarrival_times_pass_ks_against_exponential():
    rate, n = 250.0, 20000
    samples = draw(Intervals(rate, "poisson", process_rng(seed=7, process_key=0)), n)
    d = ks_statistic_exponential(samples, rate)
    assert d < KS_CRITICAL_1PCT / math.sqrt(n), d
    assert abs(samples.mean() * rate - 1) < 0.03
    # the test can tell: evenly spaced or uniform gaps with the same mean are rejected
    assert ks_statistic_exponential(np.full(n, 1 / rate), rate) > KS_CRITICAL_1PCT / math.sqrt(n)
    uniform = np.random.default_rng(1).uniform(0, 2 / rate, n)
    assert ks_statistic_exponential(uniform, rate) > KS_CRITICAL_1PCT / math.sqrt(n)


def test_constant_mode_is_evenly_spaced():
    samples = draw(Intervals(400.0, "constant"), 1000)
    assert np.all(samples == 1 / 400.0)


def test_processes_draw_their_own_sequences():
    a = draw(Intervals(100.0, "poisson", process_rng(seed=3, process_key=0)), 50)
    b = draw(Intervals(100.0, "poisson", process_rng(seed=3, process_key=1)), 50)
    again = draw(Intervals(100.0, "poisson", process_rng(seed=3, process_key=0)), 50)
    assert not np.allclose(a, b)
    assert np.array_equal(a, again)


def test_rate_split_in_proportion_to_users():
    assert process_rate(300.0, 1, 3) == pytest.approx(100.0)
    assert process_rate(300.0, 2, 3) == pytest.approx(200.0)
    assert process_rate(300.0, 0, 3) == 0.0
    with pytest.raises(ArrivalError, match="--arrival-rate 0"):
        process_rate(0, 1, 1)
    with pytest.raises(ArrivalError, match="5 users of 3"):
        process_rate(100.0, 5, 3)
    with pytest.raises(ArrivalError, match=r"--arrival 'burst' is not known; expected one of poisson, constant"):
        Intervals(10.0, "burst")


def drive(dispatcher, users, service_s, run_s):
    """``users`` greenlets take slots and 'serve' each for ``service_s`` (gevent.sleep) for ``run_s`` seconds.

    A slot counts when it was actually sent within ``run_s``. Returns (slots, start).
    """
    slots = []
    start = time.perf_counter()

    def user():
        while True:
            slot = dispatcher.take()
            if slot.sent - start >= run_s:
                return
            slots.append(slot)
            gevent.sleep(service_s)

    greenlets = [gevent.spawn(user) for _ in range(users)]
    gevent.joinall(greenlets, timeout=run_s + 5)
    gevent.killall(greenlets)
    return slots, start


@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_dispatcher_holds_the_rate_with_real_greenlets(arrival):
    rate, run_s = 300.0, 2.5
    rng = process_rng(seed=11, process_key=0)
    dispatcher = Dispatcher(rate, arrival, rng=rng, start=time.perf_counter())
    slots, start = drive(dispatcher, users=8, service_s=0.002, run_s=run_s)
    achieved = len(slots) / run_s
    if arrival == "constant":
        assert achieved == pytest.approx(rate, rel=0.02)
    else:
        # a Poisson count over 750 arrivals varies by ~4 %: compare with what the schedule offered
        offered = Intervals(rate, "poisson", process_rng(seed=11, process_key=0))
        t, count = offered.next(), 0
        while t < run_s:
            count, t = count + 1, t + offered.next()
        assert achieved == pytest.approx(count / run_s, rel=0.02)
    assert dispatcher.stats.late <= 0.01 * len(slots)
    assert dispatcher.stats.warning() is None
    errors = sorted(s.send_error_ms for s in slots)
    assert errors[len(errors) // 2] < 5.0  # woken on time (loose: shared machine)


def test_late_sends_counted_when_users_are_too_few():
    # 2 users x 1 / 20 ms = 100 req/s of capacity against 300 req/s offered
    rate, run_s, service_s = 300.0, 1.5, 0.02
    dispatcher = Dispatcher(rate, "constant", start=time.perf_counter())
    slots, start = drive(dispatcher, users=2, service_s=service_s, run_s=run_s)
    stats = dispatcher.stats
    assert stats.late >= 0.5 * stats.sent
    summary = stats.summary()
    # the backlog grows by 2/3 of the run: the last sends are about a second late, not dropped
    assert summary["late_max_ms"] > 500
    assert dispatcher.lag_s() > 0.5
    warning = stats.warning()
    assert warning.startswith("open-loop schedule not kept: ")
    assert "all users were busy" in warning and "--arrival-rate" in warning
    # latency from the schedule includes the wait; service time does not
    last = slots[-1]
    assert last.latency_ms(last.sent + service_s) > 500
    assert last.service_ms(last.sent + service_s) == pytest.approx(service_s * 1000)


def test_dispatch_stats_merge_across_processes():
    a, b = Dispatcher(100.0, "constant", start=0.0, clock=lambda: 10.0, sleep=None), DispatchStats(50.0)
    for _ in range(3):
        a.take()  # all overdue at t = 10 s: late
    merged = DispatchStats.from_message(a.stats.to_message())
    merged.merge(DispatchStats.from_message(b.to_message()))
    assert (merged.target_rps, merged.sent, merged.late) == (150.0, 3, 3)
    assert merged.summary()["late_max_ms"] == pytest.approx(10000.0, rel=1e-3)
    assert DispatchStats().summary()["late_p99_ms"] is None  # empty set: no figure, not 0
