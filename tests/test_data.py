"""Input data: load_array checks, the batching rule, request bodies (real .npy files in tmp_path)."""

import math

import numpy as np
import pytest

from tfs_user.data.files import Batches, DataError, load_array, synthetic_array
from tfs_user.protocols.tfs.request_bodies import RequestFactory
from tfs_user.protocols.tfs.messages import predict_pb2, types_pb2
from tfs_user.protocols.tfs.tensors import tensor_proto_to_ndarray


def save(tmp_path, name, array, **kwargs):
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return str(path)


def parse(body):
    return predict_pb2.PredictRequest.FromString(body)


def rows_of(batches, k):
    """The row numbers batch k holds, read back from an array whose row i is filled with i."""
    return [int(r) for r in batches.batch(k)[:, 0]]


def row_ids(n, width=2):
    return np.repeat(np.arange(n), width).reshape(n, width)


# --- the batching rule ------------------------------------------------------------


def test_batches_wrap_n10_b4():
    batches = Batches(row_ids(10), 4)
    assert [rows_of(batches, k) for k in range(5)] == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5], [6, 7, 8, 9]]
    assert batches.period == 5 and batches.one_pass == 3


def test_batch_larger_than_file_repeats_rows():
    batches = Batches(row_ids(3), 4)
    assert rows_of(batches, 0) == [0, 1, 2, 0]
    assert rows_of(batches, 1) == [1, 2, 0, 1]
    assert batches.period == 3 and batches.one_pass == 1


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 12])
@pytest.mark.parametrize("b", [1, 2, 3, 4, 5, 6, 13])
def test_batches_match_rule_period_and_one_pass(n, b):
    array = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    batches = Batches(array, b)
    assert batches.period == n // math.gcd(n, b)
    assert batches.one_pass == math.ceil(n / b)
    for k in range(2 * batches.period + 1):
        expected = array[[(k * b + j) % n for j in range(b)]]
        got = batches.batch(k)
        assert got.shape == (b, 2, 3) and got.dtype == array.dtype
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(got, batches.batch(k + batches.period))
    distinct = {batches.batch(k).tobytes() for k in range(batches.period)}
    assert len(distinct) == batches.period  # distinct starts, distinct first rows
    sent = {int(r) for k in range(batches.one_pass) for r in batches.batch(k)[:, 0, 0] // 6}
    assert sent == set(range(n))  # one pass sends every row at least once


@pytest.mark.parametrize("size", [0, -1])
def test_batches_rejects_size_below_one(size):
    with pytest.raises(DataError, match=str(size)):
        Batches(row_ids(4), size)


# --- load_array: what must fail ---------------------------------------------------


def _bad_files(tmp_path):
    (tmp_path / "folder.npy").mkdir()
    (tmp_path / "notes.txt").write_text("1 2 3\n4 5 6\n")
    np.savez(tmp_path / "archive.npz", a=np.zeros((2, 2)))
    return {
        "missing": str(tmp_path / "missing.npy"),
        "directory": str(tmp_path / "folder.npy"),
        "text": str(tmp_path / "notes.txt"),
        "npz": str(tmp_path / "archive.npz"),
        "object": save(tmp_path, "object.npy", np.array([[1, "a"], [None, 2.0]], dtype=object), allow_pickle=True),
        "0-d": save(tmp_path, "scalar.npy", np.array(3.0, dtype=np.float32)),
        "empty": save(tmp_path, "empty.npy", np.zeros((0, 3), dtype=np.float32)),
        "structured": save(tmp_path, "struct.npy", np.zeros((2, 2), dtype=[("a", "<f4"), ("b", "<i4")])),
        "complex": save(tmp_path, "complex.npy", np.zeros((2, 2), dtype=np.complex64)),
        "truncated": _truncated(tmp_path),
    }


def _truncated(tmp_path):
    full = save(tmp_path, "full.npy", np.zeros((100, 10), dtype=np.float32))
    path = tmp_path / "truncated.npy"
    path.write_bytes(open(full, "rb").read()[:-100])
    return str(path)


BAD_KINDS = ["missing", "directory", "text", "npz", "object", "0-d", "empty", "structured", "complex", "truncated"]
EXPECTED_WORDS = {
    "missing": "does not exist", "directory": "directory", "text": "not a .npy", "npz": ".npz",
    "object": "holds a pickled object array", "0-d": "[]", "empty": "[0, 3]", "structured": "structured",
    "complex": "complex64", "truncated": "not a valid .npy",
}


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_load_array_rejects_with_one_line_naming_path(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(DataError) as info:
        load_array(path)
    message = str(info.value)
    assert path in message
    assert "\n" not in message
    assert EXPECTED_WORDS[kind] in message


def test_load_array_corrupt_header_is_not_called_pickled(tmp_path):
    path = tmp_path / "corrupt.npy"
    header = b"{garbage}".ljust(117) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 16)
    with pytest.raises(DataError) as info:
        load_array(str(path))
    assert "not a valid .npy file" in str(info.value)
    assert "pickled" not in str(info.value)


# --- load_array: what must work ---------------------------------------------------


@pytest.mark.parametrize("array", [
    np.arange(24, dtype=np.uint8).reshape(4, 6),
    np.linspace(-1, 1, 24, dtype=np.float64).reshape(2, 3, 4),
    np.arange(2 * 3 * 1 * 2 * 2, dtype=np.int16).reshape(2, 3, 1, 2, 2),
    np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
    np.arange(6, dtype=">f4").reshape(2, 3),
    np.array([[True, False]]),
], ids=["uint8-rank2", "float64-rank3", "int16-rank5", "fortran", "big-endian", "bool-one-row"])
def test_load_array_returns_memmap_with_values(tmp_path, array):
    path = save(tmp_path, "ok.npy", array)
    loaded = load_array(path)
    assert isinstance(loaded, np.memmap)
    assert loaded.shape == array.shape and loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)
    assert not loaded.flags.writeable  # opened read-only


