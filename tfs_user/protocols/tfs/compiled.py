"""TF Serving's messages compiled from our ``.proto`` files (``protos/``), for hosts without TensorFlow.

Used by ``tfs_user.protocols.tfs.messages`` only when ``tensorflow`` cannot be imported (the lean
install, ``requirements-lean.txt``). grpcio-tools' protoc compiles the files in memory at first
import (about 30 ms, nothing written) into the same module names the wheels have
(``tensorflow.core.framework.tensor_pb2``, ``tensorflow_serving.apis.predict_pb2``, ...): the
generated code imports its dependencies by those names. They are registered under stand-in
packages; the top-level stand-ins (``tensorflow``, ``tensorflow_serving``, ``xla``) are removed
again at once, so ``import tensorflow`` still fails as it should, while the generated modules stay
importable by their full names. Same packages and numbers as the wheels (protos/README.md), so
the bytes on the wire are the same.

Imports neither ``grpc`` nor ``ssl``: the message modules need only protobuf; the ``*_pb2_grpc``
stubs (which import ``grpc``) are compiled on first use by ``stub``.
"""

import sys
import types
from pathlib import Path

PROTOS = Path(__file__).with_name("protos")
"""The folder holding ``tensorflow/...``, ``tensorflow_serving/...`` and ``xla/...`` .proto files."""

SERVICES = {
    "prediction_service_pb2_grpc": "tensorflow_serving/apis/prediction_service.proto",
    "model_service_pb2_grpc": "tensorflow_serving/apis/model_service.proto",
}
"""Stub module name -> the .proto whose service it holds; compiling both gives every message we use."""

_TOP_LEVEL = ("tensorflow", "tensorflow_serving", "xla")


def _include_paths():
    import grpc_tools  # an empty package __init__: no grpc, no ssl

    return [str(PROTOS).encode(), str(Path(grpc_tools.__file__).with_name("_proto")).encode()]


def _module_name(filename):
    """``b"tensorflow/core/framework/tensor_pb2.py"`` -> ``"tensorflow.core.framework.tensor_pb2"``."""
    return filename.decode().removesuffix(".py").replace("/", ".")


def _package(name):
    """The (stand-in) package ``name`` and its parents, created empty where missing."""
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__path__ = []
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(_package(parent), child, module)
    return module


def _execute(name, code, origin):
    module = types.ModuleType(name)
    module.__file__ = str(PROTOS / origin)
    parent, _, child = name.rpartition(".")
    package = _package(parent)
    sys.modules[name] = module
    try:
        exec(compile(code, module.__file__, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    setattr(package, child, module)
    return module


def load():
    """Compile and register every message module of ``SERVICES``' .proto files and what they import.

    Raises ImportError when grpcio-tools is missing, RuntimeError when protoc reports an error.
    """
    from grpc_tools import _protoc_compiler

    added = [name for name in _TOP_LEVEL if name not in sys.modules]
    try:
        for proto in SERVICES.values():
            for filename, code in _protoc_compiler.get_protos(proto.encode(), _include_paths()):
                name = _module_name(filename)
                if name.startswith("google.") or name in sys.modules:  # protobuf's own well-known types
                    continue
                _execute(name, code, proto)
    finally:
        for name in added:
            sys.modules.pop(name, None)


def stub(module_name):
    """The gRPC stub module ``module_name`` (a key of ``SERVICES``), compiled now; imports ``grpc``."""
    from grpc_tools import _protoc_compiler

    proto = SERVICES[module_name]
    filename, code = _protoc_compiler.get_services(proto.encode(), _include_paths())[-1]
    return _execute(_module_name(filename), code, proto)
