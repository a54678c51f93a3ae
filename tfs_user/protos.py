"""The TF Serving API messages and gRPC stubs, imported from one place.

``tensorflow-serving-api`` generates its messages against TensorFlow's own
``tensor.proto``; importing them imports all of TensorFlow (about 2-5 s and
600 MB RSS). TensorFlow 2.21 prints C++ log lines (oneDNN, "Could not find cuda
drivers") to file descriptor 2 before its log level applies, on every start;
they are captured during the import and shown only if the import fails.
"""

import os
import sys
import tempfile


def _import_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow.core.framework.tensor_pb2  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


if "tensorflow" not in sys.modules:
    _import_quietly()

from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
"""Full gRPC method name of ``PredictionService.Predict`` (prediction_service.proto)."""

__all__ = [
    "PREDICT_METHOD",
    "get_model_metadata_pb2",
    "get_model_status_pb2",
    "meta_graph_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_service_pb2_grpc",
    "tensor_pb2",
    "tensor_shape_pb2",
    "types_pb2",
]
