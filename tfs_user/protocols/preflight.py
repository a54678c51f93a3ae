"""What every protocol's pre-flight shares: its error, the poll interval, and checking each endpoint.

A protocol's ``preflight`` module asks one endpoint (readiness, then the model's inputs and
outputs); ``inspect_endpoints`` asks every endpoint of the settings and requires replicas of
one model. Opens channels or HTTP connections (``tfs_user.transport.connect``): import it where gRPC may load.
"""

from tfs_user.data.inputs import notice
from tfs_user.transport.connect import connect

STATUS_POLL_S = 1.0
"""Seconds between readiness polls while waiting for a model (``--wait-for-model``)."""


class PreflightError(ValueError):
    """The model cannot be tested as asked; one line saying what the server reported."""


def inspect_endpoints(settings, inspect_one, skipped):
    """``inspect_one(connection, settings, endpoint)`` (a channel, or an HTTP connection) -> Signature or None at every endpoint of ``settings``;
    the signature all of them give. With ``--skip-preflight`` no call is made: notice ``skipped``, None.

    Raises PreflightError (naming the endpoint when there are several) from ``inspect_one``, or when
    two endpoints give different signatures.
    """
    if settings.skip_preflight:
        notice(f"--skip-preflight: {skipped} not asked; input name, dtype and shape are used as given")
        return None
    endpoints = settings.endpoints
    signatures = {}
    for endpoint in endpoints:
        channel = connect(endpoint, settings)
        try:
            signatures[endpoint] = inspect_one(channel, settings, endpoint)
        except PreflightError as e:
            if len(endpoints) == 1:
                raise
            raise PreflightError(f"endpoint {endpoint}: {e}") from None
        finally:
            channel.close()
    first, signature = next(iter(signatures.items()))
    for endpoint, other in signatures.items():
        if other != signature:
            raise PreflightError(f"endpoints {first} and {endpoint} serve model {settings.model_name!r} with different "
                                 f"signatures ({signature} vs {other}); expected replicas of one model")
    return signature
