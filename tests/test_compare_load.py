"""What load a JSON summary says it ran, and which runs a comparison refuses (issue 32; a new user's findings):
a trace run or an open loop against a closed-loop baseline, another arrival kind, rate or trace, a batch-size
or data mix against a plain batch size, several models against one, another share. Also summaries of format
version 2 (read where they can tell), the notices' wording and python -m tfs_user.compare's output folders.

Summaries are hand-made as in test_compare.py; the real run (a trace run against a closed-loop baseline,
refused before any request) is in test_compare_runs.py.
"""

import gzip
import json
from argparse import Namespace

import pytest

from test_compare import MODEL, NOISY, RUN, _cli, document, stats_of
from tfs_user.capacity.traces import read_trace
from tfs_user.results import compare, summary_keys
from tfs_user.settings import Settings

TRACE = {"file": "a.trace", "requests": 200, "sha256": "1a2b3c4d5e6f" + "0" * 52}
OPEN = {"arrival": "poisson", "arrival_rate": 100.0}
REPLAY = {"arrival": "trace", "trace": TRACE, "trace_speedup": 1.0, "trace_loop": False}
TWO = {"models": [dict(MODEL, share=0.5), dict(MODEL, model="big", share=0.5)], "user_classes": 2}


def _refusal(base_run, new_run):
    """The one line comparing a summary of ``new_run`` (``run`` keys over RUN's) with one of ``base_run`` gives."""
    with pytest.raises(compare.CompareError) as e:
        compare.compare(document(stats_of(NOISY), **base_run), document(stats_of(NOISY), **new_run))
    assert "\n" not in str(e.value)
    return str(e.value)


@pytest.mark.parametrize("base, new, words", [
    ({}, REPLAY, "arrival is 'trace' in this run but 'closed loop' in the baseline;"),  # the new user's case
    ({}, OPEN, "arrival is 'poisson' in this run but 'closed loop' in the baseline;"),
    (OPEN, dict(OPEN, arrival="gamma:2"), "arrival is 'gamma:2' in this run but 'poisson' in the baseline;"),
    (OPEN, dict(OPEN, arrival="constant"), "arrival is 'constant' in this run but 'poisson' in the baseline;"),
    (OPEN, dict(OPEN, arrival_rate=200.0), "arrival_rate is 200.0 in this run but 100.0 in the baseline;"),
    (OPEN, REPLAY, "arrival is 'trace' in this run but 'poisson' in the baseline;"),
    (REPLAY, dict(REPLAY, trace=dict(TRACE, file="b.trace", sha256="9" * 64)),
     "trace is 'b.trace' (200 requests, sha256 999999999999) in this run but 'a.trace' (200 requests, sha256 "
     "1a2b3c4d5e6f) in the baseline;"),
    (REPLAY, dict(REPLAY, trace=dict(TRACE, requests=180)), "trace is 'a.trace' (180 requests,"),
    (REPLAY, dict(REPLAY, trace_speedup=2.0), "trace_speedup is 2.0 in this run but 1.0 in the baseline;"),
    (REPLAY, dict(REPLAY, trace_loop=True), "trace_loop is True in this run but False in the baseline;"),
    ({}, {"models": [dict(MODEL, batch_size="1:1,8:1", mix_seed=0)]},
     "batch_size is '1:1,8:1' in this run but '1' in the baseline;"),  # the new user's second case
    ({}, {"models": [dict(MODEL, data_mix="a.npy:1,b.npy:1", mix_seed=0)]},
     "data_mix is 'a.npy:1,b.npy:1' in this run but '' in the baseline;"),
    ({}, {"models": [dict(MODEL, model="other")]}, "model is 'other' in this run but 'm' in the baseline;"),
    ({}, TWO, "models is 'big; m' in this run but 'm' in the baseline;"),  # --models "m; big" against m alone
    (TWO, {"models": [dict(MODEL, share=0.75), dict(MODEL, model="big", share=0.25)]},
     "share of model big is 0.25 in this run but 0.5 in the baseline;"),
    (TWO, {"models": [dict(MODEL, share=0.5), dict(MODEL, model="big", batch_size="8", share=0.5)]},
     "batch_size of model big is '8' in this run but '1' in the baseline;"),
    ({}, {"sweep": "rate:50,100", "step_time": "5s", "arrival": "poisson"}, "arrival is 'poisson' in this run"),
])
def test_another_load_is_refused_with_one_line_naming_the_key_and_both_values(base, new, words):
    line = _refusal(base, new)
    assert line.startswith(f"cannot compare: {words}"), line
    assert line.endswith("(compare runs of the same test)")


