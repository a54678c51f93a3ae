"""The demo server's model: what it serves (``ModelConfig``) and what it computes (``model_function``).

The "model" is a real, cheap numpy function: each frame of the input is
flattened, averaged over ``output_size`` contiguous chunks and passed through a
softmax, giving a float32 ``[batch, output_size]`` output whose rows sum to 1
(well under 1 ms for a 224x224x3 frame). DT_STRING inputs (encoded images) are
decoded to float32 RGB pixels first.
"""

import dataclasses
import io

import numpy as np

from tfs_user.protocols.tfs.messages import types_pb2
from tfs_user.protocols.tfs.tensors import dtype_to_dt, supported_dtypes


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model: one input (plus ``extra_inputs``), one output.

    The input layout is simply ``shape``: ``(-1, 224, 224, 3)`` is NHWC,
    ``(-1, 3, 224, 224)`` is NCHW; -1 accepts any size in that dimension.
    The first dimension is the batch (frames per request).
    """

    name: str = "resnet"
    """Model name clients put in ``model_spec.name``."""
    input_name: str = "input"
    """Input tensor alias in the signature."""
    dtype: str = "float32"
    """numpy dtype name of the input, one of the tensors table (float32, uint8, ...)."""
    shape: tuple = (-1, 224, 224, 3)
    """Input shape, rank >= 1; -1 means any size."""
    output_name: str = "prob"
    """Output tensor alias; always float32 ``[batch, output_size]``."""
    output_size: int = 1000
    """Number of outputs per frame (classes)."""
    versions: tuple = (1,)
    """Loaded versions; a request without a version gets the highest one."""
    signature_name: str = "serving_default"
    """Signature name; a request with an empty signature_name gets this one."""
    extra_inputs: tuple = ()
    """Further inputs ``((name, dtype, shape), ...)``; all must have the same batch size."""
    delay_ms: float = None
    """Milliseconds each successful call of this model sleeps; None = the server's ``delay_ms``."""

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "versions", tuple(sorted(int(v) for v in self.versions)))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))
        object.__setattr__(self, "extra_inputs", tuple((n, dtype_name(d), tuple(int(x) for x in sh))
                                                       for n, d, sh in self.extra_inputs))
        for _, _, shape in self.inputs:
            if not shape or any(d != -1 and d <= 0 for d in shape):
                raise ValueError(f"shape {list(shape)} is not valid; expected rank >= 1 with sizes > 0 or -1")
        if self.delay_ms is not None and not self.delay_ms >= 0:
            raise ValueError(f"delay_ms {self.delay_ms} is not valid; expected milliseconds >= 0 (or None)")
        if self.output_size <= 0:
            raise ValueError(f"output_size {self.output_size} is not valid; expected > 0")
        if not self.versions or any(v <= 0 for v in self.versions):
            raise ValueError(f"versions {list(self.versions)} is not valid; expected one or more integers > 0")

    @property
    def inputs(self):
        """All inputs as ``(name, dtype name, shape)``; dtype "string" is DT_STRING (encoded images)."""
        return ((self.input_name, self.dtype, self.shape), *self.extra_inputs)


def dtype_name(value):
    """The numpy dtype name of ``value`` (e.g. ``np.uint8`` -> "uint8"), or "string"; ValueError if not sendable."""
    if value == "string":
        return "string"
    try:
        dtype = np.dtype(value)
        dtype_to_dt(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"dtype {value!r} is not supported; expected one of {supported_dtypes()}, string") from None
    return dtype.name


def dt_of(name):
    """The TensorProto DataType of a dtype name from ``dtype_name`` ("string" -> DT_STRING)."""
    return types_pb2.DT_STRING if name == "string" else dtype_to_dt(name)


def decode_image(data):
    """One encoded image (JPEG/PNG ``bytes``) as float32 RGB pixels ``[h, w, 3]``; raises any PIL error."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)


def model_function(frames, output_size):
    """The demo model: float32 ``[batch, output_size]`` scores from any ``[batch, ...]`` input.

    Per frame: flatten, pad with zeros to a multiple of ``output_size``, take
    the mean of each of the ``output_size`` contiguous chunks, then softmax.
    Deterministic; each output row sums to 1.
    """
    batch = frames.shape[0]
    flat = frames.reshape(batch, int(np.prod(frames.shape[1:]))).astype(np.float32, copy=False)
    chunk = max(1, -(-flat.shape[1] // output_size))
    pad = chunk * output_size - flat.shape[1]
    if pad:
        flat = np.pad(flat, ((0, 0), (0, pad)))
    scores = flat.reshape(batch, output_size, chunk).mean(axis=2, dtype=np.float32)
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores
