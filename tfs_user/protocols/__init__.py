"""Wire protocols behind one seam: one subpackage per API, each with an ``api`` module per transport.

The core (user, run object, settings) reaches a protocol only through ``protocol(name, http)``: the
``api`` module of ``tfs_user.protocols.<name>`` (gRPC), or its ``rest_api`` module (HTTP: the same
protocol's REST API, when ``--host`` is ``http://`` or ``https://``). Each provides:

- ``VERB``: the request name's first word (``Predict``, ``ModelInfer``); request names read ``VERB MODEL``.
- ``check_settings(settings)``: raise ValueError (one line) for settings the protocol cannot send
  (a ``--dtype`` without a datatype, options that have no meaning in it).
- ``inspect_model(settings)``: pre-flight (connect wait, model status, metadata) -> ``Signature``
  (``tfs_user.data.inputs``) or None when the server gives none; raises PreflightError (ValueError).
- ``build_requests(settings, signature, sources)``: the data fitted to the signature
  (``tfs_user.data.fitting``) -> a factory whose ``request(k)`` is the serialized request of batch k,
  built once; raises InputError or DataError.
- ``open_call(connection, settings)``: on the user's connection (``tfs_user.transport.connect``: a gRPC
  channel or an ``HttpConnection``), ``call(body, timeout=s, metadata=pairs) -> response`` (bytes, or an
  object with ``len``), raising ``grpc.RpcError`` (gRPC; its waits go through the completion engine,
  ``tfs_user.transport.engine``) or ``HttpFailure`` (HTTP).
- ``check_response(body, batch_size, endpoint, outputs)``: None, or a ``BadResponse`` saying what is wrong
  (``outputs``: the names ``--output-names`` asked for, each of which must be in the answer).

``api`` modules import gRPC only inside ``inspect_model`` and ``open_call`` (after gevent is set up).
Request names (``VERB MODEL``) are the same on both transports, so CSVs of both compare row by row.
"""

import importlib

NAMES = ("tfs", "kserve")
"""The protocols ``--protocol`` accepts."""


def check_dtype(text, datatype_of):
    """Raise ValueError (one line, naming ``--dtype``) unless ``text`` is a numpy dtype that ``datatype_of``
    (a protocol's numpy dtype -> its type, raising ValueError) can send."""
    import numpy as np

    try:
        dtype = np.dtype(text)
    except TypeError:
        raise ValueError(f"--dtype {text!r} is not a numpy dtype; expected e.g. float32, uint8") from None
    try:
        datatype_of(dtype)
    except ValueError as e:
        raise ValueError(f"--dtype: {e}") from None


def protocol(name, http=False):
    """The seam module of protocol ``name`` on a transport: ``api`` (gRPC) or ``rest_api`` (``http``: its REST
    API); ValueError (one line) for a name not in NAMES."""
    if name not in NAMES:
        raise ValueError(f"--protocol {name!r} is not known; expected one of {', '.join(NAMES)}")
    return importlib.import_module(f"tfs_user.protocols.{name}.{'rest_api' if http else 'api'}")
