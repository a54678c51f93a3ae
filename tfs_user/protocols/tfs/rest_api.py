"""TF Serving's REST API behind the protocol seam (``tfs_user.protocols``): ``POST /v1/models/NAME:predict``.

The same protocol as ``api`` (gRPC) on the other transport: the same request names, fitting and checks.
"""

from tfs_user.protocols.tfs import api
from tfs_user.protocols.tfs.rest import build_requests, check_response, model_path  # noqa: F401  (the seam's)
from tfs_user.protocols.tfs.rest_preflight import inspect_model  # noqa: F401  (the seam's pre-flight)

VERB = api.VERB


def check_settings(settings):
    """As over gRPC, and ``--output-names`` (no output filter in TF Serving's REST API) stops with one line."""
    if settings.output_names:
        raise ValueError("--output-names has no counterpart in TF Serving's REST API (predict answers every output); "
                         "leave it out, or use gRPC (HOST:PORT)")
    api.check_settings(settings)


def open_call(connection, settings):
    """``POST .../NAME:predict`` on the user's ``HttpConnection``: ``call(body, ...)`` -> answer bytes (HttpFailure)."""
    from tfs_user.protocols.rest import open_post

    post = open_post(connection, model_path(settings) + ":predict")

    def call(body, timeout=None, metadata=None):
        return post(body)[1]

    return call
