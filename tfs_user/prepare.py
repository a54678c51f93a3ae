"""Pre-flight: ask the server about the model before any user starts, then fit the data to it.

1. ``ModelService/GetModelStatus``: is the model (version) AVAILABLE? Waits up
   to ``--wait-for-model`` seconds, then fails listing the versions and states
   the server reported.
2. ``PredictionService/GetModelMetadata`` (``signature_def``): the signature's
   inputs with dtype and shape.
3. The input plan (``tfs_user.inputs.plan_input``) for each input: name, dtype
   cast, channel-axis move, batch checks -- one notice line per conversion.
   Data: one ``.npy`` (memory-mapped), an ``.npz`` or ``--input NAME=FILE.npy``
   for several inputs (sliced in step), ``--images-dir`` for DT_STRING inputs
   (encoded JPEG/PNG bytes), or synthetic frames shaped like the signature.

A server that answers UNIMPLEMENTED to 1 or 2 is fine: the options are used as
given, with one notice. ``prepare(settings)`` does all of it once per process
and settings and returns the RequestFactory the users share.
"""

import logging
import os
import time

import grpc

from tfs_user.client import open_channel
from tfs_user.data import Batches, DataError, RequestFactory, load_array, load_encoded_images, open_data, synthetic_array
from tfs_user.inputs import InputError, Signature, plan_input
from tfs_user.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

logger = logging.getLogger("tfs_user")

STATUS_POLL_S = 1.0
_STATE_NAMES = {v: k for k, v in get_model_status_pb2.ModelVersionStatus.State.items()}


class PreflightError(ValueError):
    """The model cannot be tested as asked; one line saying what the server reported."""


def notice(message):
    """One line telling the user about a conversion or a skipped check."""
    logger.info("notice: %s", message)


def _spec(message, settings, with_version=True):
    spec = message.model_spec
    spec.name = settings.model_name
    if with_version and settings.model_version:
        spec.version.value = settings.model_version
    elif with_version and settings.version_label:
        spec.version_label = settings.version_label
    return message


def check_status(channel, settings):
    """Wait until the requested version (or any version) is AVAILABLE; PreflightError otherwise.

    Returns False when the server does not implement GetModelStatus.
    """
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = _spec(get_model_status_pb2.GetModelStatusRequest(), settings, with_version=False)
    deadline = time.monotonic() + settings.wait_for_model_s
    name = settings.model_name
    wanted = f"version {settings.model_version}" if settings.model_version else "any version"
    while True:
        try:
            response = stub.GetModelStatus(request, timeout=settings.timeout_s, metadata=settings.grpc_metadata)
            versions = {v.version: _STATE_NAMES.get(v.state, str(v.state)) for v in response.model_version_status}
            reported = ", ".join(f"version {v} {state}" for v, state in sorted(versions.items())) or "no versions"
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                notice("the server does not implement ModelService/GetModelStatus; model availability not checked")
                return False
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise PreflightError(f"GetModelStatus for model {name!r} failed: {e.code().name}: {e.details()}") from None
            versions, reported = {}, f"NOT_FOUND: {e.details()}"
        if settings.model_version:
            ok = versions.get(settings.model_version) == "AVAILABLE"
        else:
            ok = "AVAILABLE" in versions.values()
        if ok:
            return True
        if time.monotonic() >= deadline:
            waited = f" after waiting {settings.wait_for_model_s:g} s" if settings.wait_for_model_s else ""
            if not versions:
                raise PreflightError(f"model {name!r} is not served at {settings.target}{waited} ({reported})")
            raise PreflightError(f"model {name!r} {wanted} is not AVAILABLE{waited}; the server reports: {reported}")
        time.sleep(STATUS_POLL_S)


