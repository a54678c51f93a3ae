"""Open-loop arrivals: the schedule's distribution, the rate split, and a dispatcher driven by real greenlets."""

import math
import time

import gevent
import numpy as np
import pytest

from tfs_user.capacity.arrivals import ArrivalError, DispatchStats, Intervals, process_rate, process_rng
from tfs_user.capacity.dispatcher import Dispatcher


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
def test_dispatcher_keeps_the_schedule_with_real_greenlets(arrival):
    # What holds on any machine: every slot of the schedule is sent, none dropped, never before its time,
    # and the sends in the run are the schedule's slots up to the run's end, less those that this
    # machine's own lag (the largest send error seen, measured in this test) pushed past it. How
    # late the sends are on a quiet machine is a benchmark (benchmarks/arrival_rate.py).
    rate, run_s = 300.0, 2.5
    begin = time.perf_counter()
    dispatcher = Dispatcher(rate, arrival, rng=process_rng(seed=11, process_key=0), start=begin)
    slots, start = drive(dispatcher, users=8, service_s=0.002, run_s=run_s)  # counts sends before start + run_s
    slots.sort(key=lambda s: s.index)  # timers due in the same millisecond may wake in either order
    assert [s.index for s in slots] == list(range(len(slots)))
    assert all(s.sent >= s.scheduled - 1e-6 for s in slots)
    offered = Intervals(rate, arrival, process_rng(seed=11, process_key=0))
    times, t = [], begin + (0.0 if arrival == "constant" else offered.next())
    while t < start + run_s:
        times.append(t)
        t += offered.next()
    lag_s = max(s.send_error_ms for s in slots) / 1000.0
    assert sum(t < start + run_s - lag_s for t in times) <= len(slots) <= len(times), (len(slots), len(times), lag_s)
    assert [s.scheduled for s in slots] == pytest.approx(times[:len(slots)], abs=1e-6)


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
    assert "sent late, no user waiting when they fell due" in warning and "all users were busy" not in warning
    assert warning.endswith("; add users or lower --arrival-rate")  # no lag figure: the users are the suspect
    # the event loop ran late by as much as the sends were late: it, not the users, is named (not "add users")
    s = stats.summary()
    lagged = stats.warning("--trace-speedup", lag_p99_ms=s["late_p50_ms"] + 1.0)
    assert lagged.endswith(f"; the event loop ran late (lag p99 {s['late_p50_ms'] + 1.0:.1f} ms): use more processes "
                           "(--processes) or lower --trace-speedup") and "add users" not in lagged, lagged
    assert stats.warning(lag_p99_ms=0.2).endswith("; add users or lower --arrival-rate")  # a small lag explains nothing
    # latency from the schedule includes the wait; service time does not
    last = slots[-1]
    assert last.latency_ms(last.sent + service_s) > 500
    assert last.service_ms(last.sent + service_s) == pytest.approx(service_s * 1000)


@pytest.mark.parametrize("claimed_after_ms, late", [(0.0, False), (0.5, True), (5.0, True), (9.9, True), (250.0, True)])
def test_a_send_after_its_scheduled_time_is_late_by_exactly_that_much(claimed_after_ms, late):
    # any send claimed after its slot's time is late (no user was free), however little: counted, with how late
    now = [0.0]
    dispatcher = Dispatcher(100.0, "constant", start=0.0, clock=lambda: now[0], sleep=None)
    now[0] = claimed_after_ms / 1000.0
    slot = dispatcher.take()
    assert slot.late is late and dispatcher.stats.late == int(late)
    assert slot.send_error_ms == pytest.approx(claimed_after_ms)
    summary = dispatcher.stats.summary()
    if late:
        assert summary["late_max_ms"] == pytest.approx(claimed_after_ms, rel=1e-3)
    else:
        assert summary["late_max_ms"] is None


def test_dispatch_stats_merge_across_processes():
    a, b = Dispatcher(100.0, "constant", start=0.0, clock=lambda: 10.0, sleep=None), DispatchStats(50.0)
    for _ in range(3):
        a.take()  # all overdue at t = 10 s: late
    merged = DispatchStats.from_message(a.stats.to_message())
    merged.merge(DispatchStats.from_message(b.to_message()))
    assert (merged.target_rps, merged.sent, merged.late) == (150.0, 3, 3)
    assert merged.summary()["late_max_ms"] == pytest.approx(10000.0, rel=1e-3)
    assert DispatchStats().summary()["late_p99_ms"] is None  # empty set: no figure, not 0


def test_slots_due_and_never_sent_are_counted_at_the_stop_and_at_a_rate_change():
    now = [0.0]
    dispatcher = Dispatcher(10.0, "constant", start=0.0, clock=lambda: now[0], sleep=lambda s: None)
    now[0] = 0.35  # slots at 0.0, 0.1, 0.2, 0.3 are due; users take two of them, late
    assert [dispatcher.take().index for _ in range(2)] == [0, 1]
    # the run stops at 0.55: slots 0.2 .. 0.5 fell due and no user took them; 0.6 is not due
    assert dispatcher.end(0.55) == 4
    assert dispatcher.end(0.55) == 0  # counted once
    # a rate change counts the due slots the new schedule replaces
    dispatcher = Dispatcher(10.0, "constant", start=0.0, clock=lambda: now[0], sleep=lambda s: None)
    now[0] = 0.0
    assert not dispatcher.take().late  # on time
    now[0] = 0.25
    dispatcher.set_rate(20.0)
    assert dispatcher.stats.unsent == 2  # 0.1 and 0.2
    merged = DispatchStats()
    merged.merge(DispatchStats.from_message(dispatcher.stats.to_message()))
    assert merged.unsent == 2 and merged.summary()["unsent"] == 2
    warning = merged.warning()  # no late send to speak of, but due requests were never sent
    assert warning.startswith("open-loop schedule not kept: no request of 1 sent late; 2 more fell due and were "
                              "never sent"), warning
    merged.unsent = 1  # one: "was" (the message was seen saying "1 more fell due and were never sent ... sent them")
    assert "; 1 more fell due and was never sent (no user sent it before" in merged.warning(), merged.warning()
