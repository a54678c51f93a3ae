"""The Open Inference Protocol's REST API behind the protocol seam (``tfs_user.protocols``): ``POST .../infer``.

The same protocol as ``api`` (gRPC) on the other transport: the same request names, settings checks,
fitting and answer checks; tensors as JSON or binary (``--binary-data``).
"""

from tfs_user.protocols.kserve import api
from tfs_user.protocols.kserve.rest import HEADER_LENGTH, Answer, check_response, model_path  # noqa: F401
from tfs_user.protocols.kserve.rest_preflight import binary, inspect_model  # noqa: F401  (the seam's pre-flight)

VERB = api.VERB
check_settings = api.check_settings


def build_requests(settings, signature, sources):
    """Infer bodies (binary when ``--binary-data`` and the server say so, see ``rest_preflight.binary``)."""
    from tfs_user.data.inputs import notice
    from tfs_user.protocols.kserve.rest import build_requests as build

    use_binary = binary(settings)
    notice(f"tensors go as {'binary data (Inference-Header-Content-Length)' if use_binary else 'JSON'} "
           f"(--binary-data {settings.binary_data})")
    return build(settings, signature, sources, use_binary)


def open_call(connection, settings):
    """``POST .../infer`` on the user's ``HttpConnection``: ``call(body, ...)`` -> ``Answer`` (HttpFailure)."""
    from tfs_user.protocols.rest import open_post

    post = open_post(connection, model_path(settings) + "/infer")

    def call(body, timeout=None, metadata=None):
        headers, data = post(body)
        length = headers.get(HEADER_LENGTH)
        return Answer(data, length)  # read (and refused when not a number) by the answer check

    return call
