"""Fit the input data to the model's signature: input name, dtype, channel axis, batch size.

The signature comes from ``GetModelMetadata`` (TF Serving's ``SignatureDef``:
inputs with a DataType and a shape whose -1 dims are dynamic). ``plan_input``
decides, once per process, how each batch is converted before it is sent, and
returns one notice line per conversion. Conversions run per batch (on a slice
of the memory-mapped file), so a file larger than RAM still works.
"""

import logging
from dataclasses import dataclass, field

import numpy as np

from tfs_user.data.ranges import clip_cast
from tfs_user.protocols.tfs.messages import types_pb2
from tfs_user.protocols.tfs.tensors import DT_NAMES, DT_TO_NUMPY

logger = logging.getLogger("tfs_user")

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


def notice(message):
    """One line telling the user about a conversion or a skipped check."""
    logger.info("notice: %s", message)


class InputError(ValueError):
    """The data cannot be sent to this model as asked; one line with both sides."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a signature: ``shape`` uses -1 for dynamic dims (None = unknown rank).

    ``dt`` is TensorFlow's DataType; a protocol with its own type names (KServe v2: ``FP32``, ``BF16``)
    gives ``type_name``, and ``fit_dtype`` when data is fitted to another numpy dtype than ``dt``'s
    (BF16: float32, converted when the request is built).
    """

    name: str
    dt: int
    shape: tuple = None
    type_name: str = ""
    fit_dtype: object = None

    @property
    def dtype(self):
        """The numpy dtype data is fitted to, or None for types without one (e.g. DT_STRING, BYTES)."""
        return self.fit_dtype if self.fit_dtype is not None else DT_TO_NUMPY.get(self.dt)

    @property
    def dt_name(self):
        return self.type_name or DT_NAMES.get(self.dt) or types_pb2.DataType.Name(self.dt)


@dataclass(frozen=True)
class Signature:
    """Inputs and outputs of one ``SignatureDef``, by alias."""

    inputs: dict
    outputs: dict = field(default_factory=dict)

    @classmethod
    def from_proto(cls, signature_def):
        def specs(infos):
            out = {}
            for alias, info in infos.items():
                shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
                fit = np.dtype(np.float32) if info.dtype == types_pb2.DT_BFLOAT16 else None  # sent as bfloat16 words
                out[alias] = TensorSpec(alias, info.dtype, shape, fit_dtype=fit)
            return out

        return cls(specs(signature_def.inputs), specs(signature_def.outputs))

    def input_for(self, name):
        """The input ``name``, or the only input when ``name`` is empty; InputError listing the valid names."""
        if name in self.inputs:
            return self.inputs[name]
        valid = ", ".join(sorted(self.inputs))
        if not name:
            if len(self.inputs) == 1:
                return next(iter(self.inputs.values()))
            raise InputError(f"the model has {len(self.inputs)} inputs ({valid}); choose one with --input-name")
        raise InputError(f"input name {name!r} is not in the model's signature; its inputs: {valid}")


@dataclass(frozen=True)
class InputPlan:
    """How batches are sent: ``input_name``; ``dtype`` to cast to (None = as stored); ``axes`` to transpose;
    ``clip``: values outside ``dtype``'s range saturate (``--allow-lossy-cast``) instead of numpy's wrapping."""

    input_name: str
    dtype: np.dtype = None
    axes: tuple = None
    notices: tuple = ()
    clip: bool = False

    def transform(self, batch):
        """Apply the plan to one batch ``[b, ...]``."""
        if self.dtype is not None and batch.dtype != self.dtype:
            batch = clip_cast(batch, self.dtype) if self.clip else batch.astype(self.dtype)
        if self.axes is not None:
            batch = np.transpose(batch, self.axes)
        return batch


def _fits(frame, model_frame):
    return len(frame) == len(model_frame) and all(m < 0 or m == f for f, m in zip(frame, model_frame))


def _shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


MOVES = {"nhwc-to-nchw": TO_NCHW, "nchw-to-nhwc": TO_NHWC}


def _data_text(frame_shape, rows, synthetic):
    if synthetic:
        return f"synthetic frames {_shape_text(frame_shape)}"
    return f"the data of shape {_shape_text((rows if rows is not None else 'n', *frame_shape))}"


def _resize_hint(model_frame):
    """What fixes frames of the wrong size: other images, or photos converted to the model's size."""
    square = [d for d in model_frame if d > 3]
    if len(model_frame) == 3 and len(square) == 2 and square[0] == square[1] and 3 in model_frame:
        layout = "NCHW" if model_frame[0] == 3 else "NHWC"
        return (f"resize the images to that size, e.g. python -m tfs_user.images PHOTOS_DIR --size {square[0]} "
                f"--layout {layout} -o imgs.npy")
    return "give data whose frames have that shape (resize or crop the images to it)"


def _forced_axes(layout, frame_shape, data_text):
    """The axes of a forced ``--layout``; InputError unless the frames are 3-d."""
    axes = MOVES.get(layout)
    if axes is not None and len(frame_shape) != 3:
        raise InputError(f"--layout {layout} moves the channel axis of 3-d frames [h,w,c] or [c,h,w], but "
                         f"{data_text} has frames {_shape_text(frame_shape)}; expected --layout auto or keep")
    return axes