@pytest.mark.parametrize("array", [
    np.arange(5 * 2 * 3, dtype=">f4").reshape(5, 2, 3) / 7,
    np.asfortranarray(np.arange(5 * 4, dtype=np.float64).reshape(5, 4) * 1.5),
    np.arange(5 * 3, dtype=np.uint8).reshape(5, 3) * 17,
    np.arange(5 * 2 * 2 * 2 * 2, dtype=">i8").reshape(5, 2, 2, 2, 2) - 40,
], ids=["big-endian-f4", "fortran-f8", "uint8", "big-endian-i8-rank5"])
def test_request_round_trip_from_file(tmp_path, array):
    loaded = load_array(save(tmp_path, "in.npy", array))
    factory = RequestFactory(Batches(loaded, 3), "m", "images")
    for k in range(4):
        tensor = parse(factory.request(k)).inputs["images"]
        assert list(d.size for d in tensor.tensor_shape.dim) == [3, *array.shape[1:]]
        got = tensor_proto_to_ndarray(tensor)
        np.testing.assert_array_equal(got, array[[(k * 3 + j) % 5 for j in range(3)]])
        assert got.dtype == array.dtype.newbyteorder("=")


# --- RequestFactory ---------------------------------------------------------------


def test_request_model_spec_with_version():
    factory = RequestFactory(Batches(row_ids(4).astype(np.float32), 2), "resnet", "in", signature_name="serve", model_version=7)
    request = parse(factory.request(0))
    assert request.model_spec.name == "resnet"
    assert request.model_spec.signature_name == "serve"
    assert request.model_spec.HasField("version") and request.model_spec.version.value == 7
    assert request.model_spec.WhichOneof("version_choice") == "version"
    assert list(request.inputs) == ["in"]
    assert request.inputs["in"].dtype == types_pb2.DT_FLOAT


def test_request_model_spec_with_label_and_no_version():
    factory = RequestFactory(Batches(row_ids(4).astype(np.uint8), 2), "det", "x", version_label="stable")
    spec = parse(factory.request(1)).model_spec
    assert spec.name == "det" and spec.version_label == "stable" and spec.signature_name == ""
    assert not spec.HasField("version")
    assert parse(factory.request(1)).inputs["x"].dtype == types_pb2.DT_UINT8


def test_request_model_spec_latest_has_no_version_choice():
    spec = parse(RequestFactory(Batches(row_ids(2), 1), "m", "x").request(0)).model_spec
    assert spec.WhichOneof("version_choice") is None


def test_cached_factory_returns_same_bodies():
    array = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    factory = RequestFactory(Batches(array, 4), "m", "x")
    assert factory.cached
    first = [factory.request(k) for k in range(5)]
    for k in range(5):
        assert factory.request(k) is first[k]
        assert factory.request(k + 5) is first[k]  # period 5
        np.testing.assert_array_equal(tensor_proto_to_ndarray(parse(first[k]).inputs["x"]),
                                      array[[(4 * k + j) % 10 for j in range(4)]])
    assert len({bytes(b) for b in first}) == 5


def test_uncached_factory_still_builds_right_bodies():
    array = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    probe = RequestFactory(Batches(array, 4), "m", "x")
    budget = probe.request_bytes * 5 - 1  # one byte short of period x size
    factory = RequestFactory(Batches(array, 4), "m", "x", cache_bytes=budget)
    assert not factory.cached
    for k in range(12):
        body = factory.request(k)
        assert body == probe.request(k)
        np.testing.assert_array_equal(tensor_proto_to_ndarray(parse(body).inputs["x"]),
                                      array[[(4 * k + j) % 10 for j in range(4)]])
    assert RequestFactory(Batches(array, 4), "m", "x", cache_bytes=budget + 1).cached


def test_synthetic_array_is_seeded_float32_pixels():
    a = synthetic_array((4, 5, 3))
    assert a.shape == (8, 4, 5, 3) and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 255
    np.testing.assert_array_equal(a, synthetic_array((4, 5, 3)))


def test_request_factory_applies_the_transform_to_each_batch(tmp_path):
    array = np.arange(2 * 2 * 3 * 4, dtype=np.float64).reshape(2, 2, 3, 4)
    factory = RequestFactory(Batches(array, 1), "m", "x", transform=lambda b: np.transpose(b.astype(np.float32), (0, 3, 1, 2)))
    sent = tensor_proto_to_ndarray(parse(factory.request(1)).inputs["x"])
    assert sent.dtype == np.float32 and sent.shape == (1, 4, 2, 3)
    np.testing.assert_array_equal(sent, np.transpose(array[1:2], (0, 3, 1, 2)))


def test_check_data_opens_npz_files_and_skips_on_a_master_without_them(tmp_path):
    from tfs_user.settings import Settings
    from tfs_user.data.fitting import check_data, open_sources

    np.savez(tmp_path / "both.npz", image=np.ones((2, 3), np.float32), scale=np.zeros((2, 1), np.float32))
    settings = Settings(images_numpy_path=str(tmp_path / "both.npz"))
    assert check_data(settings) is True
    assert [name for name, _ in open_sources(settings)] == ["image", "scale"]
    missing = Settings(images_numpy_path=str(tmp_path / "missing.npy"))
    assert check_data(missing, master=True) is False  # the workers read it
    with pytest.raises(DataError, match="missing.npy"):
        check_data(missing)
