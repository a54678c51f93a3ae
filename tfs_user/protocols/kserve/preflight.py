"""Pre-flight the Open Inference Protocol way, before any user starts.

1. ``ServerLive``, ``ServerReady``, then ``ModelReady`` (name, ``--model-version`` as a string,
   empty = the server's choice): polled until all say true, for up to ``--wait-for-model``
   seconds, then one line saying which was false.
2. ``ModelMetadata``: the inputs' names, datatypes and shapes (-1 = any size) and the outputs,
   as a ``tfs_user.data.inputs.Signature`` whose specs carry the protocol's datatype names.
   A server that lists no inputs (MLServer without declared inputs) gives no signature: the
   options are used as given, with one notice, as for a TF Serving server without metadata.

UNIMPLEMENTED for any call is a notice; NOT_FOUND for the model is an error naming it. With
several endpoints each is checked and all must give the same signature. ``--skip-preflight``
makes no call.
"""

import time

from tfs_user.data.inputs import Signature, TensorSpec, notice
from tfs_user.protocols.kserve import tensors
from tfs_user.protocols.kserve.messages import SERVICE, pb2
from tfs_user.protocols.preflight import STATUS_POLL_S, PreflightError, inspect_endpoints
from tfs_user.transport.gevent_grpc import grpc

_CALLS = {name: (getattr(pb2, f"{name}Request"), getattr(pb2, f"{name}Response"))
          for name in ("ServerLive", "ServerReady", "ModelReady", "ModelMetadata")}


def _call(channel, call, settings, **fields):
    request_type, response_type = _CALLS[call]
    method = channel.unary_unary(f"/{SERVICE}/{call}", request_serializer=request_type.SerializeToString,
                                 response_deserializer=response_type.FromString)
    return method(request_type(**fields), timeout=settings.timeout_s, metadata=settings.grpc_metadata)


def _version(settings):
    return str(settings.model_version) if settings.model_version else ""


def check_ready(channel, settings, target=None):
    """Wait until the server is live and ready and the model (version) ready at ``target``; PreflightError
    otherwise. Returns False when the server does not implement the calls."""
    target = target or settings.target
    name = settings.model_name
    wanted = f"model {name!r}" + (f" version {settings.model_version}" if settings.model_version else "")
    deadline = time.monotonic() + settings.wait_for_model_s
    while True:
        try:
            state = ("server live", _call(channel, "ServerLive", settings).live)
            if state[1]:
                state = ("server ready", _call(channel, "ServerReady", settings).ready)
            if state[1]:
                state = (f"{wanted} ready", _call(channel, "ModelReady", settings, name=name, version=_version(settings)).ready)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                notice(f"the server does not implement {SERVICE} readiness calls; model readiness not checked")
                return False
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise PreflightError(f"ModelReady for {wanted} failed: {e.code().name}: {e.details()}") from None
            state = ("not found", f"NOT_FOUND: {e.details()}")  # the server does not have it (or not yet)
        if state[1] is True:
            return True
        if time.monotonic() >= deadline:
            waited = f" after waiting {settings.wait_for_model_s:g} s" if settings.wait_for_model_s else ""
            if state[0] == "not found":
                raise PreflightError(f"{wanted} not found at {target}{waited} (the server said {state[1]})")
            said = "false" if state[1] is False else state[1]
            raise PreflightError(f"{wanted} is not ready at {target}{waited} ({state[0]}: {said})")
        time.sleep(STATUS_POLL_S)


def _spec(tensor):
    if tensor.datatype not in tensors.DATATYPES:
        raise PreflightError(f"tensor {tensor.name!r} has datatype {tensor.datatype!r}; expected one of "
                             f"{', '.join(tensors.DATATYPES)}")
    return TensorSpec(tensor.name, tensors.tf_dt(tensor.datatype), tuple(tensor.shape), tensor.datatype,
                      tensors.numpy_dtype(tensor.datatype) if tensor.datatype == "BF16" else None)


def fetch_signature(channel, settings):
    """The model's inputs and outputs (``Signature``) from ModelMetadata, or None (with a notice) when the
    server does not give them. PreflightError for NOT_FOUND or an unknown datatype."""
    name = settings.model_name
    try:
        response = _call(channel, "ModelMetadata", settings, name=name, version=_version(settings))
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            raise PreflightError(f"ModelMetadata for model {name!r} failed: {e.code().name}: {e.details()}") from None
        notice(f"ModelMetadata for model {name!r} failed ({e.code().name}: {e.details()}); "
               "input name, dtype and shape are used as given")
        return None
    if not response.inputs:
        notice(f"ModelMetadata for model {name!r} lists no inputs; input name, dtype and shape are used as given")
        return None
    return Signature({t.name: _spec(t) for t in response.inputs}, {t.name: _spec(t) for t in response.outputs})


def _inspect(channel, settings, endpoint):
    check_ready(channel, settings, endpoint)
    return fetch_signature(channel, settings)


def inspect_model(settings):
    """Readiness and signature of the model under test at every endpoint (None when the server lists no
    inputs, or with ``--skip-preflight``, which makes no call). Raises PreflightError."""
    return inspect_endpoints(settings, _inspect, "model readiness and metadata")
