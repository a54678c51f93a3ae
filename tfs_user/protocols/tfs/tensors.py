"""numpy arrays <-> ``tensorflow.TensorProto``, through one dtype table.

Arrays travel in ``TensorProto.tensor_content`` as raw little-endian bytes in C
order: that is what TF Serving parses fastest, and it avoids TensorFlow's slow
``make_tensor_proto``. On the way back, ``tensor_content`` is read first, then
the typed ``*_val`` fields that some servers fill instead.
"""

import numpy as np

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


def ndarray_to_tensor_proto(array):
    """Build a TensorProto from an array of any shape (0-d included).

    The bytes go to ``tensor_content`` in C order, little-endian (a big-endian
    or Fortran-ordered array is converted here). Raises ValueError for dtypes
    without a TensorProto DataType.
    """
    array = np.asarray(array)
    dt = dtype_to_dt(array.dtype)
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    proto = tensor_pb2.TensorProto(dtype=dt, tensor_content=little.tobytes())
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape)
    return proto


def tensor_proto_to_ndarray(proto):
    """Read a numeric TensorProto back into a numpy array of its declared shape.

    Raises ValueError when the DataType is not numeric (e.g. DT_STRING) or the
    content does not hold as many elements as the shape declares.
    """
    if proto.dtype not in DT_TO_NUMPY:
        raise ValueError(f"TensorProto dtype {proto.dtype} is not a numeric type this tool decodes")
    dtype = DT_TO_NUMPY[proto.dtype].newbyteorder("<")
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    if proto.tensor_content:
        flat = np.frombuffer(proto.tensor_content, dtype=dtype)
    else:
        values = getattr(proto, _VAL_FIELDS[proto.dtype])
        if proto.dtype == types_pb2.DT_HALF:
            flat = np.array(values, dtype=np.uint16).view(np.float16)
        else:
            flat = np.array(values, dtype=dtype)
        count = int(np.prod(shape)) if shape else 1
        if flat.size == 1 and count > 1:  # TensorProto rule: one value fills the whole tensor
            flat = np.full(count, flat[0], dtype=flat.dtype)
    count = int(np.prod(shape)) if shape else 1
    if flat.size != count:
        raise ValueError(f"TensorProto holds {flat.size} elements, expected {count} for shape {list(shape)}")
    return flat.reshape(shape)


def bytes_to_tensor_proto(items):
    """A DT_STRING TensorProto ``[len(items)]`` holding each ``bytes`` item (e.g. an encoded JPEG) in ``string_val``."""
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=list(items))
    proto.tensor_shape.dim.add(size=len(items))
    return proto
