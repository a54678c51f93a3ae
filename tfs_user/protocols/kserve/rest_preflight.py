"""Pre-flight over the Open Inference Protocol's REST API: the same steps and notices as over gRPC.

1. ``GET /v2/health/ready``, then ``GET /v2/models/NAME[/versions/N]/ready``: polled for up to
   ``--wait-for-model`` seconds; HTTP 404 for the model -> "model NAME not found at URL".
2. ``GET /v2/models/NAME[/versions/N]``: the inputs' names, datatypes and shapes and the outputs
   (a ``Signature`` as over gRPC); a server listing no inputs (MLServer) is a notice.
3. ``GET /v2``: whether the server lists the ``binary_tensor_data`` extension (``--binary-data auto``).
"""

import time

from tfs_user.data.inputs import Signature, TensorSpec, notice
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.rest import model_path
from tfs_user.protocols.preflight import STATUS_POLL_S, PreflightError, inspect_endpoints
from tfs_user.protocols.rest import error_of, get, not_found

BINARY_EXTENSION = "binary_tensor_data"


def check_ready(connection, settings, target):
    """Wait until the server and the model (version) are ready; PreflightError otherwise."""
    name = settings.model_name
    wanted = f"model {name!r}" + (f" version {settings.model_version}" if settings.model_version else "")
    ready_path = f"{model_path(settings)}/ready"
    deadline = time.monotonic() + settings.wait_for_model_s
    while True:
        state = ("server ready",) + get(connection, "/v2/health/ready", "server readiness")
        if _ready(*state[1:]):
            state = (f"{wanted} ready",) + get(connection, ready_path, "model readiness")
        what, status, value = state
        if _ready(status, value) and what != "server ready":
            return True
        if status in (405, 501):
            notice(f"the server does not implement GET {ready_path}; model readiness not checked")
            return False
        if time.monotonic() >= deadline:
            if status == 404 and what != "server ready":
                raise not_found(name, connection, ready_path, value)
            waited = f" after waiting {settings.wait_for_model_s:g} s" if settings.wait_for_model_s else ""
            said = "false" if status in (200, 400, 503) else f"HTTP {status}: {error_of(value)}"
            raise PreflightError(f"{wanted} is not ready at {target}{waited} ({what}: {said})")
        time.sleep(STATUS_POLL_S)


def _ready(status, value):
    """Whether a readiness answer says ready: HTTP 200 and no ``{"ready": false}`` (Triton answers 400 instead)."""
    return status == 200 and not (isinstance(value, dict) and value.get("ready") is False)


def _spec(tensor):
    datatype = tensor.get("datatype")
    if datatype not in tensors.DATATYPES:
        raise PreflightError(f"tensor {tensor.get('name')!r} has datatype {datatype!r}; expected one of "
                             f"{', '.join(tensors.DATATYPES)}")
    return TensorSpec(tensor["name"], tensors.tf_dt(datatype), tuple(int(d) for d in tensor.get("shape") or ()), datatype,
                      tensors.numpy_dtype(datatype) if datatype == "BF16" else None)


def fetch_signature(connection, settings):
    """The model's inputs and outputs from its metadata, or None (with a notice) when the server gives none."""
    path = model_path(settings)
    status, value = get(connection, path, "model metadata")
    if status == 404:
        raise not_found(settings.model_name, connection, path, value)
    if status != 200 or not isinstance(value, dict):
        notice(f"GET {path} answered HTTP {status} ({error_of(value)}); input name, dtype and shape are used as given")
        return None
    if not value.get("inputs"):
        notice(f"model metadata of {settings.model_name!r} lists no inputs; input name, dtype and shape are used as given")
        return None
    return Signature({t["name"]: _spec(t) for t in value["inputs"]}, {t["name"]: _spec(t) for t in value.get("outputs") or ()})


def lists_binary(connection):
    """Whether the server's ``GET /v2`` lists the binary tensor data extension."""
    status, value = get(connection, "/v2", "server metadata")
    return status == 200 and isinstance(value, dict) and BINARY_EXTENSION in (value.get("extensions") or ())


_BINARY = {}
"""Settings -> whether every endpoint lists binary tensors (``--binary-data auto``), noted by pre-flight."""


def _inspect(connection, settings, endpoint):
    check_ready(connection, settings, endpoint)
    signature = fetch_signature(connection, settings)
    if settings.binary_data == "auto":
        _BINARY[settings] = _BINARY.get(settings, True) and lists_binary(connection)
    return signature


def inspect_model(settings):
    """Readiness and signature at every endpoint over REST (None without inputs). PreflightError."""
    _BINARY.pop(settings, None)
    return inspect_endpoints(settings, _inspect, "model readiness and metadata")


def binary(settings):
    """Whether bodies for ``settings`` use binary tensors: ``--binary-data on``, or ``auto`` and every endpoint
    listed the extension in pre-flight (``--skip-preflight``: JSON, which every server reads)."""
    return settings.binary_data == "on" or (settings.binary_data == "auto" and _BINARY.get(settings, False))
