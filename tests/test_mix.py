"""Mixed requests (issue 33): weighted batch sizes and data files, drawn from a seed; rows per part;
every count checked against what the demo server received."""

import collections
import json
import math

import numpy as np
import pytest

from tfs_user.data.mix import MixSequence, parse_batch_sizes, parse_weighted_paths
from tfs_user.demo.server import ModelConfig
from tfs_user.option_values import OptionError


@pytest.mark.parametrize("text, pairs", [
    ("8", ((8, 1.0),)), (8, ((8, 1.0),)), ("1:6,8:3,32:1", ((1, 6.0), (8, 3.0), (32, 1.0))),
    (" 1:0.5 , 4 ", ((1, 0.5), (4, 1.0))),
])
def test_batch_sizes_parse(text, pairs):
    assert parse_batch_sizes(text) == pairs


@pytest.mark.parametrize("text, pairs", [
    ("", ()), ("a.npy", (("a.npy", 1.0),)), ("a.npy:3,b.npy", (("a.npy", 3.0), ("b.npy", 1.0))),
    ("dir:x/a.npy:2", (("dir:x/a.npy", 2.0),)),
])
def test_weighted_paths_parse(text, pairs):
    assert parse_weighted_paths(text) == pairs


@pytest.mark.parametrize("parse, text, quoted", [
    (parse_batch_sizes, "1:0", "'0'"), (parse_batch_sizes, "1:-2", "'-2'"), (parse_batch_sizes, "1:x", "'x'"),
    (parse_batch_sizes, "1:inf", "'inf'"), (parse_batch_sizes, "1:nan", "'nan'"), (parse_batch_sizes, "0:1", "size '0' in '0:1' is out of range"),
    (parse_batch_sizes, "1:1,1:2", "'1:1,1:2'"), (parse_batch_sizes, ",", "','"),
    (parse_weighted_paths, "a.npy:0", "'0'"), (parse_weighted_paths, "a.npy:-1", "'-1'"),
    (parse_weighted_paths, "a.npy,a.npy:2", "'a.npy,a.npy:2'"),
    # an empty entry (a value lost, e.g. an unset shell variable) is refused wherever it is, never skipped
    (parse_batch_sizes, "1:6,,8:3", "'1:6,,8:3' has an empty entry (entry 2 of 3); expected entries separated by single "
                                    "commas, e.g. 1:6,8:3,32:1"),
    (parse_batch_sizes, "1:6,8:3,", "'1:6,8:3,' has an empty entry (entry 3 of 3)"),
    (parse_batch_sizes, ",8", "',8' has an empty entry (entry 1 of 2)"),
    (parse_batch_sizes, "1:6, ,8:3", "'1:6, ,8:3' has an empty entry (entry 2 of 3)"),
    (parse_batch_sizes, ":3", "size '' in ':3' is not an integer"), (parse_batch_sizes, "1:", "weight '' in '1:'"),
    (parse_weighted_paths, "a.npy:3,,b.npy:1", "'a.npy:3,,b.npy:1' has an empty entry (entry 2 of 3); expected entries "
                                               "separated by single commas, e.g. small.npy:1,big.npy:1"),
    (parse_weighted_paths, "a.npy:3,b.npy:1,", "'a.npy:3,b.npy:1,' has an empty entry (entry 3 of 3)"),
    (parse_weighted_paths, "a.npy:nan", "'nan'"), (parse_weighted_paths, "a.npy:inf", "'inf'"),
])
def test_bad_mix_text_is_one_line_naming_it(parse, text, quoted):
    with pytest.raises(OptionError) as info:
        parse(text)
    assert quoted in str(info.value) and "\n" not in str(info.value)


def test_weights_within_the_binomial_spread_and_exact_for_a_seed():
    weights, n = (6, 3, 1), 10_000
    counts = collections.Counter(MixSequence(weights, seed=7, stream=(0, 1)).take(n))
    for index, weight in enumerate(weights):
        p = weight / sum(weights)
        # 4 standard deviations of a binomial share (a false alarm once in ~16 000 seeds); well inside 2 %
        tolerance = 4 * math.sqrt(p * (1 - p) / n)
        assert tolerance < 0.02 and abs(counts[index] / n - p) < tolerance, (index, counts)
    # a fixed seed and stream give the same sequence; another user's stream another one
    assert MixSequence(weights, 7, (0, 1)).take(n) == MixSequence(weights, 7, (0, 1)).take(n)
    assert MixSequence(weights, 7, (0, 2)).take(50) != MixSequence(weights, 7, (0, 1)).take(50)
    assert dict(counts) == {0: 6118, 1: 2936, 2: 946}  # this seed's exact counts (numpy's PCG64: stable)
    assert MixSequence((1,), 7).take(3) == [0, 0, 0]