def fetch_signature(channel, settings):
    """The model's signature (``Signature``) from GetModelMetadata, or None if not implemented."""
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = _spec(get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"]), settings)
    try:
        response = stub.GetModelMetadata(request, timeout=settings.timeout_s, metadata=settings.grpc_metadata)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:
            notice("the server does not implement GetModelMetadata; input name, dtype and shape are used as given")
            return None
        raise PreflightError(f"GetModelMetadata for model {settings.model_name!r} failed: {e.code().name}: {e.details()}") from None
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    name = settings.signature_name or "serving_default"
    if name not in signatures.signature_def:
        known = ", ".join(sorted(k for k in signatures.signature_def if not k.startswith("__"))) or "none"
        raise PreflightError(f"model {settings.model_name!r} has no signature {name!r}; its signatures: {known}")
    return Signature.from_proto(signatures.signature_def[name])


def inspect_model(settings):
    """Status check and signature of the model under test (None when the server has no metadata)."""
    channel = open_channel(settings.target, settings.transport)
    try:
        check_status(channel, settings)
        return fetch_signature(channel, settings)
    finally:
        channel.close()


_prepared = {}


def prepare(settings, load=True):
    """Run the pre-flight for ``settings`` once per process and return the shared RequestFactory.

    ``load=False`` (a master without the data) only checks the model.
    Raises PreflightError, InputError or DataError (all ValueError, one line);
    gRPC errors of the pre-flight calls come as PreflightError.
    """
    key = (settings, load)
    if key in _prepared:
        return _prepared[key]
    signature = inspect_model(settings)
    factory = None
    if load:
        inputs = _fit(_gather(settings, signature), settings, signature)
        (name, batches, transform), more = inputs[0], inputs[1:]
        factory = RequestFactory(batches, settings.model_name, name, settings.signature_name, settings.model_version,
                                 settings.version_label, settings.request_cache_mb << 20, transform, more)
    _prepared[key] = factory
    return factory


def _gather(settings, signature):
    """The data of each input: [(input name or "" for "the model's input", data, synthetic)].

    data is an array ``[n, ...]`` or, for --images-dir, a list of n encoded images.
    """
    sources = [(name, data, False) for name, data in open_sources(settings)]
    if sources:
        return sources
    if signature is not None and not settings.input_name and len(signature.inputs) > 1:
        return [(name, synthetic_array(synthetic_frame_shape(signature, settings, name)), True)
                for name in sorted(signature.inputs)]
    return [("", synthetic_array(synthetic_frame_shape(signature, settings)), True)]


_opened = {}


def open_sources(settings):
    """The data the options name, opened and checked once per process: ``[(input name or "", data)]``.

    data is an array ``[n, ...]`` (a memory-mapped .npy, an .npz member, an
    ``--input`` file) or, for ``--images-dir``, a list of n encoded images.
    Raises DataError.
    """
    key = (settings.named_inputs, settings.images_numpy_path, settings.images_dir)
    if key not in _opened:
        sources = [(name, load_array(path)) for name, path in settings.named_inputs]
        if settings.images_numpy_path:
            sources += list(open_data(settings.images_numpy_path).items())
        if settings.images_dir:
            sources.append(("", load_encoded_images(settings.images_dir)))
        _opened[key] = sources
    return _opened[key]


def check_data(settings, master=False):
    """Open the data before the test starts; True when this process has it.

    A master's workers read the data themselves: a master without a copy of
    every path given skips the check (its workers report a missing file).
    Raises DataError.
    """
    paths = [p for p in (settings.images_numpy_path, settings.images_dir, *(p for _, p in settings.named_inputs)) if p]
    if master and not all(os.path.exists(p) for p in paths):
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
                           Batches(data, settings.batch_size), None))
            continue
        plan = plan_input(signature, settings, data.dtype, data.shape[1:], synthetic=synthetic, name=name)
        for message in plan.notices:
            notice(message)
        fitted.append((plan.input_name, Batches(data, settings.batch_size), plan.transform))
    if signature is not None:
        missing = sorted(set(signature.inputs) - {name for name, _, _ in fitted})
        if missing:
            raise InputError(f"model {settings.model_name!r} needs inputs {', '.join(sorted(signature.inputs))}; "
                             f"no data for {', '.join(missing)} (give --input NAME=FILE.npy or an .npz)")
    return fitted


def synthetic_frame_shape(signature, settings, name=""):
    """Frame shape for synthetic data: --synthetic-shape, else the signature's (all dims fixed), else 224,224,3."""
    if settings.synthetic_shape:
        return settings.synthetic_shape
    if signature is None:
        return (224, 224, 3)
    spec = signature.input_for(name or settings.input_name)
    if spec.dtype is None:
        raise InputError(f"input {spec.name!r} takes {spec.dt_name} (e.g. encoded image bytes); give --images-dir DIR")
    frame = spec.shape[1:] if spec.shape is not None else None
    if frame is None or any(d < 1 for d in frame):
        raise InputError(f"input {spec.name!r} has frame shape {list(frame) if frame is not None else 'unknown'} "
                         "with dynamic dims; give --synthetic-shape, e.g. 224,224,3")
    return tuple(frame)


__all__ = ["DataError", "InputError", "PreflightError", "prepare", "inspect_model"]
