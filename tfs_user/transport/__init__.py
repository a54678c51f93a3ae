"""Transport: targets and endpoints, gRPC channels under gevent, the TLS probe, the completion engine."""
