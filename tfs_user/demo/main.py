"""``python -m tfs_user.demo`` (also ``python -m tfs_user.demo_server``): run the demo server until SIGINT/SIGTERM.

Options: ``tfs_user.demo.cli.build_parser``; bad values end with one line and exit code 2.
"""

import signal
import sys
import threading

from tfs_user.demo.cli import build_parser
from tfs_user.demo.model import ModelConfig
from tfs_user.demo.server import DemoServer


def main(argv=None):
    """Run the demo server until SIGINT/SIGTERM; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        served = args.model or [(args.model_name, args.shape, None)]
        models = [ModelConfig(name=name, input_name=args.input_name, dtype=args.dtype, shape=shape, delay_ms=delay,
                              output_name=args.output_name, output_size=args.output_size, versions=args.versions)
                  for name, shape, delay in served]
        server = DemoServer(models, host=args.host, port=args.port, delay_ms=args.delay_ms,
                            slow_every=args.slow_every, slow_delay_ms=args.slow_delay_ms, fail_every=args.fail_every,
                            fail_code=args.fail_code, workers=args.workers, metadata=not args.no_metadata,
                            bad_output_batch=args.bad_output_batch, metadata_code=args.metadata_fail_code,
                            available_after_s=args.available_after, kserve_typed_outputs=args.kserve_typed_outputs,
                            metrics_port=args.metrics_port, metrics_format=args.metrics_format,
                            rest_port=args.rest_port)
    except ValueError as e:
        parser.error(str(e))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rest = f" (REST on {server.rest_address})" if server.rest_address else ""
    print(f"demo server listening on {server.address}{rest}", flush=True)  # the first line: tfs_user.demo.process reads it
    if server.metrics_url:
        print(f"demo server metrics on {server.metrics_url}", flush=True)
    while not stop.wait(0.5):
        pass
    left = server.stop(grace=1.0)
    c = server.counts()
    print(f"demo server served {c['requests']} requests ({c['ok']} ok, {c['failed']} failed, {c['cancelled']} "
          f"cancelled{f', {left} still in a handler' if left else ''}), {c['frames']} frames", flush=True)
    if len(models) > 1:  # per model, as the calls named it
        for name, m in sorted(c["models"].items()):
            print(f"demo server model {name}: {m['requests']} requests ({m['ok']} ok, {m['failed']} failed, "
                  f"{m['cancelled']} cancelled), {m['frames']} frames", flush=True)
    return 0
