"""TF Serving's gRPC API behind the protocol seam (``tfs_user.protocols``): Predict with a ModelSpec."""

import numpy as np

from tfs_user.protocols.tfs.outcomes import check_response  # noqa: F401  (the seam's response check)
from tfs_user.protocols.tfs.request_bodies import build_requests  # noqa: F401  (the seam's request factory)
from tfs_user.protocols.tfs.tensors import dtype_to_dt

VERB = "Predict"


def check_settings(settings):
    """Raise ValueError (one line) unless ``settings.dtype`` (when set) is a numpy dtype with a TF Serving DataType."""
    if settings.dtype:
        _check_dtype(settings.dtype)


def _check_dtype(text):
    try:
        dtype = np.dtype(text)
    except TypeError:
        raise ValueError(f"--dtype {text!r} is not a numpy dtype; expected e.g. float32, uint8") from None
    try:
        dtype_to_dt(dtype)
    except ValueError as e:
        raise ValueError(f"--dtype: {e}") from None


def inspect_model(settings):
    """Pre-flight against every endpoint of ``settings`` -> the model's Signature, or None (see ``preflight``)."""
    from tfs_user.protocols.tfs.preflight import inspect_model as inspect  # gRPC: after gevent is set up

    return inspect(settings)


def open_call(channel):
    """``PredictionService/Predict`` on ``channel``: ``call(body, timeout=, metadata=) -> bytes`` (``predict``)."""
    from tfs_user.protocols.tfs.predict import predict_call

    return predict_call(channel)
