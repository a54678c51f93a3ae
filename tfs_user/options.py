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

import numpy as np

from tfs_user.client import TargetError, Transport, is_tls, parse_target
from tfs_user.tensors import dtype_to_dt

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


LAYOUTS = ["auto", "keep", "nhwc-to-nchw", "nchw-to-nhwc"]
UI_KEYWORDS = ("include_in_web_ui", "is_secret", "is_required", "is_multiple")


class _JoinAction(argparse.Action):
    """A repeatable string option kept as one comma-separated string (the web UI needs a str default)."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, "") or ""
        setattr(namespace, self.dest, f"{current},{values}" if current else values)


def _bool(text):
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean; expected true or false")


def _ratio(text):
    value = _float_at_least(0.0, "a ratio between 0 and 1")(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected a ratio between 0 and 1")
    return value


def _checked_by(parse, expected_error):
    """An argparse type that checks ``text`` with ``parse`` (raising ``expected_error``) and keeps the text."""

    def check(text):
        try:
            parse(text)
        except expected_error as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return text

    return check


def _sweep_text(text):
    from tfs_user.sweep import SweepError, parse_sweep
    return _checked_by(parse_sweep, SweepError)(text) if text else text


def _duration_text(text):
    from tfs_user.sweep import SweepError, parse_duration
    return _checked_by(parse_duration, SweepError)(text)


# (flags, env var, keyword arguments); the first flag names the option.
OPTIONS = [
    (("--images-numpy-path", "--images_numpy_path"), dict(default="", help="Input images: a .npy file [n,h,w,c] or [n,c,h,w], sent as stored. Empty: synthetic frames of --synthetic-shape. Default: empty")),
    (("--input",), dict(action=_JoinAction, default="", help="NAME=FILE.npy for a model with several inputs (repeatable, or comma-separated); all files are sliced in step. Default: none")),
    (("--images-dir",), dict(default="", help="Folder of JPEG/PNG files sent as encoded bytes to a DT_STRING input (e.g. image_bytes). Default: none")),
    (("--synthetic-shape",), dict(default="", help="Shape of one synthetic frame when no numpy file is given. Default: from the model's signature, else 224,224,3")),
    (("--model-name", "--model_name"), dict(default="resnet", help="ModelSpec.name of the served model. Default: resnet")),
    (("--model-version", "--model_version"), dict(type=_int_at_least(0, "a version number >= 0 (0 = latest)"), default=0, help="ModelSpec.version; 0 = the latest version. Default: 0")),
    (("--model-version-label",), dict(default="", help="ModelSpec.version_label (e.g. stable); used when --model-version is 0. Default: empty")),
    (("--signature-name", "--signature_name"), dict(default="serving_default", help="ModelSpec.signature_name. Default: serving_default")),
    (("--input-name", "--input_name"), dict(default="", help="Name of the input tensor in the signature. Default: the signature's only input (from GetModelMetadata), else 'input'")),
    (("--batch-size", "--batchsize", "--batch_size"), dict(type=_int_at_least(1, "an integer >= 1"), default=1, help="Images per request (frames). Default: 1")),
    (("--iterations", "--tfs-iterations"), dict(dest="tfs_iterations", type=_int_at_least(-1, "-1 (no limit), 0 (one pass over the file) or N > 0"), default=-1, help="Measured requests per user, then the user stops; the run ends when all users are done. 0 = one pass over the file; -1 = until --run-time or stop. Default: -1")),
    (("--warmup-iterations",), dict(type=_int_at_least(0, "an integer >= 0"), default=1, help="Requests per user sent before measuring (the first carries connection set-up); reported as 'Predict MODEL (warm-up)'. Default: 1")),
    (("--report-every", "--report_every"), dict(type=_int_at_least(0, "an integer >= 0"), default=0, help="Log a progress line per user every N requests, like the old script; 0 = off. Default: 0")),
    (("--timeout",), dict(type=_float_at_least(0.0, "a deadline in seconds > 0", strictly=True), default=10.0, help="gRPC deadline per request, in seconds. Default: 10")),
    (("--grpc-address", "--grpc_address"), dict(default="", help="Server address, old-script style; used when --host is not given. Default: localhost")),
    (("--grpc-port", "--grpc_port"), dict(type=_port, default=0, help="Server port, old-script style; used when --host is not given. Default: 9000")),
    (("--request-cache-mb",), dict(type=_int_at_least(0, "an integer >= 0 (MiB)"), default=512, help="Memory per process for prepared request bodies, in MiB; beyond it bodies are built before each call. Default: 512")),
    (("--dtype",), dict(default="", help="Send the input as this numpy dtype (e.g. float32, uint8). Default: the model's input dtype from its signature, else as stored")),
    (("--layout",), dict(choices=LAYOUTS, default="auto", help="auto: move the channel axis when only that makes the file fit the model's signature; keep: send as stored; nhwc-to-nchw / nchw-to-nhwc: always move it. Default: auto")),
    (("--wait-for-model",), dict(type=_float_at_least(0.0, "seconds >= 0"), default=0.0, help="Seconds to wait for the model version to become AVAILABLE (ModelService/GetModelStatus) before failing. Default: 0")),
    (("--validate-outputs",), dict(type=_bool, default=True, help="Count a response without outputs, or whose first dimension is not the batch size, as a failure (true/false). Default: true")),
    (("--max-message-mb",), dict(type=_int_at_least(1, "MiB >= 1"), default=256, help="gRPC send/receive message limit on each channel, MiB (gRPC's own receive default is 4 MB). Default: 256")),
    (("--grpc-compression",), dict(choices=["none", "gzip", "deflate"], default="none", help="Compress requests. Default: none")),
    (("--grpc-metadata",), dict(action=_JoinAction, default="", is_secret=True, help="KEY=VALUE sent as gRPC metadata with every call; repeat the option or separate pairs with commas; values are never printed. Default: none")),
    (("--grpc-tls-ca",), dict(default="", help="PEM file of root certificates for grpcs:// hosts. Default: the system's")),
    (("--grpc-tls-cert",), dict(default="", help="PEM client certificate for mutual TLS (with --grpc-tls-key). Default: none")),
    (("--grpc-tls-key",), dict(default="", is_secret=True, help="PEM client private key for mutual TLS (with --grpc-tls-cert). Default: none")),
    (("--grpc-tls-server-name",), dict(default="", help="Server name to verify instead of the host's (TLS). Default: the host")),
    (("--demo-server",), dict(action="store_true", default=False, help="Start the bundled demo TFS server on a free loopback port and test it (no --host needed)")),
    (("--demo-server-args",), dict(default="", help="Extra arguments for the demo server, e.g. '--delay-ms 2'. Default: empty")),
    (("--status-interval",), dict(type=_float_at_least(0.0, "seconds >= 0"), default=5.0, help="Seconds between console status lines in headless runs; 0 = off. Default: 5")),
    (("--json-summary",), dict(default="", help="Write the final TFS summary as JSON to this file. Default: none")),
    (("--slo-p99-ms",), dict(type=_float_at_least(0.0, "milliseconds >= 0"), default=0.0, help="Exit non-zero when the overall p99 latency exceeds this many ms (with --sweep: a step missing it ends the sweep; the run passes when some step met the SLOs); 0 = off. Default: 0")),
    (("--slo-min-fps",), dict(type=_float_at_least(0.0, "frames/s >= 0"), default=0.0, help="Exit non-zero when overall FPS is below this; 0 = off. Default: 0")),
    (("--arrival-rate",), dict(type=_float_at_least(0.0, "requests/s >= 0"), default=0.0, help="Open loop: requests/s for the whole test, split over processes/workers in proportion to their users; users then only bound the requests in flight. Latency is measured from each request's scheduled send time (corrected for coordinated omission); the service time from the actual send is reported beside it. 0 = closed loop. Default: 0")),
    (("--arrival",), dict(choices=["poisson", "constant"], default="poisson", help="Open-loop inter-arrival times: poisson (exponential) or constant (evenly spaced). Default: poisson")),
    (("--arrival-seed",), dict(type=_int_at_least(-1, "an integer >= 0, or -1 for a fresh seed"), default=-1, help="Seed of the Poisson arrivals (each process draws its own sequence from it); -1 = fresh. Default: -1")),
    (("--sweep",), dict(type=_sweep_text, default="", help="Run the test as steps: users:1,2,4,8 (users per step) or rate:100,200,400 / rate:100-1000:100 (open-loop req/s per step, with --users users). One row per step in the console, PREFIX_tfs_steps.csv and the JSON. Default: none")),
    (("--step-time",), dict(type=_duration_text, default="10s", help="Duration of each sweep step (e.g. 10s, 1m); its first 20 %% (at most 2 s) is warm-up, left out of the step's figures. Default: 10s")),
    (("--sweep-all-steps",), dict(action="store_true", default=False, help="Run every sweep step even after one misses the SLOs (default: the sweep ends after the first step that misses them)")),
    (("--plot",), dict(default="", help="Write a self-contained HTML file with latency against FPS per step and FPS/latency over time. Default: none")),
    (("--slo-max-fail-ratio",), dict(type=_ratio, default=1.0, help="Exit non-zero when failures/requests exceeds this ratio (0..1); 1 = off. Default: 1")),
]


def add_options(parser):
    """Register the options on Locust's parser (``init_command_line_parser`` listener).

    locust-plugins, which Locust imports first when it is installed, owns
    ``-i/--iterations`` (a per-process count); then ours is ``--tfs-iterations`` only.
    TLS options are ``--grpc-tls-*``: Locust's own ``--tls-cert/--tls-key`` serve its web UI.
    """
    taken = getattr(parser, "_option_string_actions", {})
    for flags, kwargs in OPTIONS:
        env_var = "TFS_" + flags[0].lstrip("-").replace("-", "_").upper()
        flags = [f for f in flags if f not in taken]
        if not flags:
            raise ValueError(f"option {kwargs.get('dest', '')} clashes with an option another plugin added")
        if not hasattr(parser, "args_included_in_web_ui"):  # a plain parser, not Locust's
            kwargs = {k: v for k, v in kwargs.items() if k not in UI_KEYWORDS}
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


def parse_metadata(text):
    """'k1=v1,k2=v2' -> (('k1', 'v1'), ('k2', 'v2')); keys lower-case as gRPC requires.

    Raises OptionError naming the entry's position (never its text) when it has no '=' or an empty key.
    """
    pairs = []
    for number, item in enumerate(filter(None, (part.strip() for part in text.split(","))), 1):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():  # the entry itself may hold a secret: not printed
            raise OptionError(f"--grpc-metadata entry {number} is not KEY=VALUE")
        pairs.append((key.strip().lower(), value.strip()))
    return tuple(pairs)


def parse_named_inputs(text):
    """'a=x.npy,b=y.npy' -> (('a', 'x.npy'), ('b', 'y.npy')); OptionError for an entry without NAME=FILE."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise OptionError(f"--input {item!r} is not NAME=FILE.npy")
        pairs.append((name.strip(), path.strip()))
    return tuple(pairs)


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
    input_name: str = ""
    """Empty: the signature's only input, else 'input'."""
    images_numpy_path: str = ""
    named_inputs: tuple = ()
    """((input name, .npy path), ...) from --input."""
    images_dir: str = ""
    synthetic_shape: tuple = ()
    """One synthetic frame's shape; () = from the model's signature, else 224,224,3."""
    batch_size: int = 1
    iterations: int = -1
    warmup_iterations: int = 1
    report_every: int = 0
    timeout_s: float = 10.0
    request_cache_mb: int = 512
    dtype: str = ""
    layout: str = "auto"
    wait_for_model_s: float = 0.0
    validate_outputs: bool = True
    grpc_metadata: tuple = ()
    """((key, value), ...) sent with every call."""
    transport: Transport = Transport()

    def __post_init__(self):
        checks = [
            (self.batch_size >= 1, f"batch size {self.batch_size} is not valid; expected an integer >= 1"),
            (self.iterations >= -1, f"iterations {self.iterations} is not valid; expected -1, 0 or N > 0"),
            (self.warmup_iterations >= 0, f"warm-up iterations {self.warmup_iterations} is not valid; expected >= 0"),
            (self.timeout_s > 0, f"timeout {self.timeout_s} is not valid; expected seconds > 0"),
            (bool(self.model_name), "model name is empty; expected the ModelSpec.name of a served model"),
            (self.layout in LAYOUTS, f"layout {self.layout!r} is not known; expected one of {', '.join(LAYOUTS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise OptionError(message)
        if self.dtype:
            try:
                dtype_to_dt(np.dtype(self.dtype))
            except TypeError:
                raise OptionError(f"--dtype {self.dtype!r} is not a numpy dtype; expected e.g. float32, uint8") from None
            except ValueError as e:
                raise OptionError(f"--dtype: {e}") from None
        try:
            self.transport.check()
        except ValueError as e:
            raise OptionError(str(e)) from None

    @classmethod
    def from_options(cls, options, host=None):
        """Settings from Locust's ``parsed_options`` (+ ``environment.host``); raises OptionError."""
        target = resolve_target(host or "", options.grpc_address, options.grpc_port)
        transport = Transport(
            tls=is_tls(host or ""), ca=options.grpc_tls_ca, cert=options.grpc_tls_cert, key=options.grpc_tls_key,
            server_name=options.grpc_tls_server_name, max_message_bytes=int(options.max_message_mb) << 20,
            compression=options.grpc_compression)
        return cls(
            target=target,
            model_name=options.model_name,
            model_version=int(options.model_version),
            version_label=options.model_version_label,
            signature_name=options.signature_name,
            input_name=options.input_name,
            images_numpy_path=options.images_numpy_path,
            named_inputs=parse_named_inputs(options.input),
            images_dir=options.images_dir,
            synthetic_shape=parse_shape(options.synthetic_shape) if options.synthetic_shape else (),
            batch_size=int(options.batch_size),
            iterations=int(options.tfs_iterations),
            warmup_iterations=int(options.warmup_iterations),
            report_every=int(options.report_every),
            timeout_s=float(options.timeout),
            request_cache_mb=int(options.request_cache_mb),
            dtype=options.dtype,
            layout=options.layout,
            wait_for_model_s=float(options.wait_for_model),
            validate_outputs=_bool(options.validate_outputs),
            grpc_metadata=parse_metadata(options.grpc_metadata),
            transport=transport,
        )
