"""numpy <-> TensorProto through the dtype table; PredictResponse checks and gRPC failure text."""

import grpc
import numpy as np
import pytest

from tfs_user.protocols.tfs.outcomes import check_response
from tfs_user.transport.failures import BadResponse, RpcFailure
from tfs_user.protocols.tfs.messages import predict_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tfs_user.protocols.tfs.tensors import (DT_NAMES, DT_TO_NUMPY, NUMPY_TO_DT, dtype_to_dt, ndarray_to_tensor_proto,
                              supported_dtypes, tensor_proto_to_ndarray)

TABLE = [
    (np.float32, types_pb2.DT_FLOAT, "float_val"),
    (np.float64, types_pb2.DT_DOUBLE, "double_val"),
    (np.float16, types_pb2.DT_HALF, "half_val"),
    (np.int8, types_pb2.DT_INT8, "int_val"),
    (np.int16, types_pb2.DT_INT16, "int_val"),
    (np.int32, types_pb2.DT_INT32, "int_val"),
    (np.int64, types_pb2.DT_INT64, "int64_val"),
    (np.uint8, types_pb2.DT_UINT8, "int_val"),
    (np.uint16, types_pb2.DT_UINT16, "int_val"),
    (np.uint32, types_pb2.DT_UINT32, "uint32_val"),
    (np.uint64, types_pb2.DT_UINT64, "uint64_val"),
    (np.bool_, types_pb2.DT_BOOL, "bool_val"),
]
IDS = [np.dtype(t).name for t, _, _ in TABLE]


