"""The demo server's TF Serving API: ``PredictionService`` (Predict, GetModelMetadata) and ``ModelService``.

Predict goes through ``DemoServer.serve_inference`` (counts, recording, injected delays and
failures, shared with any other protocol the server speaks); the messages are decoded and
answered by ``tfs_user.demo.handlers``.
"""

import grpc

from tfs_user.demo import handlers
from tfs_user.demo.handlers import Abort
from tfs_user.protocols.tfs.messages import model_service_pb2_grpc, prediction_service_pb2_grpc


def add_to_server(owner, server):
    """Register the TF Serving services of DemoServer ``owner`` on the ``grpc.Server`` ``server``.

    Without ``owner.metadata``, GetModelMetadata answers UNIMPLEMENTED and ModelService is not served.
    """
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_PredictionService(owner), server)
    if owner.metadata:
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(owner), server)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, owner):
        self._owner = owner

    def Predict(self, request, context):
        return self._owner.serve_inference(request, context, handlers)

    def GetModelMetadata(self, request, context):
        owner = self._owner
        owner.note_call(owner.metadata_times)
        if not owner.metadata:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
        if owner.metadata_code is not None:
            context.abort(owner.metadata_code, "injected metadata failure")
        try:
            owner.check_loaded(request.model_spec.name)
            return handlers.metadata(owner.models, request)
        except Abort as e:
            context.abort(e.code, e.details)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, owner):
        self._owner = owner

    def GetModelStatus(self, request, context):
        owner = self._owner
        owner.note_call(owner.status_times)
        try:
            return handlers.status(owner.models, request, loading=owner.loading())
        except Abort as e:
            context.abort(e.code, e.details)
