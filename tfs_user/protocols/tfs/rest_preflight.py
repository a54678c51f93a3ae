"""Pre-flight over TF Serving's REST API, before any user starts: the same steps and notices as over gRPC.

1. ``GET /v1/models/NAME[/versions/N]``: ``model_version_status`` with the version AVAILABLE (polled for up
   to ``--wait-for-model`` seconds; KServe's v1 server answers ``{"ready": true}`` instead, read alike);
   HTTP 404 -> "model NAME not found at URL".
2. ``GET /v1/models/NAME[/versions/N|/labels/L]/metadata``: the signature (``signature_def``, dtypes such
   as ``DT_FLOAT``, dims with ``size`` as strings) as a ``Signature``; a server without it (404, 501: KServe)
   is a notice, and the options give the inputs.
"""

import time

from tfs_user.data.inputs import Signature, TensorSpec, notice
from tfs_user.protocols.preflight import STATUS_POLL_S, PreflightError, inspect_endpoints
from tfs_user.protocols.rest import error_of, get, not_found
from tfs_user.protocols.tfs.messages import types_pb2
from tfs_user.protocols.tfs.rest import model_path


def check_status(connection, settings, target):
    """Wait until the version (or any version) is AVAILABLE; PreflightError otherwise."""
    name = settings.model_name
    path = f"/v1/models/{name}" + (f"/versions/{settings.model_version}" if settings.model_version else "")
    wanted = f"version {settings.model_version}" if settings.model_version else "any version"
    deadline = time.monotonic() + settings.wait_for_model_s
    while True:
        status, value = get(connection, path, "model status")
        if status == 404 and time.monotonic() >= deadline:
            raise not_found(name, connection, path, value)
        if status not in (200, 404):
            if status in (405, 501):
                notice(f"the server does not implement GET {path}; model availability not checked")
                return False
            raise PreflightError(f"model status of {name!r} at {connection.url}{path} failed: HTTP {status}: "
                                 f"{error_of(value)}")
        versions = {}
        if status == 200 and isinstance(value, dict) and "model_version_status" in value:
            versions = {int(v.get("version", 0)): v.get("state", "") for v in value["model_version_status"]}
        elif status == 200 and isinstance(value, dict) and "ready" in value:  # KServe's v1 server
            versions = {settings.model_version: "AVAILABLE" if value["ready"] else "LOADING"}
        ok = versions.get(settings.model_version) == "AVAILABLE" if settings.model_version \
            else "AVAILABLE" in versions.values()
        if ok:
            return True
        if time.monotonic() >= deadline:
            waited = f" after waiting {settings.wait_for_model_s:g} s" if settings.wait_for_model_s else ""
            reported = ", ".join(f"version {v} {s}" for v, s in sorted(versions.items())) or "no versions"
            raise PreflightError(f"model {name!r} {wanted} is not AVAILABLE{waited}; the server reports: {reported}")
        time.sleep(STATUS_POLL_S)


def _specs(infos):
    out = {}
    for alias, info in (infos or {}).items():
        shape_info = info.get("tensor_shape") or {}
        shape = None if shape_info.get("unknown_rank") else tuple(int(d.get("size", -1)) for d in shape_info.get("dim", ()))
        try:
            dt = types_pb2.DataType.Value(info.get("dtype", ""))
        except ValueError:
            raise PreflightError(f"input {alias!r} has dtype {info.get('dtype')!r}; expected a TF DataType such as DT_FLOAT") from None
        out[alias] = TensorSpec(alias, dt, shape)
    return out


def fetch_signature(connection, settings):
    """The model's signature from ``.../metadata``, or None (with a notice) when the server gives none."""
    path = f"{model_path(settings)}/metadata"
    status, value = get(connection, path, "model metadata")
    if status != 200 or not isinstance(value, dict):
        notice(f"GET {path} answered HTTP {status} ({error_of(value)}); input name, dtype and shape are used as given")
        return None
    signatures = ((value.get("metadata") or {}).get("signature_def") or {}).get("signature_def") or {}
    name = settings.signature_name or "serving_default"
    if name not in signatures:
        known = ", ".join(sorted(k for k in signatures if not k.startswith("__"))) or "none"
        raise PreflightError(f"model {settings.model_name!r} has no signature {name!r}; its signatures: {known}")
    return Signature(_specs(signatures[name].get("inputs")), _specs(signatures[name].get("outputs")))


def _inspect(connection, settings, endpoint):
    check_status(connection, settings, endpoint)
    return fetch_signature(connection, settings)


def inspect_model(settings):
    """Status and signature of the model at every endpoint over REST (None without a signature). PreflightError."""
    return inspect_endpoints(settings, _inspect, "model status and signature")