def _expected(weights, users, per_user, seed=0, worker=0):
    counts = collections.Counter()
    for user in range(1, users + 1):
        counts.update(MixSequence(weights, seed, (worker, user)).take(per_user))
    return counts


def _rows(run):
    return {row["name"]: row for row in json.loads((run.folder / "s.json").read_text())["rows"]}


def test_batch_sizes_mixed_rows_match_the_seeded_sequence_and_the_server(demo_server, small_model, small_images,
                                                                          run_locust):
    server = demo_server(models=[small_model])
    run = run_locust("--host", server.address, "-u", "2", "-r", "2", "--iterations", "300", "--warmup-iterations", "0",
                     "--batch-size", "1:6,8:3,32:1", "--mix-seed", "5", "--model-name", "small",
                     "--images-numpy-path", small_images, "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    expected = _expected((6, 3, 1), users=2, per_user=300, seed=5)
    rows = _rows(run)
    sizes = (1, 8, 32)
    for index, size in enumerate(sizes):
        row = rows[f"Predict small [batch {size}]"]
        assert (row["requests"], row["frames"], row["part_of"]) == (expected[index], expected[index] * size, "Predict small")
        assert row["fps"] == pytest.approx(row["rps"] * size, rel=1e-9)  # each request's own frames
    model = rows["Predict small"]
    frames = sum(expected[i] * size for i, size in enumerate(sizes))
    assert (model["requests"], model["frames"]) == (600, frames)
    assert (rows["Aggregated"]["requests"], rows["Aggregated"]["frames"]) == (600, frames)  # parts not counted twice
    counts = server.counts()
    assert counts["batches"] == {size: expected[i] for i, size in enumerate(sizes)}
    assert counts["frames"] == frames
    csv_rows = run.tfs_csv()
    assert int(csv_rows["Predict small [batch 32]"]["Frames"]) == expected[2] * 32
    assert "Predict small [batch 8]" in run.output


def test_data_files_mixed_each_fitted_on_its_own(demo_server, run_locust, tmp_path):
    # a model with dynamic height and width: two image sizes, each file fitted to the signature on its own
    server = demo_server(models=[ModelConfig(name="dyn", shape=(-1, -1, -1, 3), output_size=4)], record=True)
    rng = np.random.default_rng(3)
    np.save(tmp_path / "small.npy", rng.uniform(0, 1, (5, 4, 4, 3)).astype(np.float32))
    np.save(tmp_path / "big.npy", rng.uniform(0, 1, (5, 12, 12, 3)).astype(np.float64))  # cast on its own
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "200", "--warmup-iterations", "0",
                     "--batch-size", "1:1,2:1", "--images-numpy-path", "small.npy:3,big.npy:1", "--model-name", "dyn",
                     "--json-summary", "s.json")
    assert run.returncode == 0, run.output
    # variants: (small, 1) 3, (small, 2) 3, (big, 1) 1, (big, 2) 1
    expected = _expected((3, 3, 1, 1), users=1, per_user=200)
    rows = _rows(run)
    assert rows["Predict dyn [data small.npy]"]["requests"] == expected[0] + expected[1]
    assert rows["Predict dyn [data big.npy]"]["requests"] == expected[2] + expected[3]
    assert rows["Predict dyn [batch 2]"]["frames"] == 2 * (expected[1] + expected[3])
    seen = collections.Counter((r.inputs["input"].shape, str(r.inputs["input"].dtype)) for r in server.received())
    assert seen == {((1, 4, 4, 3), "float32"): expected[0], ((2, 4, 4, 3), "float32"): expected[1],
                    ((1, 12, 12, 3), "float32"): expected[2], ((2, 12, 12, 3), "float32"): expected[3]}


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "1:6,8:0"], "--batch-size/--batchsize/--batch_size: weight '0' in '8:0' is not a positive number"),
    (["--images-numpy-path", "IMGS:1,missing.npy:1"], "numpy file 'missing.npy' does not exist"),
    (["--batch-size", "1:1,4:1", "--model-name", "fixed"], "has a fixed batch dimension 1 but --batch-size is 4"),
])
def test_bad_mix_exits_2_with_one_line_before_any_user_starts(demo_server, small_images, run_locust, args, message):
    server = demo_server(models=[ModelConfig(name="small", shape=(-1, 8, 8, 3), output_size=10),
                                 ModelConfig(name="fixed", shape=(1, 8, 8, 3), output_size=10)])
    args = [a.replace("IMGS", small_images) for a in args]
    if "--model-name" not in args:
        args += ["--model-name", "small"]
    if "--images-numpy-path" not in args:
        args += ["--images-numpy-path", small_images]
    run = run_locust("--host", server.address, "-u", "1", "-r", "1", "--iterations", "3", *args)
    assert run.returncode == 2, run.output
    errors = [line for line in run.output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and message in errors[0], run.output
    assert "Traceback" not in run.output
    assert server.counts()["requests"] == 0  # no user started
