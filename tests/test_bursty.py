"""Bursty open-loop arrivals (issue 33): ``--arrival gamma:CV``, gamma inter-arrival times with the
asked mean rate and coefficient of variation."""

import re

import numpy as np
import pytest

from tfs_user.capacity.arrival_kinds import ArrivalError, check_arrival


def test_gamma_intervals_have_the_rate_and_the_cv(monkeypatch):
    from tfs_user.capacity.arrivals import Intervals  # imports gevent, not Locust

    n = 200_000
    for cv in (0.5, 1.0, 3.0):
        intervals = Intervals(1000.0, f"gamma:{cv}", np.random.default_rng(11))
        gaps = np.array([intervals.next() for _ in range(n)])
        # mean within 2 standard errors x 3 (cv/sqrt(n) relative), CV within 5 %
        assert gaps.mean() == pytest.approx(1e-3, rel=6 * cv / np.sqrt(n))
        assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)
    poisson = Intervals(1000.0, "poisson", np.random.default_rng(11))
    assert np.std([poisson.next() for _ in range(n)]) * 1000 == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("text", ["gamma", "gamma:", "gamma:0", "gamma:-1", "gamma:x", "gamma:inf", "poisson:2", "bursty"])
def test_bad_arrival_is_one_line(text):
    with pytest.raises(ArrivalError) as info:
        check_arrival(text)
    assert repr(text) in str(info.value) and "gamma:CV" in str(info.value)


def test_gamma_open_loop_runs_and_a_bad_cv_exits_2(demo_server, small_model, run_locust):
    server = demo_server(models=[small_model])
    run = run_locust("--host", server.address, "-u", "8", "-r", "8", "--run-time", "3s", "--arrival-rate", "100",
                     "--arrival", "gamma:3", "--arrival-seed", "4", "--model-name", "small", "--warmup-iterations", "0")
    assert run.returncode == 0, run.output
    sent = int(run.tfs_csv()["Predict small"]["Requests"])
    assert 0 < sent and server.counts()["requests"] >= sent
    bad = run_locust("--host", server.address, "-u", "1", "--run-time", "1s", "--arrival-rate", "10", "--arrival", "gamma:0",
                     "--model-name", "small")
    assert bad.returncode == 2 and re.search(r"--arrival 'gamma:0' is not known", bad.output), bad.output
