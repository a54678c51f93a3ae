"""numpy arrays <-> ``tensorflow.TensorProto``, through one dtype table.

Arrays travel in ``TensorProto.tensor_content`` as raw little-endian bytes in C
order: that is what TF Serving parses fastest, and it avoids TensorFlow's slow
``make_tensor_proto``. On the way back, ``tensor_content`` is read first, then
the typed ``*_val`` fields that some servers fill instead.
"""

import math

import numpy as np

from tfs_user.protocols import bfloat16
from tfs_user.protocols.tfs.messages import tensor_pb2, tensor_shape_pb2, types_pb2

# numpy dtype -> (DataType enum, name used in messages, TensorProto *_val field)
_DTYPES = [
    (np.float32, types_pb2.DT_FLOAT, "DT_FLOAT", "float_val"),
    (np.float64, types_pb2.DT_DOUBLE, "DT_DOUBLE", "double_val"),
    (np.float16, types_pb2.DT_HALF, "DT_HALF", "half_val"),
    (np.int8, types_pb2.DT_INT8, "DT_INT8", "int_val"),
    (np.int16, types_pb2.DT_INT16, "DT_INT16", "int_val"),
    (np.int32, types_pb2.DT_INT32, "DT_INT32", "int_val"),
    (np.int64, types_pb2.DT_INT64, "DT_INT64", "int64_val"),
    (np.uint8, types_pb2.DT_UINT8, "DT_UINT8", "int_val"),
    (np.uint16, types_pb2.DT_UINT16, "DT_UINT16", "int_val"),
    (np.uint32, types_pb2.DT_UINT32, "DT_UINT32", "uint32_val"),
    (np.uint64, types_pb2.DT_UINT64, "DT_UINT64", "uint64_val"),
    (np.bool_, types_pb2.DT_BOOL, "DT_BOOL", "bool_val"),
]
NUMPY_TO_DT = {np.dtype(n): dt for n, dt, _, _ in _DTYPES}
DT_TO_NUMPY = {dt: np.dtype(n) for n, dt, _, _ in _DTYPES}
DT_NAMES = {dt: name for _, dt, name, _ in _DTYPES}
_VAL_FIELDS = {dt: field for _, dt, _, field in _DTYPES}


def supported_dtypes():
    """Names of the numpy dtypes that map to a TensorProto DataType, e.g. 'float32, float64, ...'."""
    return ", ".join(np.dtype(n).name for n, _, _, _ in _DTYPES)


def dtype_to_dt(dtype):
    """The ``tensorflow.DataType`` enum value for a numpy dtype (byte order ignored).

    Raises ValueError naming the dtype when it has no TensorProto equivalent
    (object, structured, string, complex, datetime arrays).
    """
    dtype = np.dtype(dtype)
    key = dtype.newbyteorder("=") if dtype.byteorder not in "=|" else dtype
    try:
        return NUMPY_TO_DT[key]
    except KeyError:
        kind = _KINDS.get(dtype.kind, dtype.name)
        raise ValueError(f"dtype {dtype.str!r} ({dtype.name}: {kind}) cannot be sent as a TensorProto; "
                         f"expected one of {supported_dtypes()}") from None


_KINDS = {"U": "unicode strings", "S": "byte strings", "O": "Python objects", "V": "structured or raw bytes",
          "c": "complex numbers", "M": "datetimes", "m": "timedeltas"}
"""What a numpy dtype kind holds, for errors about dtypes that have no TensorProto DataType."""


def ndarray_to_tensor_proto(array, dt=None):
    """Build a TensorProto from an array of any shape (0-d included).

    The bytes go to ``tensor_content`` in C order, little-endian (a big-endian
    or Fortran-ordered array is converted here). ``dt`` ``DT_BFLOAT16`` sends a
    real array as bfloat16 words (``tfs_user.protocols.bfloat16``); otherwise the
    array's dtype names the DataType. Raises ValueError for dtypes without one.
    """
    array = np.asarray(array)
    if dt == types_pb2.DT_BFLOAT16:
        content = bfloat16.to_bytes(array)
    else:
        dt = dtype_to_dt(array.dtype)
        content = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    proto = tensor_pb2.TensorProto(dtype=dt, tensor_content=content)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape)
    return proto