@pytest.mark.parametrize("run", [REPLAY, OPEN, dict(OPEN, arrival="gamma:2"), TWO,
                                 {"models": [dict(MODEL, batch_size="1:2,8:1", mix_seed=0)]}])
def test_the_same_load_is_compared(run):
    comparison = compare.compare(document(stats_of(NOISY), **run), document(stats_of(NOISY[::-1]), **run))
    assert {row.verdict for row in comparison.rows} == {compare.SAME} and not comparison.notices


def test_the_same_trace_under_another_name_is_compared_and_another_mix_seed_is_a_notice():
    renamed = dict(REPLAY, trace=dict(TRACE, file="copy.trace.gz"))
    assert not compare.compare(document(stats_of(NOISY), **REPLAY), document(stats_of(NOISY), **renamed)).notices
    mixed = {"models": [dict(MODEL, batch_size="1:2,8:1", mix_seed=0)], "mix_seed": 0}
    reseeded = {"models": [dict(MODEL, batch_size="1:2,8:1", mix_seed=7)], "mix_seed": 7}
    comparison = compare.compare(document(stats_of(NOISY), **mixed), document(stats_of(NOISY), **reseeded))
    assert comparison.notices == ["Notice: mix_seed differs: 7 here, 0 in the baseline"]


def test_run_facts_name_each_model_with_its_mix_and_share_and_the_arrival():
    options = Namespace(num_users=4, arrival_rate=0.0, arrival="gamma:2", sweep="", arrival_trace="")
    a = Settings(batch_size=8, batch_mix=((8, 3.0), (1, 6.0)), mix_seed=5)
    b = Settings(model_name="big", images_numpy_path="/x/small.npy", data_mix=(("/x/small.npy", 0.5), ("/y/big.npy", 1.5)))
    facts = summary_keys.run_facts([a, b], options, weights=[3.0, 1.0])
    assert facts["models"] == [
        {"model": "resnet", "batch_size": "1:2,8:1", "data_mix": "", "share": 0.75, "mix_seed": 5},
        {"model": "big", "batch_size": "1", "data_mix": "big.npy:3,small.npy:1", "share": 0.25, "mix_seed": 0}]
    assert facts["mix_seed"] == [0, 5] and facts["arrival"] == "closed loop" and facts["trace"] is None
    assert facts["model"] == "resnet" and facts["batch_size"] == 8 and facts["user_classes"] == 2
    one = summary_keys.run_facts([Settings(batch_mix=((1, 6.0), (8, 3.0)))], options)  # order and scale: one mix
    assert one["models"][0]["batch_size"] == "1:2,8:1" and one["models"][0]["share"] == 1.0
    assert summary_keys.run_facts([Settings()], options)["models"][0]["batch_size"] == "1"
    for changes, arrival in (({"arrival_rate": 50.0}, "gamma:2"), ({"sweep": "rate:10,20"}, "gamma:2"),
                             ({"sweep": "users:1,2"}, "closed loop"), ({"arrival_trace": "t.txt"}, "trace")):
        assert summary_keys.arrival_of(Namespace(**{**vars(options), **changes})) == arrival, changes


def test_a_trace_is_known_by_its_requests_not_its_file(tmp_path):
    plain, commented, zipped, other = (tmp_path / n for n in ("a.trace", "b.trace", "c.trace.gz", "d.trace"))
    plain.write_text("0\n0.5\n1.25\n")
    commented.write_text("# recorded at noon\n0\n\n0.5\n1.25\n")
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    other.write_text("0\n0.5\n1.5\n")
    facts = [summary_keys.trace_facts(read_trace(str(p)), str(p)) for p in (plain, commented, zipped, other)]
    assert facts[0] == {"file": "a.trace", "requests": 3, "sha256": facts[0]["sha256"]}
    assert facts[0]["sha256"] == facts[1]["sha256"] == facts[2]["sha256"] != facts[3]["sha256"]
    options = Namespace(num_users=1, arrival_rate=0.0, arrival="poisson", sweep="", arrival_trace=str(zipped),
                        trace_speedup=2.0, trace_loop=True)
    run = summary_keys.run_facts([Settings()], options)  # reads the trace itself when not given it
    assert (run["arrival"], run["trace"], run["trace_speedup"], run["trace_loop"]) == ("trace", facts[2], 2.0, True)