def sample(dtype, shape):
    """Values spanning the dtype's range (extremes included), deterministic."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    if dtype == np.bool_:
        values = np.arange(n) % 3 == 0
    elif dtype.kind == "f":
        info = np.finfo(dtype)
        values = np.linspace(-1000, 1000, n).astype(dtype)
        values.flat[: min(n, 3)] = [info.max, info.min, info.tiny][: min(n, 3)]
    else:
        info = np.iinfo(dtype)
        values = (np.arange(n, dtype=np.int64) * 37 % 251).astype(dtype)
        values.flat[: min(n, 2)] = [info.max, info.min][: min(n, 2)]
    return values.reshape(shape)


def tensor(dt, dims, **fields):
    proto = tensor_pb2.TensorProto(dtype=dt)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims)
    for name, values in fields.items():
        getattr(proto, name).extend(values)
    return proto


def test_table_is_complete_and_consistent():
    assert len(NUMPY_TO_DT) == len(TABLE) == len(DT_TO_NUMPY)
    for numpy_type, dt, _ in TABLE:
        assert NUMPY_TO_DT[np.dtype(numpy_type)] == dt and DT_TO_NUMPY[dt] == np.dtype(numpy_type)
        assert DT_NAMES[dt] == types_pb2.DataType.Name(dt)
    assert supported_dtypes().split(", ") == IDS


@pytest.mark.parametrize("numpy_type, dt, field", TABLE, ids=IDS)
@pytest.mark.parametrize("shape", [(), (1,), (2, 3), (2, 1, 3, 2)], ids=["0-d", "1", "2x3", "rank4"])
def test_round_trip_every_dtype(numpy_type, dt, field, shape):
    array = sample(numpy_type, shape)
    proto = ndarray_to_tensor_proto(array)
    assert proto.dtype == dt
    assert [d.size for d in proto.tensor_shape.dim] == list(shape)
    assert proto.tensor_content == array.astype(np.dtype(numpy_type).newbyteorder("<")).tobytes()
    assert not getattr(proto, field)  # values travel in tensor_content only
    back = tensor_proto_to_ndarray(tensor_pb2.TensorProto.FromString(proto.SerializeToString()))
    assert back.shape == shape and back.dtype == np.dtype(numpy_type)
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("numpy_type", [t for t, _, _ in TABLE if np.dtype(t).itemsize > 1], ids=[n for n in IDS if np.dtype(n).itemsize > 1])
def test_big_endian_and_fortran_sent_little_endian_c_order(numpy_type):
    array = sample(numpy_type, (3, 4))
    for variant in (array.astype(array.dtype.newbyteorder(">")), np.asfortranarray(array), array[:, ::-1].copy()[:, ::-1]):
        proto = ndarray_to_tensor_proto(variant)
        assert proto.tensor_content == np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        np.testing.assert_array_equal(tensor_proto_to_ndarray(proto), array)


def test_non_contiguous_view():
    array = np.arange(60, dtype=np.float32).reshape(3, 4, 5)[:, ::2, 1:4]
    np.testing.assert_array_equal(tensor_proto_to_ndarray(ndarray_to_tensor_proto(array)), array)


def test_empty_array_round_trip():
    array = np.zeros((0, 3), dtype=np.float32)
    proto = ndarray_to_tensor_proto(array)
    assert proto.tensor_content == b""
    assert tensor_proto_to_ndarray(proto).shape == (0, 3)


@pytest.mark.parametrize("dtype", ["complex64", "object", "U3", "datetime64[s]", "float128" if hasattr(np, "float128") else "complex128", [("a", "f4")]])
def test_unsupported_dtypes_raise_naming_dtype(dtype):
    with pytest.raises(ValueError) as info:
        dtype_to_dt(dtype)
    assert "expected one of float32" in str(info.value)
    with pytest.raises(ValueError):
        ndarray_to_tensor_proto(np.zeros(2, dtype=dtype))


@pytest.mark.parametrize("dtype", [">f4", "<f4", "=i8", ">u2", np.longlong, np.intc, "|u1", "?"])
def test_dtype_to_dt_ignores_byte_order_and_aliases(dtype):
    assert dtype_to_dt(dtype) == NUMPY_TO_DT[np.dtype(dtype).newbyteorder("=")]


# --- *_val fallback -----------------------------------------------------------------

VAL_CASES = [
    (types_pb2.DT_FLOAT, "float_val", [1.5, -2.25, 3.0, 0.0], np.float32),
    (types_pb2.DT_DOUBLE, "double_val", [1e300, -2.5, 1e-300, 0.0], np.float64),
    (types_pb2.DT_INT8, "int_val", [-128, 127, 0, 5], np.int8),
    (types_pb2.DT_INT16, "int_val", [-32768, 32767, 1, 2], np.int16),
    (types_pb2.DT_INT32, "int_val", [-2**31, 2**31 - 1, 0, 7], np.int32),
    (types_pb2.DT_INT64, "int64_val", [-2**63, 2**63 - 1, 0, 9], np.int64),
    (types_pb2.DT_UINT8, "int_val", [0, 255, 128, 1], np.uint8),
    (types_pb2.DT_UINT16, "int_val", [0, 65535, 300, 1], np.uint16),
    (types_pb2.DT_UINT32, "uint32_val", [0, 2**32 - 1, 5, 6], np.uint32),
    (types_pb2.DT_UINT64, "uint64_val", [0, 2**64 - 1, 5, 6], np.uint64),
    (types_pb2.DT_BOOL, "bool_val", [True, False, False, True], np.bool_),
]


@pytest.mark.parametrize("dt, field, values, numpy_type", VAL_CASES, ids=[types_pb2.DataType.Name(c[0]) for c in VAL_CASES])
def test_val_field_fallback(dt, field, values, numpy_type):
    got = tensor_proto_to_ndarray(tensor(dt, [2, 2], **{field: values}))
    assert got.dtype == np.dtype(numpy_type) and got.shape == (2, 2)
    np.testing.assert_array_equal(got, np.array(values, dtype=numpy_type).reshape(2, 2))


def test_half_val_holds_bit_patterns():
    halves = np.array([1.5, -2.0, 65504.0, 6.1e-5], dtype=np.float16)
    got = tensor_proto_to_ndarray(tensor(types_pb2.DT_HALF, [4], half_val=halves.view(np.uint16).tolist()))
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, halves)


def test_one_value_fills_the_tensor():
    got = tensor_proto_to_ndarray(tensor(types_pb2.DT_FLOAT, [2, 3], float_val=[7.5]))
    np.testing.assert_array_equal(got, np.full((2, 3), 7.5, dtype=np.float32))
    got = tensor_proto_to_ndarray(tensor(types_pb2.DT_INT64, [4], int64_val=[-3]))
    np.testing.assert_array_equal(got, [-3, -3, -3, -3])
    scalar = tensor_proto_to_ndarray(tensor(types_pb2.DT_FLOAT, [], float_val=[4.0]))
    assert scalar.shape == () and scalar == 4.0


def test_tensor_content_wins_over_val_fields():
    proto = ndarray_to_tensor_proto(np.array([1.0, 2.0], dtype=np.float32))
    proto.float_val.extend([9.0, 9.0])
    np.testing.assert_array_equal(tensor_proto_to_ndarray(proto), [1.0, 2.0])


@pytest.mark.parametrize("proto", [
    tensor(types_pb2.DT_FLOAT, [3], float_val=[1.0, 2.0]),
    tensor(types_pb2.DT_FLOAT, [3]),
    tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=np.zeros(4, np.float32).tobytes(),
                           tensor_shape={"dim": [{"size": 5}]}),
], ids=["2-for-3", "none-for-3", "content-4-for-5"])
def test_element_count_mismatch_raises(proto):
    with pytest.raises(ValueError, match=r"expected \d+ for shape"):
        tensor_proto_to_ndarray(proto)


@pytest.mark.parametrize("dt", [types_pb2.DT_STRING, types_pb2.DT_COMPLEX64, types_pb2.DT_INVALID])
def test_non_numeric_proto_raises(dt):
    proto = tensor(dt, [1])
    if dt == types_pb2.DT_STRING:
        proto.string_val.append(b"jpeg bytes")
    with pytest.raises(ValueError, match=f"dtype {dt} "):
        tensor_proto_to_ndarray(proto)


# --- PredictResponse checks, gRPC failures -----------------------------------------


def response(**outputs):
    message = predict_pb2.PredictResponse()
    for name, array in outputs.items():
        message.outputs[name].CopyFrom(ndarray_to_tensor_proto(array))
    return message.SerializeToString()


def test_check_response_ok():
    body = response(scores=np.zeros((4, 10), np.float32), classes=np.zeros((4,), np.int64))
    assert check_response(body, 4) is None


@pytest.mark.parametrize("body, words", [
    (response(), "no output tensors"),
    (response(scores=np.zeros((3, 10), np.float32)), "'scores' has shape [3, 10]; expected first dimension 4"),
    (response(scores=np.zeros((5, 10), np.float32)), "'scores' has shape [5, 10]; expected first dimension 4"),
    (response(ok=np.zeros((4, 2)), bad=np.zeros((2, 4))), "'bad' has shape [2, 4]"),
    (response(scalar=np.array(1.0, np.float32)), "'scalar' has shape []"),
])
def test_check_response_bad(body, words):
    problem = check_response(body, 4)
    assert isinstance(problem, BadResponse)
    assert words in str(problem) and repr(problem) == str(problem)


def test_rpc_failure_text():
    failure = RpcFailure(grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(resnet)")
    assert str(failure) == repr(failure) == "NOT_FOUND: Servable not found for request: Latest(resnet)"
    assert failure.code is grpc.StatusCode.NOT_FOUND
    assert str(RpcFailure(grpc.StatusCode.DEADLINE_EXCEEDED, None)) == "DEADLINE_EXCEEDED"
    assert str(RpcFailure(None, "")) == "UNKNOWN"

    class FakeError:
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

        def details(self):
            return "failed to connect"

    failure = RpcFailure.from_rpc_error(FakeError())
    assert (failure.code, failure.details, str(failure)) == (grpc.StatusCode.UNAVAILABLE, "failed to connect", "UNAVAILABLE: failed to connect")


def test_check_response_names_an_undecodable_body():
    from tfs_user.protocols.tfs.outcomes import check_response
    from tfs_user.transport.failures import BadResponse

    problem = check_response(b"\xff\xff\xff", 1)
    assert isinstance(problem, BadResponse) and "3 bytes is not a PredictResponse" in str(problem)
