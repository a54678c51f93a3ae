"""bfloat16, the upper 16 bits of a float32, for both protocols (numpy has no such dtype).

TF Serving carries ``DT_BFLOAT16`` tensors as these 16-bit words in ``tensor_content``
(little-endian; TensorFlow's ``tensor.proto`` also allows them in ``half_val``), the Open
Inference Protocol as ``BF16`` raw contents. Rounding is to nearest even, as TensorFlow's
and Eigen's float -> bfloat16; a NaN stays a NaN (its sign and upper payload kept, the quiet
bit set), where plain rounding would carry a payload into the exponent (``0x7F800001`` ->
``0x7F80``, +inf) or wrap (``0xFFFFFFFF`` -> ``0x0000``, 0.0). Imports neither gRPC nor Locust.
"""

import numpy as np

QUIET_BIT = np.uint16(0x0040)
"""The quiet-NaN bit of a bfloat16 word (the top bit of its 7-bit mantissa)."""


def to_words(array):
    """``array`` (any shape, any real dtype, cast to float32 first) as bfloat16 words: uint16, same shape."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4")
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype("<u2")
    nan = np.isnan(np.asarray(array, dtype=np.float32))
    if nan.any():
        rounded = np.where(nan, (bits >> np.uint32(16)).astype("<u2") | QUIET_BIT, rounded)
    return rounded


def to_bytes(array):
    """``array`` as little-endian bfloat16 bytes in C order (``tensor_content``, BF16 raw contents)."""
    return np.ascontiguousarray(to_words(array), dtype="<u2").tobytes()


def from_words(words):
    """bfloat16 words (uint16 array or little-endian bytes) back to float32, exactly."""
    if isinstance(words, (bytes, bytearray, memoryview)):
        words = np.frombuffer(words, "<u2")
    return (np.asarray(words).astype(np.uint32) << np.uint32(16)).view(np.float32)
