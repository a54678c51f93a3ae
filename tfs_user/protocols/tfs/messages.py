"""The TF Serving API messages and gRPC stubs, imported from one place.

``tensorflow-serving-api`` generates its messages against TensorFlow's own
``tensor.proto`` and so imports ``tensorflow.core.framework.*_pb2``. Importing
those the ordinary way runs ``tensorflow/__init__.py``: all of TensorFlow
(about 5 s, 600 MB RSS per process, C++ log lines on stderr, and a 300 ms
stall of Locust's ``Runner.stop()``, which walks every loaded module). Only the
generated ``*_pb2`` files are needed, so they are loaded under a bare package
object standing in for ``tensorflow`` (0.25 s, about 30 MB); the stand-in is
removed again at once, so a later ``import tensorflow`` still runs TensorFlow's
real ``__init__`` (and finds these same message modules already loaded).

The ``*_pb2_grpc`` stubs import ``grpc``, which imports ``ssl``; gevent must
monkey-patch ``ssl`` before that in a Locust process, so the stubs load lazily,
on first use (``from tfs_user.protocols.tfs.messages import model_service_pb2_grpc``), and
importing the messages alone imports neither ``grpc`` nor ``ssl``.

Where ``tensorflow`` cannot be imported (the lean install for load hosts, ``requirements-lean.txt``),
the same modules are compiled from our copies of the .proto files by grpcio-tools instead
(``tfs_user.protocols.tfs.compiled``): same packages and numbers, same bytes on the wire.
``SOURCE`` says which set this process uses. Never both in one process: protobuf's default
descriptor pool refuses a second, different file of the same name.
"""

import importlib
import importlib.util
import sys
import types


_MESSAGE_MODULES = [
    "tensorflow.core.framework.tensor_pb2",
    "tensorflow.core.protobuf.meta_graph_pb2",
    # what the two service stubs import, so that loading them later needs no TensorFlow package
    *(f"tensorflow_serving.apis.{name}_pb2" for name in (
        "predict", "get_model_metadata", "get_model_status", "classification", "regression", "inference",
        "model_management")),
]


def _tensorflow_spec():
    """The import spec of an installed ``tensorflow`` package, or None where it cannot be imported."""
    if sys.modules.get("tensorflow") is not None:
        return sys.modules["tensorflow"].__spec__
    try:
        spec = importlib.util.find_spec("tensorflow")
    except (ImportError, ValueError):
        return None
    return spec if spec is not None and spec.submodule_search_locations else None


def _load_messages(spec):
    if "tensorflow" in sys.modules:  # real TensorFlow already loaded: use it
        return
    stand_in = types.ModuleType("tensorflow")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = stand_in
    try:
        for name in _MESSAGE_MODULES:
            importlib.import_module(name)
    finally:
        if sys.modules.get("tensorflow") is stand_in:
            del sys.modules["tensorflow"]


_TF_SPEC = _tensorflow_spec()
SOURCE = "tensorflow-serving-api" if _TF_SPEC else "compiled"
"""Where the messages come from: the ``tensorflow-serving-api`` wheel, or ``compiled`` from protos/."""
if _TF_SPEC:
    _load_messages(_TF_SPEC)
else:
    from tfs_user.protocols.tfs import compiled

    compiled.load()

from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2  # noqa: E402

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
"""Full gRPC method name of ``PredictionService.Predict`` (prediction_service.proto)."""

_STUBS = ("model_service_pb2_grpc", "prediction_service_pb2_grpc")


def __getattr__(name):
    if name in _STUBS:
        if SOURCE == "compiled":
            module = compiled.stub(name)
        else:
            module = importlib.import_module(f"tensorflow_serving.apis.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'tfs_user.protocols.tfs.messages' has no attribute {name!r}")


def fill_model_spec(spec, name, version=0, version_label="", signature_name=None):
    """Fill a ``tensorflow.serving.ModelSpec`` (model_spec of PredictRequest, GetModelMetadataRequest,
    GetModelStatusRequest): ``version`` > 0 wins over ``version_label`` (the ``version_choice`` oneof);
    ``signature_name`` None leaves the field unset (GetModelStatus has none to set)."""
    spec.name = name
    if version:
        spec.version.value = version
    elif version_label:
        spec.version_label = version_label
    if signature_name:
        spec.signature_name = signature_name
    return spec


__all__ = [
    "PREDICT_METHOD",
    "SOURCE",
    "fill_model_spec",
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
