"""The Predict call: a request body prepared once in, the response bytes out.

Its outcome (``RpcFailure``, ``BadResponse``, ``check_response``) is ``tfs_user.protocols.tfs.outcomes``.
"""

from tfs_user.transport import engine
from tfs_user.transport.gevent_grpc import grpc  # noqa: F401  (gevent set-up before the first channel)
from tfs_user.protocols.tfs.messages import PREDICT_METHOD


def predict_call(channel):
    """``PredictionService/Predict`` on ``channel`` taking and returning raw message bytes.

    Called as ``call(body, timeout=s, metadata=pairs)`` -> response ``bytes``; raises
    ``grpc.RpcError``; it blocks only the calling greenlet. No (de)serializer is set, so a
    request body prepared once is sent as is and the response length is the exact number of
    bytes received. Its waits go through this process's completion engine
    (``tfs_user.transport.engine``, installed here, i.e. in ``on_start`` after Locust's fork).
    """
    engine.install()
    return channel.unary_unary(PREDICT_METHOD)
