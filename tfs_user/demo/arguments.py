"""The demo server's constructor arguments checked in one place (``DemoServer.__init__``): one ValueError
line naming the value and what was expected."""

import grpc

from tfs_user.demo.model import ModelConfig


def checked_arguments(models, fail_code, metadata_code, available_after_s, workers, record_limit, metrics_port,
                      **non_negative):
    """Check ``DemoServer``'s arguments (see its docstring for each).

    ``non_negative``: name -> value of the counts and delays that must be >= 0 (delay_ms, slow_every, ...).
    Returns ``(models, fail_code, metadata_code)``: models as a dict name -> ModelConfig (default: one
    ``resnet``), the failure code as a ``grpc.StatusCode``, the metadata failure code as one or None.
    Raises ValueError (one line) for the first bad value.
    """
    models = list(models) if models is not None else [ModelConfig()]
    if not models:
        raise ValueError("models is empty; expected at least one ModelConfig")
    by_name = {m.name: m for m in models}
    if len(by_name) != len(models):
        raise ValueError(f"model names {[m.name for m in models]} are not unique")
    try:
        code = fail_code if isinstance(fail_code, grpc.StatusCode) else grpc.StatusCode[str(fail_code).upper()]
    except KeyError:
        raise ValueError(f"fail_code {fail_code!r} is not a gRPC status code name; expected e.g. UNAVAILABLE, "
                         "INTERNAL") from None
    if code == grpc.StatusCode.OK:
        raise ValueError("fail_code 'OK' is not a failure; expected e.g. UNAVAILABLE, INTERNAL")
    metadata = None
    if metadata_code is not None:
        metadata = grpc.StatusCode.__members__.get(str(metadata_code).upper())
        if metadata in (None, grpc.StatusCode.OK):
            raise ValueError(f"metadata_code {metadata_code!r} is not a failing gRPC status code name; "
                             "expected e.g. INTERNAL, UNAVAILABLE")
    if available_after_s < 0:
        raise ValueError(f"available_after_s {available_after_s} is not valid; expected seconds >= 0")
    for label, value in non_negative.items():
        if value < 0:
            raise ValueError(f"{label} {value} is not valid; expected >= 0")
    if workers < 1:
        raise ValueError(f"workers {workers} is not valid; expected >= 1")
    if record_limit < 1:
        raise ValueError(f"record_limit {record_limit} is not valid; expected >= 1")
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        raise ValueError(f"metrics_port {metrics_port} is not valid; expected 0..65535 (0 = any free port) or None")
    return by_name, code, metadata
