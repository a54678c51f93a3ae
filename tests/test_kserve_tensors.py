"""Open Inference Protocol tensors and request bodies: every datatype round-trips through raw bytes exactly."""

import numpy as np
import pytest

from tfs_user.data.files import Batches
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import pb2
from tfs_user.protocols.kserve.outcomes import check_response, read_outputs
from tfs_user.protocols.kserve.request_bodies import RequestFactory

NUMERIC = [d for d in tensors.DATATYPES if d not in ("BYTES", "BF16")]


@pytest.mark.parametrize("datatype", NUMERIC)
def test_every_numeric_datatype_round_trips_raw_little_endian_row_major(datatype):
    dtype = tensors.numpy_dtype(datatype)
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    raw = tensors.to_raw(array.astype(dtype.newbyteorder(">")))  # a big-endian array is sent little-endian
    assert raw == np.ascontiguousarray(array, dtype.newbyteorder("<")).tobytes()
    assert len(raw) == array.size * dtype.itemsize
    back = tensors.from_raw(raw, datatype, (2, 3, 4))
    assert back.dtype == dtype and np.array_equal(back, array)
    assert tensors.datatype_of(dtype) == datatype
    fortran = np.asfortranarray(array)  # row-major on the wire whatever the array's memory order
    assert tensors.to_raw(fortran) == raw


def test_bf16_is_float32_rounded_to_nearest_even_in_two_bytes():
    values = np.array([1.0, -2.5, 3.0e38, 1.00390625, 1.01171875], np.float32)  # the last two are halfway cases
    raw = tensors.to_raw(values, "BF16")
    assert len(raw) == 2 * values.size
    assert list(np.frombuffer(raw, "<u2")) == [0x3F80, 0xC020, 0x7F62, 0x3F80, 0x3F82]
    back = tensors.from_raw(raw, "BF16", (5,))
    assert back.dtype == np.float32
    assert np.allclose(back, values, rtol=2 ** -8)


def test_bytes_elements_are_length_prefixed():
    items = [b"\x89PNG", b"", b"abc"]
    raw = tensors.to_raw(items)
    assert raw == b"\x04\x00\x00\x00\x89PNG" + b"\x00\x00\x00\x00" + b"\x03\x00\x00\x00abc"
    assert tensors.from_raw(raw, "BYTES", (3,)) == items
    with pytest.raises(ValueError, match="hold 3 elements; expected 2"):
        tensors.from_raw(raw, "BYTES", (2,))


def test_wrong_sizes_and_types_say_what_was_expected():
    with pytest.raises(ValueError, match="expected 24 for shape"):
        tensors.from_raw(b"\x00" * 20, "FP32", (2, 3))
    with pytest.raises(ValueError, match="no typed contents"):
        tensors.from_contents(pb2.InferTensorContents(), "FP16", (1,))
    with pytest.raises(ValueError, match="has no Open Inference Protocol datatype"):
        tensors.datatype_of(np.dtype("<U3"))
    contents = pb2.InferTensorContents(int_contents=[1, 2, 3])
    assert tensors.from_contents(contents, "INT16", (3, 1)).tolist() == [[1], [2], [3]]


def test_request_bodies_carry_each_input_raw_in_order_with_requested_outputs():
    a = np.arange(12, dtype=np.float32).reshape(6, 2)
    b = np.arange(6, dtype=np.int64).reshape(6, 1) * 10
    factory = RequestFactory([("a", Batches(a, 2), None), ("b", Batches(b, 2), None)], "m", model_version=3,
                             output_names=("scores",), datatypes={"a": "BF16"})
    request = pb2.ModelInferRequest.FromString(factory.request(1))
    assert (request.model_name, request.model_version) == ("m", "3")
    assert [(t.name, t.datatype, list(t.shape)) for t in request.inputs] == [("a", "BF16", [2, 2]), ("b", "INT64", [2, 1])]
    assert not request.inputs[0].HasField("contents")
    assert request.raw_input_contents[0] == tensors.to_raw(a[2:4], "BF16")
    assert request.raw_input_contents[1] == b[2:4].astype("<i8").tobytes()
    assert [o.name for o in request.outputs] == ["scores"]
    assert factory.request(4) == factory.request(1)  # 6 rows, batch 2: period 3
    assert pb2.ModelInferRequest.FromString(factory.request(0)).model_version == "3"
    latest = RequestFactory([("a", Batches(a, 2), None)], "m")
    assert pb2.ModelInferRequest.FromString(latest.request(0)).model_version == ""


def _response(batch, raw=True, rows=None):
    response = pb2.ModelInferResponse(model_name="m")
    scores = np.full((rows if rows is not None else batch, 3), 0.5, np.float32)
    tensor = response.outputs.add(name="prob", datatype="FP32", shape=scores.shape)
    if raw:
        response.raw_output_contents.append(scores.tobytes())
    else:
        tensor.contents.fp32_contents.extend(scores.ravel())
    return response


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_responses_are_checked_for_outputs_and_batch_in_raw_and_typed_contents(raw):
    assert check_response(_response(4, raw).SerializeToString(), 4) is None
    assert read_outputs(_response(2, raw))["prob"].shape == (2, 3)
    wrong = check_response(_response(4, raw, rows=5).SerializeToString(), 4, "h:1")
    assert "output 'prob' has shape [5, 3]; expected first dimension 4 (the batch size) (endpoint h:1)" in str(wrong)
    short = _response(4, raw)
    if raw:
        short.raw_output_contents[0] = short.raw_output_contents[0][:-4]
    else:
        del short.outputs[0].contents.fp32_contents[-1]
    expected = "FP32 contents of 44 bytes; expected 48" if raw else "FP32 contents hold 11 elements; expected 12"
    assert expected in str(check_response(short.SerializeToString(), 4))
    assert "no output tensors" in str(check_response(pb2.ModelInferResponse().SerializeToString(), 4))
    assert "is not a ModelInferResponse" in str(check_response(b"\xff\xff\xff", 4))
