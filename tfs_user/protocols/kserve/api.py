"""The Open Inference Protocol (KServe v2 gRPC) behind the protocol seam (``tfs_user.protocols``): ModelInfer.

Messages load with gRPC (``messages``), so every function here imports them when called: in a
Locust process that is after gevent is set up.
"""

from tfs_user.protocols import check_dtype

VERB = "ModelInfer"


def check_settings(settings):
    """Raise ValueError (one line) for a ``--dtype`` without a datatype, or TF Serving's model-spec options
    that ModelInfer has no field for (a version label, a signature other than the default)."""
    if settings.version_label:
        raise ValueError(f"--model-version-label {settings.version_label!r} has no counterpart in the Open Inference "
                         "Protocol (ModelInfer names a model_version); expected --model-version N, or --protocol tfs")
    if settings.signature_name not in ("", type(settings).__dataclass_fields__["signature_name"].default):
        raise ValueError(f"--signature-name {settings.signature_name!r} has no counterpart in the Open Inference "
                         "Protocol (ModelInfer names no signature); leave it at its default, or use --protocol tfs")
    if settings.dtype:
        from tfs_user.protocols.kserve.tensors import datatype_of

        check_dtype(settings.dtype, datatype_of)


def inspect_model(settings):
    """Readiness and metadata at every endpoint of ``settings`` -> the model's Signature, or None (``preflight``)."""
    from tfs_user.protocols.kserve.preflight import inspect_model as inspect

    return inspect(settings)


def build_requests(settings, signature, sources):
    """Serialized ModelInfer requests (``request_bodies.build_requests``)."""
    from tfs_user.protocols.kserve.request_bodies import build_requests as build

    return build(settings, signature, sources)


def open_call(channel):
    """``GRPCInferenceService/ModelInfer`` on ``channel``: ``call(body, timeout=, metadata=) -> bytes`` (``call``)."""
    from tfs_user.protocols.kserve.call import model_infer_call

    return model_infer_call(channel)


def check_response(body, batch_size, endpoint=""):
    """None, or a BadResponse for a ModelInfer response that does not answer a batch of ``batch_size`` (``outcomes``)."""
    from tfs_user.protocols.kserve.outcomes import check_response as check

    return check(body, batch_size, endpoint)