def tensor_proto_to_ndarray(proto):
    """Read a numeric TensorProto back into a numpy array of its declared shape.

    Raises ValueError when the DataType is not numeric (e.g. DT_STRING) or the
    content does not hold as many elements as the shape declares.
    """
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if proto.dtype == types_pb2.DT_BFLOAT16:
        words = proto.tensor_content or np.array(proto.half_val, dtype=np.uint16)
        return _filled(bfloat16.from_words(words), shape, bool(proto.tensor_content))
    if proto.dtype not in DT_TO_NUMPY:
        raise ValueError(f"TensorProto dtype {proto.dtype} is not a numeric type this tool decodes")
    dtype = DT_TO_NUMPY[proto.dtype].newbyteorder("<")
    if proto.tensor_content:
        flat = np.frombuffer(proto.tensor_content, dtype=dtype)
    else:
        values = getattr(proto, _VAL_FIELDS[proto.dtype])
        if proto.dtype == types_pb2.DT_HALF:
            flat = np.array(values, dtype=np.uint16).view(np.float16)
        else:
            flat = np.array(values, dtype=dtype)
    return _filled(flat, shape, bool(proto.tensor_content))


def _filled(flat, shape, raw):
    """``flat`` as ``shape``; typed values: one value fills the whole tensor (TensorProto rule). ValueError
    when the count does not match."""
    count = math.prod(shape)
    if not raw and flat.size == 1 and count > 1:
        flat = np.full(count, flat[0], dtype=flat.dtype)
    if flat.size != count:
        raise ValueError(f"TensorProto holds {flat.size} elements, expected {count} for shape {list(shape)}")
    return flat.reshape(shape)


def content_problem(proto):
    """Why TensorProto ``proto`` does not hold the elements its shape declares, or None; no arrays are built
    (the check of every response). ``tensor_content`` must hold exactly that many elements' bytes; typed
    ``*_val`` fields one value (it fills the tensor) up to that many (TensorFlow repeats the last)."""
    shape = [d.size for d in proto.tensor_shape.dim]
    count = math.prod(shape)
    size = 2 if proto.dtype == types_pb2.DT_BFLOAT16 else (
        DT_TO_NUMPY[proto.dtype].itemsize if proto.dtype in DT_TO_NUMPY else None)
    name = DT_NAMES.get(proto.dtype) or types_pb2.DataType.Name(proto.dtype)
    if proto.tensor_content and size is not None:
        if len(proto.tensor_content) == count * size:
            return None
        return f"{name} tensor_content of {len(proto.tensor_content)} bytes; expected {count * size} for shape {shape}"
    field = _VAL_FIELDS.get(proto.dtype) or _OTHER_VAL_FIELDS.get(proto.dtype)
    if field is None:
        return None  # a DataType this tool does not decode: its count is not checked
    values = len(getattr(proto, field))
    if (values == 0 and count > 0) or values > count:
        return f"{name} tensor holds {values} values in {field}; expected {count} for shape {shape}"
    return None


_OTHER_VAL_FIELDS = {types_pb2.DT_STRING: "string_val", types_pb2.DT_BFLOAT16: "half_val"}
"""Typed fields of DataTypes outside the numpy table."""


def bytes_to_tensor_proto(items, shape=None):
    """A DT_STRING TensorProto holding each ``bytes`` item (e.g. an encoded JPEG) in ``string_val``, of ``shape``
    (default ``[len(items)]``; e.g. ``[b, 1]`` for an input ``[-1, 1]``)."""
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=list(items))
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in (shape or (len(items),)))
    return proto
