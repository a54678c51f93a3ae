"""A user's connection to one endpoint, whatever the transport: a gRPC channel or an HTTP connection.

``Settings.http`` (the scheme of ``--host``: ``http://``/``https://``) picks it; either has ``close()``.
The protocol's ``open_call`` (``tfs_user.protocols``) turns it into the inference call. Imports gRPC or
geventhttpclient only when called.
"""


def connect(endpoint, settings):
    """A channel (gRPC) or a keep-alive ``HttpConnection`` (HTTP) to ``endpoint`` (``HOST:PORT``) for ``settings``."""
    if settings.http:
        from tfs_user.transport.http_client import open_connection

        return open_connection(endpoint, settings)
    from tfs_user.transport.channel import open_channel

    return open_channel(endpoint, settings.transport)


def wait_until_reachable(endpoint, timeout_s, settings):
    """Block until ``endpoint`` answers on the transport of ``settings``, for at most ``timeout_s`` seconds;
    ConnectionError (one line, naming the scheme to use) when it does not or speaks another transport."""
    if settings.http:
        from tfs_user.transport.http_probe import wait_until_reachable as wait

        return wait(endpoint, timeout_s, settings.transport)
    from tfs_user.transport.channel import wait_until_reachable as wait

    return wait(endpoint, timeout_s, settings.transport)
