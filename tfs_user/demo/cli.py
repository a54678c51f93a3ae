"""The command line of ``python -m tfs_user.demo_server``: its parser and value checks.

Every bad value is one line on stderr, ``error: ...`` naming the value and
what was expected, and exit code 2. ``main`` lives in ``tfs_user.demo.main``.
"""

import argparse

import grpc

from tfs_user.demo.metrics import FORMATS
from tfs_user.demo.model import ModelConfig


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: "error: ..." on stderr, exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message}\n")


def _int_list(text, what, allow_dynamic):
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        values = ()
    low = -1 if allow_dynamic else 1
    if not values or any(v < low or v == 0 for v in values):
        expected = "comma-separated sizes > 0 or -1, e.g. -1,224,224,3" if allow_dynamic else "comma-separated integers > 0, e.g. 1,2"
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not valid; expected {expected}")
    return values


def _shape(text):
    return _int_list(text, "shape", allow_dynamic=True)


def _versions(text):
    return _int_list(text, "versions", allow_dynamic=False)


def _non_negative(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = -1
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not valid; expected a number >= 0")
        return value
    return parse


def _port(text):
    value = _non_negative(int)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} is not valid; expected 0..65535 (0 = any free port)")
    return value


def _named_port(what):
    """A parser of a port number whose error names ``what`` ("metrics", "REST")."""
    def parse(text):
        try:
            return _port(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"{what} port {text!r} is not valid; expected 0..65535 (0 = any free port)") \
                from None
    return parse


_metrics_port = _named_port("metrics")
_rest_port = _named_port("REST")


def _metrics_format(text):
    if text.lower() not in FORMATS:
        raise argparse.ArgumentTypeError(f"metrics format {text!r} is not valid; expected {' or '.join(FORMATS)}")
    return text.lower()


def _status_code(text):
    name = text.upper()
    if name not in grpc.StatusCode.__members__ or name == "OK":
        raise argparse.ArgumentTypeError(f"fail code {text!r} is not a gRPC status code name; expected e.g. UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED")
    return name


def _model(text):
    """'NAME:SHAPE[:DELAY_MS]' (``--model small:-1,8,8,3:2``) -> (name, shape, delay_ms or None)."""
    name, _, rest = text.partition(":")
    shape_text, _, delay_text = rest.partition(":")
    try:
        shape = _shape(shape_text) if shape_text else ModelConfig().shape
        delay = _non_negative(float)(delay_text) if delay_text else None
    except argparse.ArgumentTypeError:
        name = ""
    if not name:
        raise argparse.ArgumentTypeError(f"model {text!r} is not valid; expected NAME:SHAPE[:DELAY_MS], "
                                         "e.g. small:-1,8,8,3:2")
    return name, shape, delay


def build_parser():
    """The command-line parser of ``python -m tfs_user.demo_server``."""
    d = ModelConfig()
    p = _Parser(prog="python -m tfs_user.demo_server", description="Serve a demo model over gRPC: TF Serving's API and the Open Inference Protocol "
                "(KServe v2) on one port; 'Predict' below means either inference call (Predict, ModelInfer).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=9000, help="TCP port, 0 = any free port (default: 9000)")
    p.add_argument("--rest-port", type=_rest_port, default=None, metavar="PORT",
                   help="also serve TF Serving's REST API and the Open Inference Protocol's (v2 REST, binary tensors) "
                   "on this port, 0 = any free port (default: gRPC only)")
    p.add_argument("--model-name", default=d.name, help=f"model name (default: {d.name})")
    p.add_argument("--model", type=_model, action="append", default=[], metavar="NAME:SHAPE[:DELAY_MS]",
                   help="serve this model (repeat for several models at once, each with its own name, input shape and "
                   "delay, counted and measured per model), e.g. --model small:-1,8,8,3:2 --model big:-1,64,64,3:10; "
                   "replaces --model-name/--shape; input, output and dtype options apply to each (default: one model)")
    p.add_argument("--input-name", default=d.input_name, help=f"input tensor alias (default: {d.input_name})")
    p.add_argument("--output-name", default=d.output_name, help=f"output tensor alias (default: {d.output_name})")
    p.add_argument("--dtype", default=d.dtype, help=f"input dtype, or string for encoded images (default: {d.dtype})")
    p.add_argument("--shape", type=_shape, default=d.shape,
                   help="input shape, -1 = any size; e.g. --shape=-1,3,224,224 for NCHW (default: -1,224,224,3)")
    p.add_argument("--output-size", type=_non_negative(int), default=d.output_size,
                   help=f"outputs per frame (default: {d.output_size})")
    p.add_argument("--versions", type=_versions, default=d.versions, help="served versions, e.g. 1,2 (default: 1)")
    p.add_argument("--delay-ms", type=_non_negative(float), default=0.0, help="delay of each Predict, ms (default: 0)")
    p.add_argument("--slow-every", type=_non_negative(int), default=0,
                   help="every N-th Predict uses --slow-delay-ms instead, 0 = never (default: 0)")
    p.add_argument("--slow-delay-ms", type=_non_negative(float), default=0.0, help="delay of the slow Predicts, ms (default: 0)")
    p.add_argument("--fail-every", type=_non_negative(int), default=0,
                   help="every N-th Predict fails with --fail-code, 0 = never (default: 0)")
    p.add_argument("--fail-code", type=_status_code, default="UNAVAILABLE",
                   help="gRPC status of injected failures (default: UNAVAILABLE)")
    p.add_argument("--bad-output-batch", action="store_true",
                   help="answer every Predict with batch + 1 output rows (a wrong first dimension)")
    p.add_argument("--kserve-typed-outputs", action="store_true",
                   help="answer ModelInfer in typed contents (fp32_contents) instead of raw_output_contents")
    p.add_argument("--workers", type=_non_negative(int), default=16, help="server threads = concurrent Predicts (default: 16)")
    p.add_argument("--no-metadata", action="store_true", help="answer GetModelMetadata/GetModelStatus (and ServerLive/ServerReady/ModelReady/ModelMetadata) "
                   "with UNIMPLEMENTED")
    p.add_argument("--metadata-fail-code", type=_status_code, default=None,
                   help="answer every GetModelMetadata and ModelMetadata with this gRPC status, e.g. INTERNAL "
                   "(default: answer it)")
    p.add_argument("--available-after", type=_non_negative(float), default=0.0,
                   help="seconds after start before the versions are AVAILABLE; LOADING before (default: 0)")
    p.add_argument("--metrics-port", type=_metrics_port, default=None, metavar="PORT",
                   help="serve the server's own Prometheus metrics at http://HOST:PORT/metrics, 0 = any free port "
                   "(default: no metrics page)")
    p.add_argument("--metrics-format", type=_metrics_format, default="tfs", metavar="tfs|ovms",
                   help="metric names of TF Serving (tfs) or OpenVINO Model Server (ovms) (default: tfs)")
    return p
