"""The Open Inference Protocol's messages, loaded from our ``.proto`` by grpcio-tools at first import.

``open_inference_grpc.proto`` (next to this file) is written from the published specification
(kserve/open-inference-protocol); ``grpc.protos`` compiles it in memory (about 60 ms, no files
written, no TensorFlow). Chosen over tritonclient's ``service_pb2``: tritonclient[grpc] pins
protobuf < 7, which TensorFlow's messages do not need, and pulls its own HTTP stack; grpcio-tools
is 8 MB and follows grpcio's version.

Imports ``grpc``: in a Locust process import this after Locust (gevent patches ``ssl`` first),
as the protocol's ``api`` does (inside its functions only).
"""

import sys
from pathlib import Path

import grpc

SERVICE = "inference.GRPCInferenceService"
"""Full name of the gRPC service, as servers register it."""
MODEL_INFER_METHOD = f"/{SERVICE}/ModelInfer"
"""Full gRPC method name of ``ModelInfer``."""

_ROOT = Path(__file__).resolve().parents[3]  # the folder holding the tfs_user package
_PROTO = "tfs_user/protocols/kserve/open_inference_grpc.proto"


def _load():
    added = str(_ROOT) not in sys.path  # grpcio-tools finds the .proto on sys.path
    if added:
        sys.path.append(str(_ROOT))
    try:
        return grpc.protos(_PROTO)
    finally:
        if added:
            sys.path.remove(str(_ROOT))


pb2 = _load()
"""The generated message module: ``pb2.ModelInferRequest``, ``pb2.ModelMetadataResponse``, ..."""
