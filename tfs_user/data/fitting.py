"""Fit the data to the model: gather each input's data, plan its conversion, build the requests.

Data: one ``.npy`` (memory-mapped), an ``.npz`` or ``--input NAME=FILE.npy`` for
several inputs (sliced in step), ``--images-dir`` for DT_STRING inputs (encoded
JPEG/PNG bytes), or synthetic frames shaped like the signature. Each input gets
an input plan (``tfs_user.data.inputs.plan_input``: name, dtype cast, channel-axis
move, batch checks) with one notice line per conversion. The run object
(``tfs_user.run``) calls these once per process and settings and keeps the result.
"""

import dataclasses
import os

import numpy as np

from tfs_user.data.files import Batches, load_array, load_encoded_images, open_data, synthetic_array
from tfs_user.data.inputs import InputError, notice, plan_input
from tfs_user.data.ranges import cast_problem


def fit_inputs(settings, signature, sources):
    """``sources`` (``open_sources``) fitted to ``signature`` (None: the server has no metadata):
    ``[(input name, Batches, transform or None)]``, one per model input, notices printed.

    A protocol's ``build_requests`` turns them into request bodies. Raises InputError or DataError (one line),
    also for an ``--output-names`` name that the signature's outputs lack.
    """
    check_output_names(settings, signature)
    return _fit(_gather(settings, signature, sources), settings, signature)


class EncodedBatch(list):
    """A batch of encoded images (``bytes``) with the tensor ``shape`` it goes as: ``[b]``, or ``[b, 1, ...]``
    for an input whose signature has more dims (Triton's usual image-bytes input is ``[-1, 1]``)."""

    shape = ()


def _encoded_shape(spec):
    """The transform giving encoded-image batches the signature's rank: None for rank 1 (or unknown);
    InputError when a frame dim is fixed to more than one image (one image per example is all a folder gives)."""
    if spec is None or spec.shape is None or len(spec.shape) <= 1:
        return None
    frame = spec.shape[1:]
    if any(d > 1 for d in frame):
        raise InputError(f"input {spec.name!r} {list(spec.shape)} takes {frame[0] if len(frame) == 1 else list(frame)} "
                         f"encoded images per example; --images-dir gives one image per example (an input [-1] or "
                         f"[-1,1]); expected a model input of that shape")

    def shaped(batch):
        out = EncodedBatch(batch)
        out.shape = (len(batch),) + (1,) * len(frame)
        return out

    return shaped


def check_output_names(settings, signature):
    """InputError naming the first ``--output-names`` entry that is not among the signature's outputs (when the
    signature lists any): a typo would otherwise show only as failing requests."""
    known = signature.outputs if signature is not None else {}
    for name in settings.output_names if known else ():
        if name not in known:
            raise InputError(f"--output-names {name!r} is not an output of model {settings.model_name!r}; its "
                             f"outputs: {', '.join(sorted(known))}")


def _gather(settings, signature, sources):
    """The data of each input: [(input name or "" for "the model's input", data, synthetic)].

    data is an array ``[n, ...]`` or, for --images-dir, a list of n encoded images.
    """
    if sources:
        return [(name, data, False) for name, data in sources]
    if signature is not None and not settings.input_name and len(signature.inputs) > 1:
        return [(name, _synthetic(signature, settings, name), True) for name in sorted(signature.inputs)]
    return [("", _synthetic(signature, settings), True)]


def _synthetic(signature, settings, name=""):
    """Synthetic frames for one input, of the dtype it is sent as (--dtype, else the signature's, else float32),
    so that their values lie inside its range."""
    shape = synthetic_frame_shape(signature, settings, name)
    if settings.dtype:
        dtype = np.dtype(settings.dtype)
    elif signature is not None:
        dtype = signature.input_for(name or settings.input_name).dtype
    else:
        dtype = np.float32
    return synthetic_array(shape, dtype=dtype)


def open_sources(settings):
    """The data the options name, opened and checked: ``[(input name or "", data)]``.

    data is an array ``[n, ...]`` (a memory-mapped .npy, an .npz member, an
    ``--input`` file) or, for ``--images-dir``, a list of n encoded images.
    Raises DataError.
    """
    sources = [(name, load_array(path)) for name, path in settings.named_inputs]
    if settings.images_numpy_path:
        sources += list(open_data(settings.images_numpy_path).items())
    if settings.images_dir:
        sources.append(("", load_encoded_images(settings.images_dir)))
    return sources


