"""numpy arrays <-> Open Inference Protocol tensors (datatype names, raw contents, typed contents).

Tensors travel as raw bytes (``raw_input_contents``): row-major, little-endian, no padding;
``BYTES`` elements each as a 4-byte little-endian length and the bytes; ``BF16`` as the upper
16 bits of float32 (rounded to nearest even, NaN kept: ``tfs_user.protocols.bfloat16``);
``FP16`` and ``BF16`` have no typed field and can only go raw. Responses are read from
``raw_output_contents`` when the server filled it, else from the typed ``contents``. Imports neither gRPC nor Locust.
"""

import math
import struct

import numpy as np

from tfs_user.protocols import bfloat16
from tfs_user.protocols.tfs.messages import types_pb2

# datatype -> (numpy dtype data is fitted to, TF DataType for the shared Signature, typed contents field)
_TABLE = {
    "BOOL": (np.bool_, types_pb2.DT_BOOL, "bool_contents"),
    "UINT8": (np.uint8, types_pb2.DT_UINT8, "uint_contents"),
    "UINT16": (np.uint16, types_pb2.DT_UINT16, "uint_contents"),
    "UINT32": (np.uint32, types_pb2.DT_UINT32, "uint_contents"),
    "UINT64": (np.uint64, types_pb2.DT_UINT64, "uint64_contents"),
    "INT8": (np.int8, types_pb2.DT_INT8, "int_contents"),
    "INT16": (np.int16, types_pb2.DT_INT16, "int_contents"),
    "INT32": (np.int32, types_pb2.DT_INT32, "int_contents"),
    "INT64": (np.int64, types_pb2.DT_INT64, "int64_contents"),
    "FP16": (np.float16, types_pb2.DT_HALF, None),
    "FP32": (np.float32, types_pb2.DT_FLOAT, "fp32_contents"),
    "FP64": (np.float64, types_pb2.DT_DOUBLE, "fp64_contents"),
    "BF16": (np.float32, types_pb2.DT_BFLOAT16, None),  # numpy has no bfloat16: fitted as float32, sent as BF16
    "BYTES": (None, types_pb2.DT_STRING, "bytes_contents"),
}
DATATYPES = tuple(_TABLE)
"""Every datatype of the protocol, in the specification's order of kinds."""
_BY_NUMPY = {np.dtype(n): name for name, (n, _, _) in _TABLE.items() if n is not None and name != "BF16"}


def numpy_dtype(datatype):
    """The numpy dtype data is fitted to for ``datatype`` (float32 for BF16); None for BYTES; KeyError if unknown."""
    n = _TABLE[datatype][0]
    return None if n is None else np.dtype(n)


def tf_dt(datatype):
    """The TensorFlow DataType standing for ``datatype`` in a ``Signature`` (``tfs_user.data.inputs``)."""
    return _TABLE[datatype][1]


def datatype_of(dtype):
    """The datatype name for a numpy dtype (byte order ignored); ValueError (one line) when there is none."""
    dtype = np.dtype(dtype)
    key = dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype
    try:
        return _BY_NUMPY[key]
    except KeyError:
        expected = ", ".join(np.dtype(n).name for n in _BY_NUMPY)
        raise ValueError(f"dtype {dtype.str!r} has no Open Inference Protocol datatype; expected one of {expected}") from None


def to_raw(array, datatype=None):
    """``array`` (any shape) as raw contents: little-endian C-order bytes of ``datatype`` (default: the
    array's own). BF16 rounds float32 to nearest even (``tfs_user.protocols.bfloat16``). A list of ``bytes``
    is BYTES (length-prefixed)."""
    if isinstance(array, list):
        return b"".join(struct.pack("<I", len(item)) + item for item in array)
    array = np.asarray(array)
    if datatype == "BF16":
        return bfloat16.to_bytes(array)
    dtype = numpy_dtype(datatype) if datatype else array.dtype
    return np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


_ITEMSIZE = {name: (2 if name == "BF16" else np.dtype(n).itemsize) for name, (n, _, _) in _TABLE.items() if n is not None}


def contents_problem(tensor, raw):
    """Why output ``tensor`` (datatype, shape, typed contents) with raw contents ``raw`` (None: typed) does not
    hold the elements its shape declares, or None. The check of every response: no arrays are built."""
    datatype, shape = tensor.datatype, tuple(tensor.shape)
    count = math.prod(shape)
    if raw is not None and datatype != "BYTES":
        size = _ITEMSIZE.get(datatype)
        if size is not None and len(raw) == count * size:
            return None
        if size is None:
            return f"output '{tensor.name}' has datatype {datatype!r}; expected one of {', '.join(DATATYPES)}"
        return f"{datatype} contents of {len(raw)} bytes; expected {count * size} for shape {list(shape)}"
    try:
        (from_raw(raw, datatype, shape) if raw is not None else from_contents(tensor.contents, datatype, shape))
    except ValueError as e:
        return f"output '{tensor.name}': {e}"
    return None


def from_raw(raw, datatype, shape):
    """Raw contents back to an array of ``shape`` (BF16 -> float32), or a list of bytes for BYTES.

    Raises ValueError when the bytes do not hold the elements ``shape`` declares.
    """
    count = int(np.prod(shape)) if len(shape) else 1
    if datatype == "BYTES":
        items, at = [], 0
        while at + 4 <= len(raw):
            (n,) = struct.unpack_from("<I", raw, at)
            items.append(bytes(raw[at + 4:at + 4 + n]))
            at += 4 + n
        if at != len(raw) or len(items) != count:
            raise ValueError(f"BYTES contents of {len(raw)} bytes hold {len(items)} elements; expected {count} for "
                             f"shape {list(shape)}")
        return items
    if datatype == "BF16":
        size = 2
    elif datatype in _TABLE:
        size = numpy_dtype(datatype).itemsize
    else:
        raise ValueError(f"datatype {datatype!r} is not an Open Inference Protocol datatype")
    if len(raw) != count * size:
        raise ValueError(f"{datatype} contents of {len(raw)} bytes; expected {count * size} for shape {list(shape)}")
    if datatype == "BF16":
        flat = bfloat16.from_words(raw)
    else:
        flat = np.frombuffer(raw, numpy_dtype(datatype).newbyteorder("<"))
    return flat.reshape(shape)


def from_contents(contents, datatype, shape):
    """Typed ``InferTensorContents`` back to an array of ``shape`` (a list of bytes for BYTES).

    Raises ValueError for FP16/BF16 (raw only) or a count that does not match ``shape``.
    """
    if datatype not in _TABLE:
        raise ValueError(f"datatype {datatype!r} is not an Open Inference Protocol datatype")
    field = _TABLE[datatype][2]
    if field is None:
        raise ValueError(f"{datatype} has no typed contents; expected it in raw contents")
    values = getattr(contents, field)
    count = int(np.prod(shape)) if len(shape) else 1
    if len(values) != count:
        raise ValueError(f"{datatype} contents hold {len(values)} elements; expected {count} for shape {list(shape)}")
    if datatype == "BYTES":
        return list(values)
    return np.array(values, dtype=numpy_dtype(datatype)).reshape(shape)
