"""The ModelInfer call: a request body prepared once in, the response bytes out."""

from tfs_user.transport import engine
from tfs_user.transport.gevent_grpc import grpc  # noqa: F401  (gevent set-up before the first channel)
from tfs_user.protocols.kserve.messages import MODEL_INFER_METHOD


def open_call(channel, settings=None):
    """``GRPCInferenceService/ModelInfer`` on ``channel`` (``settings``: not needed over gRPC) taking and returning raw message bytes.

    Called as ``call(body, timeout=s, metadata=pairs)`` -> response ``bytes``; raises
    ``grpc.RpcError``; blocks only the calling greenlet (waits go through the completion engine,
    ``tfs_user.transport.engine``, installed here, i.e. in ``on_start`` after Locust's fork).
    """
    engine.install()
    return channel.unary_unary(MODEL_INFER_METHOD)
