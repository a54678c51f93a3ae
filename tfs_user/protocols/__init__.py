"""Wire protocols behind one seam: one subpackage per API, each with an ``api`` module.

The core (user, run object, settings) reaches a protocol only through ``protocol(name)``, the
``api`` module of ``tfs_user.protocols.<name>``, which provides:

- ``VERB``: the request name's first word (``Predict``, ``ModelInfer``); request names read ``VERB MODEL``.
- ``check_settings(settings)``: raise ValueError (one line) for settings the protocol cannot send
  (a ``--dtype`` without a datatype, options that have no meaning in it).
- ``inspect_model(settings)``: pre-flight (connect wait, model status, metadata) -> ``Signature``
  (``tfs_user.data.inputs``) or None when the server gives none; raises PreflightError (ValueError).
- ``build_requests(settings, signature, sources)``: the data fitted to the signature
  (``tfs_user.data.fitting``) -> a factory whose ``request(k)`` is the serialized request of batch k,
  built once; raises InputError or DataError.
- ``open_call(channel)``: ``call(body, timeout=s, metadata=pairs) -> response bytes``, raising
  ``grpc.RpcError``; its waits go through the completion engine (``tfs_user.transport.engine``).
- ``check_response(body, batch_size, endpoint)``: None, or a ``BadResponse`` saying what is wrong.

``api`` modules import gRPC only inside ``inspect_model`` and ``open_call`` (after gevent is set up).
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


def protocol(name):
    """The ``api`` module of protocol ``name``; ValueError (one line) for a name not in NAMES."""
    if name not in NAMES:
        raise ValueError(f"--protocol {name!r} is not known; expected one of {', '.join(NAMES)}")
    return importlib.import_module(f"tfs_user.protocols.{name}.api")
