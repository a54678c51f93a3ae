"""TF Serving's gRPC API behind the protocol seam (``tfs_user.protocols``): Predict with a ModelSpec."""

from tfs_user.protocols import check_dtype
from tfs_user.protocols.tfs.outcomes import check_response  # noqa: F401  (the seam's response check)
from tfs_user.protocols.tfs.request_bodies import build_requests  # noqa: F401  (the seam's request factory)
from tfs_user.protocols.tfs.tensors import dtype_to_dt

VERB = "Predict"


def check_settings(settings):
    """Raise ValueError (one line) unless ``settings.dtype`` (when set) is a numpy dtype with a TF Serving DataType."""
    if settings.dtype:
        check_dtype(settings.dtype, dtype_to_dt)


def inspect_model(settings):
    """Pre-flight against every endpoint of ``settings`` -> the model's Signature, or None (see ``preflight``)."""
    from tfs_user.protocols.tfs.preflight import inspect_model as inspect  # gRPC: after gevent is set up

    return inspect(settings)


def open_call(channel, settings=None):
    """``PredictionService/Predict`` on ``channel`` (``settings``: not needed over gRPC): ``call(body, timeout=, metadata=) -> bytes`` (``predict``)."""
    from tfs_user.protocols.tfs.predict import predict_call

    return predict_call(channel)
