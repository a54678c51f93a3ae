"""The Open Inference Protocol (KServe v2 gRPC) behind the protocol seam (``tfs_user.protocols``): ModelInfer.

Messages load with gRPC (``messages``), so the seam's functions (``inspect_model``, ``build_requests``,
``open_call``, ``check_response``) come from their modules on first use: in a Locust process that is
after gevent is set up.
"""

import importlib

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


_LAZY = {"inspect_model": "preflight", "build_requests": "request_bodies", "open_call": "call",
         "check_response": "outcomes"}
"""The seam's functions and the modules defining them: they load gRPC and our messages, so they are
imported on first use (PEP 562), then kept here; ``check_response`` runs once per response."""


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tfs_user.protocols.kserve.{module}"), name)
    globals()[name] = value
    return value
