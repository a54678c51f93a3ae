"""The gRPC channel arguments of a user's channel: ours, then ``--grpc-option``'s.

Plain data (imports neither gRPC nor Locust), so that tests and tools can inspect them
without initialising gRPC for gevent in their own process.
"""

from tfs_user.transport.target import is_dns


def channel_arguments(target, transport):
    """[(key, value), ...] for a channel to ``target`` made as ``transport`` (``tfs_user.settings.Transport``).

    Message-size limits are raised on both directions (default 256 MiB), and
    reconnection backs off from 100 ms to at most 1 s (each attempt keeps gRPC's 20 s to connect), so users recover within
    a second of a restarted server instead of gRPC's default of up to 120 s. A
    ``dns:///`` target gets gRPC's ``round_robin`` policy (every resolved address,
    one subchannel each). ``transport.options`` (``--grpc-option``) come last and
    replace ours with the same key. No keepalive pings are configured: gRPC's client
    default (none) never provokes a server's GOAWAY ``too_many_pings``.
    """
    options = [
        ("grpc.max_send_message_length", transport.max_message_bytes),
        ("grpc.max_receive_message_length", transport.max_message_bytes),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        # not grpc.min_reconnect_backoff_ms: gRPC also takes it as the connect timeout of each attempt
        # (default 20 s); at 100 ms, first connections on a busy machine failed UNAVAILABLE
        # ("tcp handshaker shutdown"), and so would any server more than a short round trip away
    ]
    if is_dns(target):
        options.append(("grpc.lb_policy_name", "round_robin"))
    given = {key for key, _ in transport.options}
    return [(k, v) for k, v in options if k not in given] + list(transport.options)