def _check_rank(frame_shape, spec, data_text, synthetic):
    """InputError unless the data has the rank of the input (batch axis first)."""
    rank, model_rank = 1 + len(frame_shape), len(spec.shape)
    if rank == model_rank:
        return
    what = f"input {spec.name!r} {_shape_text(spec.shape)}"
    if synthetic:
        raise InputError(f"--synthetic-shape {','.join(map(str, frame_shape))} has {len(frame_shape)} dims but {what} "
                         f"takes frames of {model_rank - 1} dims; expected --synthetic-shape with {model_rank - 1} dims")
    if rank == model_rank - 1:
        raise InputError(f"{data_text} has no batch axis: {what} takes rank {model_rank} with the batch axis first, the "
                         f"data has rank {rank}; save it with one, e.g. numpy.save(path, array[numpy.newaxis]) for one image")
    raise InputError(f"{data_text} has rank {rank} but {what} takes rank {model_rank} (batch axis first); "
                     f"expected data [n, ...] with frames of {model_rank - 1} dims")


def plan_input(signature, settings, file_dtype, frame_shape, synthetic=False, name="", rows=None):
    """The InputPlan for data of ``file_dtype`` with frames of ``frame_shape`` (the file's shape[1:]).

    ``name`` is the input's name when the data names it (``--input``, ``.npz``),
    else ``--input-name`` or, when empty, the signature's only input.
    ``signature`` None (server without metadata): the options are used as given.
    ``rows`` (the data's axis 0, for messages). Raises InputError for a wrong
    input name, a DT_STRING input, a fixed batch size other than --batch-size,
    data whose rank is not the input's (a missing batch axis is named as such),
    a forced --layout on frames that are not 3-d, or frames that fit the model
    neither as stored nor with the channel axis moved (or not as --layout asks).
    """
    notices = []
    frame_shape = tuple(frame_shape)
    name = name or settings.input_name
    data_text = _data_text(frame_shape, rows, synthetic)
    forced = _forced_axes(settings.layout, frame_shape, data_text)
    if signature is None:
        dtype = np.dtype(settings.dtype) if settings.dtype else None
        return InputPlan(name or "input", dtype, forced, ())
    spec = signature.input_for(name)
    if not name:
        notices.append(f"input name: using the signature's only input {spec.name!r}")
    what = f"input {spec.name!r}"
    if spec.dtype is None:
        raise InputError(f"{what} takes {spec.dt_name} (e.g. encoded image bytes); numeric arrays cannot be sent to it; "
                         "give --images-dir DIR")
    # dtype
    target = np.dtype(settings.dtype) if settings.dtype else spec.dtype
    if settings.dtype and target != spec.dtype:
        notices.append(f"--dtype {target} differs from the signature's {spec.dt_name}; sending {target} as asked")
    if np.dtype(file_dtype).newbyteorder("=") != target and not synthetic:
        notices.append(f"casting the file's {np.dtype(file_dtype)} to {target} ({what} is {spec.dt_name})")
    # batch dimension
    if spec.shape is not None and len(spec.shape) >= 1 and spec.shape[0] > 0 and spec.shape[0] != settings.batch_size:
        raise InputError(f"{what} has a fixed batch dimension {spec.shape[0]} but --batch-size is {settings.batch_size}; "
                         f"expected --batch-size {spec.shape[0]}")
    if spec.shape is None:  # unknown rank: sent as the options say
        return InputPlan(spec.name, target, forced, tuple(notices))
    # rank, then layout
    _check_rank(frame_shape, spec, data_text, synthetic)
    model_frame = spec.shape[1:]
    full = (settings.batch_size, *frame_shape)
    axes = forced
    if settings.layout == "keep" and not _fits(frame_shape, model_frame):
        raise InputError(f"the data's frames have shape {_shape_text(frame_shape)} but {what} expects "
                         f"{_shape_text(model_frame)} per frame (--layout keep sends them as stored); "
                         "expected --layout auto, or frames of that shape")
    if forced is not None and not _fits(tuple(full[i] for i in forced)[1:], model_frame):
        moved = tuple(full[i] for i in forced)[1:]
        raise InputError(f"--layout {settings.layout} sends frames {_shape_text(frame_shape)} as {_shape_text(moved)} but "
                         f"{what} expects {_shape_text(model_frame)} per frame; expected --layout auto or keep")
    if settings.layout == "auto" and not _fits(frame_shape, model_frame):
        candidates = [a for a in (TO_NCHW, TO_NHWC)
                      if len(frame_shape) == 3 and _fits(tuple(full[i] for i in a)[1:], model_frame)]
        if len(candidates) > 1:
            raise InputError(f"the data's frames have shape {_shape_text(frame_shape)} but {what} expects "
                             f"{_shape_text(model_frame)} per frame (ambiguous: both channel-axis moves fit); "
                             "choose one with --layout nhwc-to-nchw or --layout nchw-to-nhwc")
        if not candidates:
            raise InputError(f"the data's frames have shape {_shape_text(frame_shape)} but {what} expects "
                             f"{_shape_text(model_frame)} per frame (no channel-axis move makes it fit); "
                             f"{_resize_hint(model_frame)}")
        axes = candidates[0]
    if axes is not None:
        moved = tuple(full[i] for i in axes)
        layout = "NCHW" if axes == TO_NCHW else "NHWC"
        notices.append(f"moving the channel axis: frames {_shape_text(frame_shape)} are sent as "
                       f"{_shape_text(moved[1:])} ({layout}) to fit {what} {_shape_text(spec.shape)}")
    return InputPlan(spec.name, target, axes, tuple(notices))