def _version_2(doc, **changes):
    """``doc`` as a format-2 summary held it: ``run`` without the load's new keys."""
    doc["format"]["version"] = 2
    for key in ("models", "mix_seed", "arrival", "trace", "trace_speedup", "trace_loop"):
        del doc["run"][key]
    doc.update(changes)
    return doc


def test_a_version_2_summary_is_read_where_it_can_tell_and_refused_where_it_cannot():
    old = _version_2(document(stats_of(NOISY)))
    assert compare.compare(old, document(stats_of(NOISY[::-1]))).rows  # a closed loop: compared as before
    assert compare.compare(document(stats_of(NOISY)), old).rows  # either side
    with pytest.raises(compare.CompareError) as e:  # the new user's case with a version-2 baseline
        compare.compare(old, document(stats_of(NOISY), **OPEN))
    assert str(e.value).startswith("cannot compare: arrival is 'poisson' in this run but 'closed loop' in the baseline")
    rate = _version_2(document(stats_of(NOISY), **OPEN), open_loop={"arrival": "poisson"})
    assert compare.compare(rate, document(stats_of(NOISY), **OPEN)).rows
    mix_row = dict(document(stats_of(NOISY))["rows"][0], name="Predict m [batch 8]", part_of="Predict m")
    for changes, words in (({"open_loop": {"arrival": "trace"}}, "of a trace run (which trace"),
                           ({"rows": [mix_row, *old["rows"]]}, "of a batch-size or data mix"),
                           ({"run": dict(old["run"], user_classes=2)}, "of several user classes")):
        doc = dict(old, **changes)
        with pytest.raises(compare.CompareError) as e:
            compare.compare(doc, document(stats_of(NOISY)))
        assert f"is a summary of format version 2 {words}" in str(e.value), str(e.value)
        assert str(e.value).endswith("expected version 3: run the baseline again with this version")
    for version in (1, 4):
        doc = document(stats_of(NOISY))
        doc["format"]["version"] = version
        with pytest.raises(compare.CompareError) as e:
            compare.compare(doc, document(stats_of(NOISY)))
        assert f"has summary format version {version}; expected 3 (or 2)" in str(e.value)


def test_a_notice_about_one_lagging_baseline_run_gives_its_lag_once():
    bases = [document(stats_of([f * v for v in NOISY])) for f in (1.0, 1.01, 0.99)]
    bases[1].update(loop_lag_warning=True, loop_lag_p99_ms=4.6871)
    notices = compare.compare(bases, document(stats_of(NOISY[::-1]))).notices
    assert notices == ["Notice: in 1 of the 3 baseline runs the load generator was a bottleneck (event-loop lag p99 "
                       "4.687 ms): its latencies include that wait, so does the change"]
    bases[2].update(loop_lag_warning=True, loop_lag_p99_ms=4.6869)  # the same as printed
    assert compare.compare(bases, document(stats_of(NOISY[::-1]))).notices == [
        "Notice: in 2 of the 3 baseline runs the load generator was a bottleneck (event-loop lag p99 4.687 ms): "
        "their latencies include that wait, so does the change"]


@pytest.mark.parametrize("option", ["--json", "--csv", "--plot"])
def test_the_command_refuses_an_output_folder_that_does_not_exist_and_writes_nothing(tmp_path, option):
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(document(stats_of(NOISY))))
    new.write_text(json.dumps(document(stats_of(NOISY[::-1]))))
    others = [arg for other in ("--json", "--csv", "--plot") if other != option
              for arg in (other, tmp_path / f"ok{other[2:]}.out")]
    done = _cli(base, new, option, tmp_path / "missing" / "out.x", *others)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"error: {option} '{tmp_path}/missing/out.x': folder '{tmp_path}/missing' does not exist; "
                           "expected an existing folder (create it first)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.json", "new.json"]  # no folder, no other output