def data_here(settings, master=False):
    """Whether this process reads the data: always, except a master without a copy of every path
    given (its workers read the data themselves, and report a missing file)."""
    return not master or all(os.path.exists(p) for p in settings.data_paths)


def check_data(settings, master=False):
    """Open the data before the test starts; True when this process has it (see ``data_here``).

    Raises DataError.
    """
    if not data_here(settings, master):
        return False
    open_sources(settings)
    return True


def _fit(sources, settings, signature):
    """[(input name, Batches, transform)] with each source fitted to its signature input; notices printed."""
    unnamed = [s for s in sources if not s[0]]
    if len(unnamed) > 1:
        raise InputError("--images-numpy-path and --images-dir both give data for the model's input; give one")
    rows = {name or "input": len(data) for name, data, _ in sources}
    if len(set(rows.values())) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in rows.items())
        raise InputError(f"the inputs have different numbers of rows ({listed}); expected the same, they are sliced in step")
    fitted = []
    for name, data, synthetic in sources:
        if isinstance(data, list):  # encoded images for a DT_STRING input
            spec = signature.input_for(name or settings.input_name) if signature is not None else None
            if spec is not None and spec.dtype is not None:
                raise InputError(f"input {spec.name!r} takes {spec.dt_name}, not encoded images; convert the "
                                 "folder with python -m tfs_user.images and give --images-numpy-path")
            fitted.append((spec.name if spec else (name or settings.input_name or "input"),
                           Batches(data, settings.batch_size), _encoded_shape(spec)))
            continue
        plan = plan_input(signature, settings, data.dtype, data.shape[1:], synthetic=synthetic, name=name,
                          rows=len(data))
        plan = _check_range(plan, data, settings, signature)
        for message in plan.notices:
            notice(message)
        fitted.append((plan.input_name, Batches(data, settings.batch_size), plan.transform))
    if signature is not None:
        missing = sorted(set(signature.inputs) - {name for name, _, _ in fitted})
        if missing:
            raise InputError(f"model {settings.model_name!r} needs inputs {', '.join(sorted(signature.inputs))}; "
                             f"no data for {', '.join(missing)} (give --input NAME=FILE.npy or an .npz)")
    return fitted


def _check_range(plan, data, settings, signature):
    """``plan``, or InputError when its cast would change the data's values (see ``tfs_user.data.ranges``); with
    ``--allow-lossy-cast``, the plan that saturates them, with a notice."""
    problem = cast_problem(data, plan.dtype) if plan.dtype is not None else None
    if problem is None:
        return plan
    spec = signature.inputs.get(plan.input_name) if signature is not None else None
    what = f"input {plan.input_name!r}" + (f" ({spec.dt_name})" if spec is not None else "")
    if not settings.allow_lossy_cast:
        raise InputError(f"{what}: the data's {problem}; a cast to {np.dtype(plan.dtype).name} would change them. "
                         "Expected data within the range (rescale it, or give --dtype), or --allow-lossy-cast to clip "
                         "values to the range")
    return dataclasses.replace(plan, clip=True, notices=(*plan.notices, f"{what}: the data's {problem}; clipped to "
                                                          "the range (--allow-lossy-cast)"))


def synthetic_frame_shape(signature, settings, name=""):
    """Frame shape for synthetic data: --synthetic-shape, else the signature's (all dims fixed).

    Raises InputError when neither gives it: without a signature (a server without
    GetModelMetadata, a failed call, --skip-preflight) nothing tells the input's shape.
    """
    if settings.synthetic_shape:
        return settings.synthetic_shape
    if signature is None:
        name = f"input {settings.input_name!r}" if settings.input_name else "the model's input (name unknown)"
        raise InputError(f"no signature for model {settings.model_name!r} (see the notice above) and no data or "
                         f"--synthetic-shape gives the frame shape of {name}; give --images-numpy-path FILE, "
                         "--input NAME=FILE.npy per input, or --synthetic-shape with --input-name")
    spec = signature.input_for(name or settings.input_name)
    if spec.dtype is None:
        raise InputError(f"input {spec.name!r} takes {spec.dt_name} (e.g. encoded image bytes); give --images-dir DIR")
    frame = spec.shape[1:] if spec.shape is not None else None
    if frame is None or any(d < 1 for d in frame):
        raise InputError(f"input {spec.name!r} has frame shape {list(frame) if frame is not None else 'unknown'} "
                         "with dynamic dims; give --synthetic-shape, e.g. 224,224,3")
    return tuple(frame)
