"""The demo server's Open Inference Protocol: ``inference.GRPCInferenceService`` on the same port as TF Serving's API.

ModelInfer goes through ``DemoServer.serve_inference`` (counts, recording, injected delays and
failures, shared with Predict); the messages are answered by ``tfs_user.demo.kserve_handlers``.
Registered with a generic handler over our messages (``tfs_user.protocols.kserve.messages``):
no generated service stubs.
"""

import functools

import grpc

from tfs_user.demo import kserve_handlers
from tfs_user.demo.inference import Abort
from tfs_user.protocols.kserve.messages import SERVICE, pb2


def add_to_server(owner, server):
    """Register ``inference.GRPCInferenceService`` of DemoServer ``owner`` on the ``grpc.Server`` ``server``.

    Without ``owner.metadata``, ServerLive, ServerReady, ModelReady and ModelMetadata answer UNIMPLEMENTED
    (as the TF Serving metadata calls do: a server without readiness or metadata calls); ServerMetadata
    and ModelInfer are always served.
    """
    calls = {"ServerLive": _server_live, "ServerReady": _server_ready, "ModelReady": _model_ready,
             "ServerMetadata": _server_metadata, "ModelMetadata": _model_metadata, "ModelInfer": _model_infer}
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            functools.partial(call, owner), request_deserializer=getattr(pb2, f"{name}Request").FromString,
            response_serializer=getattr(pb2, f"{name}Response").SerializeToString)
        for name, call in calls.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def _unless_metadata(owner, context):
    """Abort UNIMPLEMENTED when ``owner`` serves no metadata (``DemoServer(metadata=False)``)."""
    if not owner.metadata:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")


def _server_live(owner, request, context):
    _unless_metadata(owner, context)
    return pb2.ServerLiveResponse(live=True)


def _server_ready(owner, request, context):
    _unless_metadata(owner, context)
    return pb2.ServerReadyResponse(ready=not owner.loading())


def _server_metadata(owner, request, context):
    return pb2.ServerMetadataResponse(name=kserve_handlers.PLATFORM, version="1", extensions=[])


def _model_ready(owner, request, context):
    owner.note_call(owner.status_times)
    _unless_metadata(owner, context)
    try:
        return kserve_handlers.ready(owner.models, request, loading=owner.loading())
    except Abort as e:
        context.abort(e.code, e.details)


def _model_metadata(owner, request, context):
    owner.note_call(owner.metadata_times)
    _unless_metadata(owner, context)
    if owner.metadata_code is not None:
        context.abort(owner.metadata_code, "injected metadata failure")
    try:
        owner.check_loaded(request.name)
        return kserve_handlers.metadata(owner.models, request)
    except Abort as e:
        context.abort(e.code, e.details)


class _Protocol:
    """``serve_inference``'s view of ModelInfer: the handlers, with the owner's choice of typed outputs."""

    def __init__(self, typed_outputs):
        self.typed_outputs = typed_outputs

    receipt = staticmethod(kserve_handlers.receipt)
    model_name = staticmethod(kserve_handlers.model_name)

    def predict(self, models, request, bad_output_batch):
        return kserve_handlers.predict(models, request, bad_output_batch, self.typed_outputs)


def _model_infer(owner, request, context):
    return owner.serve_inference(request, context, _Protocol(owner.kserve_typed_outputs))
