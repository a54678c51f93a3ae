"""Command-line / config-file / environment options of the TFS user, and their validation.

Options are added on Locust's parser (not on an argument group: groups break
``include_in_web_ui``), in kebab-case, each with an ``env_var`` and a typed,
non-None default. The old scripts' spellings (``--batchsize``,
``--images_numpy_path``, ``--grpc_port`` ...) are accepted as aliases.

Options reach worker processes only when the master spawns users, so
``Settings.from_options`` is called in ``test_start``/``on_start``, never in ``init``.
"""

import argparse
from dataclasses import dataclass

from tfs_user.client import TargetError, parse_target

DEFAULT_HOST = "localhost:9000"


def _int_at_least(minimum, what):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected {what}")
        return value

    return parse


def _float_at_least(minimum, what, strictly=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected {what}") from None
        if value != value or value < minimum or (strictly and value == minimum):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected {what}")
        return value

    return parse


def _port(text):
    value = _int_at_least(0, "a port number 1..65535")(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected a port number 1..65535")
    return value


def _ratio(text):
    value = _float_at_least(0.0, "a ratio between 0 and 1")(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected a ratio between 0 and 1")
    return value


# (flags, env var, keyword arguments); the first flag names the option.
OPTIONS = [
    (("--images-numpy-path", "--images_numpy_path"), dict(default="", help="Input images: a .npy file [n,h,w,c] or [n,c,h,w], sent as stored. Empty: synthetic frames of --synthetic-shape. Default: empty")),
    (("--synthetic-shape",), dict(default="224,224,3", help="Shape of one synthetic float32 frame when no numpy file is given. Default: 224,224,3")),
    (("--model-name", "--model_name"), dict(default="resnet", help="ModelSpec.name of the served model. Default: resnet")),
    (("--model-version", "--model_version"), dict(type=_int_at_least(0, "a version number >= 0 (0 = latest)"), default=0, help="ModelSpec.version; 0 = the latest version. Default: 0")),
    (("--model-version-label",), dict(default="", help="ModelSpec.version_label (e.g. stable); used when --model-version is 0. Default: empty")),
    (("--signature-name", "--signature_name"), dict(default="serving_default", help="ModelSpec.signature_name. Default: serving_default")),
    (("--input-name", "--input_name"), dict(default="input", help="Name of the input tensor in the signature. Default: input")),
    (("--batch-size", "--batchsize", "--batch_size"), dict(type=_int_at_least(1, "an integer >= 1"), default=1, help="Images per request (frames). Default: 1")),
    (("--iterations", "--tfs-iterations"), dict(dest="tfs_iterations", type=_int_at_least(-1, "-1 (no limit), 0 (one pass over the file) or N > 0"), default=-1, help="Measured requests per user, then the user stops; the run ends when all users are done. 0 = one pass over the file; -1 = until --run-time or stop. Default: -1")),
    (("--warmup-iterations",), dict(type=_int_at_least(0, "an integer >= 0"), default=1, help="Requests per user sent before measuring (the first carries connection set-up); reported as 'Predict MODEL (warm-up)'. Default: 1")),
    (("--report-every", "--report_every"), dict(type=_int_at_least(0, "an integer >= 0"), default=0, help="Log a progress line per user every N requests, like the old script; 0 = off. Default: 0")),
    (("--timeout",), dict(type=_float_at_least(0.0, "a deadline in seconds > 0", strictly=True), default=10.0, help="gRPC deadline per request, in seconds. Default: 10")),
    (("--grpc-address", "--grpc_address"), dict(default="", help="Server address, old-script style; used when --host is not given. Default: localhost")),
    (("--grpc-port", "--grpc_port"), dict(type=_port, default=0, help="Server port, old-script style; used when --host is not given. Default: 9000")),
    (("--request-cache-mb",), dict(type=_int_at_least(0, "an integer >= 0 (MiB)"), default=512, help="Memory per process for prepared request bodies, in MiB; beyond it bodies are built before each call. Default: 512")),
    (("--demo-server",), dict(action="store_true", default=False, help="Start the bundled demo TFS server on a free loopback port and test it (no --host needed)")),
    (("--demo-server-args",), dict(default="", help="Extra arguments for the demo server, e.g. '--delay-ms 2'. Default: empty")),
    (("--status-interval",), dict(type=_float_at_least(0.0, "seconds >= 0"), default=5.0, help="Seconds between console status lines in headless runs; 0 = off. Default: 5")),
    (("--json-summary",), dict(default="", help="Write the final TFS summary as JSON to this file. Default: none")),
    (("--slo-p99-ms",), dict(type=_float_at_least(0.0, "milliseconds >= 0"), default=0.0, help="Exit non-zero when the overall p99 latency exceeds this many ms; 0 = off. Default: 0")),
    (("--slo-min-fps",), dict(type=_float_at_least(0.0, "frames/s >= 0"), default=0.0, help="Exit non-zero when overall FPS is below this; 0 = off. Default: 0")),
    (("--slo-max-fail-ratio",), dict(type=_ratio, default=1.0, help="Exit non-zero when failures/requests exceeds this ratio (0..1); 1 = off. Default: 1")),
]


def add_options(parser):
    """Register the options on Locust's parser (``init_command_line_parser`` listener).

    locust-plugins, which Locust imports first when it is installed, owns
    ``-i/--iterations`` (a per-process count); then ours is ``--tfs-iterations`` only.
    """
    taken = getattr(parser, "_option_string_actions", {})
    for flags, kwargs in OPTIONS:
        env_var = "TFS_" + flags[0].lstrip("-").replace("-", "_").upper()
        flags = [f for f in flags if f not in taken]
        parser.add_argument(*flags, env_var=env_var, **kwargs)


class OptionError(ValueError):
    """An option value that cannot be used; one line naming the value and what was expected."""


def parse_shape(text, option="--synthetic-shape"):
    """'224,224,3' -> (224, 224, 3); raises OptionError unless all dims are integers >= 1."""
    try:
        shape = tuple(int(d) for d in text.replace(" ", "").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise OptionError(f"{option} {text!r} is not a shape; expected dims >= 1 separated by commas, e.g. 224,224,3")
    return shape


def resolve_target(host, grpc_address="", grpc_port=0):
    """The gRPC target from ``--host`` (first), else ``--grpc-address``/``--grpc-port``, else localhost:9000."""
    if not host and (grpc_address or grpc_port):
        host = f"{grpc_address or 'localhost'}:{grpc_port or 9000}"
    try:
        return parse_target(host or DEFAULT_HOST)
    except TargetError as e:
        raise OptionError(str(e)) from None


@dataclass(frozen=True)
class Settings:
    """What one TFS user needs, validated. ``timeout_s`` in seconds; ``iterations`` -1/0/N as the option."""

    target: str = DEFAULT_HOST
    model_name: str = "resnet"
    model_version: int = 0
    version_label: str = ""
    signature_name: str = "serving_default"
    input_name: str = "input"
    images_numpy_path: str = ""
    synthetic_shape: tuple = (224, 224, 3)
    batch_size: int = 1
    iterations: int = -1
    warmup_iterations: int = 1
    report_every: int = 0
    timeout_s: float = 10.0
    request_cache_mb: int = 512

    def __post_init__(self):
        checks = [
            (self.batch_size >= 1, f"batch size {self.batch_size} is not valid; expected an integer >= 1"),
            (self.iterations >= -1, f"iterations {self.iterations} is not valid; expected -1, 0 or N > 0"),
            (self.warmup_iterations >= 0, f"warm-up iterations {self.warmup_iterations} is not valid; expected >= 0"),
            (self.timeout_s > 0, f"timeout {self.timeout_s} is not valid; expected seconds > 0"),
            (bool(self.model_name), "model name is empty; expected the ModelSpec.name of a served model"),
            (bool(self.input_name), "input name is empty; expected the name of the model's input tensor"),
        ]
        for ok, message in checks:
            if not ok:
                raise OptionError(message)

    @classmethod
    def from_options(cls, options, host=None):
        """Settings from Locust's ``parsed_options`` (+ ``environment.host``); raises OptionError."""
        return cls(
            target=resolve_target(host or "", options.grpc_address, options.grpc_port),
            model_name=options.model_name,
            model_version=int(options.model_version),
            version_label=options.model_version_label,
            signature_name=options.signature_name,
            input_name=options.input_name,
            images_numpy_path=options.images_numpy_path,
            synthetic_shape=parse_shape(options.synthetic_shape),
            batch_size=int(options.batch_size),
            iterations=int(options.tfs_iterations),
            warmup_iterations=int(options.warmup_iterations),
            report_every=int(options.report_every),
            timeout_s=float(options.timeout),
            request_cache_mb=int(options.request_cache_mb),
        )
