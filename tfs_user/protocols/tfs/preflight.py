"""Pre-flight: ask the server about the model before any user starts.

1. ``ModelService/GetModelStatus``: is the model (version) AVAILABLE? Waits up
   to ``--wait-for-model`` seconds, then fails listing the versions and states
   the server reported.
2. ``PredictionService/GetModelMetadata`` (``signature_def``): the signature's
   inputs with dtype and shape (``tfs_user.data.inputs.Signature``).

A server that answers UNIMPLEMENTED to either is fine: the options are used as
given, with one notice. GetModelMetadata failing with any other status code but
NOT_FOUND is a notice too (Predict may still work): without a signature, the
options must give each input's frame shape, or ``tfs_user.data.fitting`` stops the run
naming what is unknown. ``--skip-preflight`` makes neither call. Fitting the data
to the signature is ``tfs_user.data.fitting``.

With several endpoints (``--host a:8500,b:8500``) every endpoint is checked and must give
the same signature; an error names the endpoint.
"""

import time

from tfs_user.protocols.preflight import STATUS_POLL_S, PreflightError, inspect_endpoints  # noqa: F401 (PreflightError: also here)
from tfs_user.transport.gevent_grpc import grpc
from tfs_user.data.inputs import Signature, notice
from tfs_user.protocols.tfs.messages import (
    fill_model_spec,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

_STATE_NAMES = {v: k for k, v in get_model_status_pb2.ModelVersionStatus.State.items()}


def check_status(channel, settings, target=None):
    """Wait until the requested version (or any version) is AVAILABLE at ``target`` (default
    ``settings.target``); PreflightError otherwise.

    Returns False when the server does not implement GetModelStatus.
    """
    target = target or settings.target
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    fill_model_spec(request.model_spec, settings.model_name)
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
                raise PreflightError(f"model {name!r} not found at {target}{waited} (the server said {reported})")
            raise PreflightError(f"model {name!r} {wanted} is not AVAILABLE{waited}; the server reports: {reported}")
        time.sleep(STATUS_POLL_S)


def fetch_signature(channel, settings):
    """The model's signature (``Signature``) from GetModelMetadata, or None when the server does not
    give it (any status code but NOT_FOUND, with a notice). PreflightError for NOT_FOUND or a missing signature."""
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    fill_model_spec(request.model_spec, settings.model_name, settings.model_version, settings.version_label)
    try:
        response = stub.GetModelMetadata(request, timeout=settings.timeout_s, metadata=settings.grpc_metadata)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNIMPLEMENTED:
            notice("the server does not implement GetModelMetadata; input name, dtype and shape are used as given")
            return None
        if e.code() != grpc.StatusCode.NOT_FOUND:
            notice(f"GetModelMetadata for model {settings.model_name!r} failed ({e.code().name}: {e.details()}); "
                   "input name, dtype and shape are used as given")
            return None
        raise PreflightError(f"GetModelMetadata for model {settings.model_name!r} failed: {e.code().name}: {e.details()}") from None
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    name = settings.signature_name or "serving_default"
    if name not in signatures.signature_def:
        known = ", ".join(sorted(k for k in signatures.signature_def if not k.startswith("__"))) or "none"
        raise PreflightError(f"model {settings.model_name!r} has no signature {name!r}; its signatures: {known}")
    return Signature.from_proto(signatures.signature_def[name])


def _inspect(channel, settings, endpoint):
    check_status(channel, settings, endpoint)
    return fetch_signature(channel, settings)


def inspect_model(settings):
    """Status check and signature of the model under test at every endpoint (None when the server gives no
    signature, or with ``--skip-preflight``, which makes no call). Raises PreflightError."""
    return inspect_endpoints(settings, _inspect, "model status and signature")
