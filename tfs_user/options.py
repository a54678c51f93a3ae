"""Command-line / config-file / environment options of tfs-locust: the argparse table and its parsers.

Options are added on Locust's parser (not on an argument group: groups break
``include_in_web_ui``), in kebab-case, each with an ``env_var`` and a typed,
non-None default taken from ``tfs_user.settings`` (defined there once). The old
scripts' spellings (``--batchsize``, ``--images_numpy_path``, ``--grpc_port`` ...)
are accepted as aliases.

Options reach worker processes only when the master spawns users, so
``Settings.from_options`` is called in ``test_start``, never in ``init``.
Imports neither gRPC nor Locust.
"""

import argparse
import math

from tfs_user import protocols
from tfs_user.capacity.plans import MAX_ARRIVAL_RATE
from tfs_user.data.mix import parse_batch_sizes, parse_weighted_paths
from tfs_user.results.compare import FIGURES, parse_threshold
from tfs_user.option_values import OptionError, parse_bool, parse_metric_urls, parse_names
from tfs_user.settings import BINARY_DATA, DEFAULTS, LAYOUTS, RunOptions
from tfs_user.transport.config import COMPRESSIONS
from tfs_user.transport.target import DEFAULT_PORT

RUN_DEFAULTS = RunOptions()
MAX_TIMEOUT_S = 86400.0
"""Longest --timeout, seconds (a longer gRPC deadline overflows into an immediate DEADLINE_EXCEEDED: seen at 1e12)."""
MAX_MESSAGE_MB = 2047
"""Largest --max-message-mb: gRPC takes the limit in bytes as a signed 32-bit integer."""


def _int_at_least(minimum, what, maximum=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected {what}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected {what}")
        return value

    return parse


def _float_at_least(minimum, what, strictly=False, maximum=math.inf):
    """An option's float parser: a number >= ``minimum`` (> with ``strictly``), finite and <= ``maximum``
    (an infinite or huge value would not bound the run: seen, --arrival-rate inf hung past SIGTERM)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected {what}") from None
        if value != value or value < minimum or (strictly and value == minimum) or not value <= maximum \
                or value == math.inf:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected {what}")
        return value

    return parse


def _port(text):
    value = _int_at_least(0, "a port number 1..65535")(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range; expected a port number 1..65535")
    return value


UI_KEYWORDS = ("include_in_web_ui", "is_secret", "is_required", "is_multiple")


class _JoinAction(argparse.Action):
    """A repeatable string option kept as one comma-separated string (the web UI needs a str default)."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, "") or ""
        setattr(namespace, self.dest, f"{current},{values}" if current else values)


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


def _threshold_text(text):
    return _checked_by(parse_threshold, ValueError)(text)


def _sweep_text(text):
    from tfs_user.capacity.plans import SweepError, parse_sweep
    return _checked_by(parse_sweep, SweepError)(text) if text else text


def _models_text(text):
    from tfs_user.models import parse_models
    return _checked_by(parse_models, OptionError)(text)


def _arrival_text(text):
    from tfs_user.capacity.arrival_kinds import ArrivalError, check_arrival
    return _checked_by(check_arrival, ArrivalError)(text)


def _duration_text(text):
    from tfs_user.capacity.plans import SweepError, parse_duration
    return _checked_by(parse_duration, SweepError)(text)


D, R = DEFAULTS, RUN_DEFAULTS

TARGET, MODEL, LOAD, OUTPUT = ("Target and transport", "Model and data", "Load and capacity", "SLOs and output")
TOPICS = (MODEL, LOAD, OUTPUT, TARGET)
"""The topics of ``--help`` and of the web UI's start form, in their order: what users change most first."""

# (flags, keyword arguments); the first flag names the option, its env var is TFS_<FLAG>.
# ``label`` names the field in the web UI's start form and ``topic`` its group (neither is passed to
# add_argument). --help and the start form show the options by topic (TOPICS order), in this order
# within a topic: what users change most first, rare settings last.
_OPTIONS = [
    (("--model-name", "--model_name"), dict(topic=MODEL, label="Model name", default=D.model_name, help=f"ModelSpec.name of the served model. Default: {D.model_name}")),
    (("--images-numpy-path", "--images_numpy_path"), dict(topic=MODEL, label="Images (.npy file)", type=_checked_by(parse_weighted_paths, OptionError), default="", help="Input images: a .npy file [n,h,w,c] or [n,c,h,w] (or an .npz, one array per input), fitted to the model's signature; several files with weights, e.g. small.npy:1,big.npy:1, are mixed in one run, each fitted on its own (dtype cast, channel axis moved per --layout; the file is never rewritten). Empty: synthetic frames shaped like the signature or --synthetic-shape. Default: empty")),
    (("--batch-size", "--batchsize", "--batch_size"), dict(topic=LOAD, label="Batch size", type=_checked_by(parse_batch_sizes, OptionError), default=str(D.batch_size), help=f"Images per request (frames); several sizes with weights mix them in one run, e.g. 1:6,8:3,32:1 (drawn per request from --mix-seed; one row per size beside the model's). Default: {D.batch_size}")),
    (("--models",), dict(topic=MODEL, label="Models (NAME KEY=VALUE ...; NAME ...)", type=_models_text, default="", help="Several models in one run, entries separated by ';', each a model name and KEY=VALUE settings for it alone (share=N its share of users and of an open-loop rate or a trace's lines without a model, default 1; slo-p99-ms, slo-min-fps its own SLOs; any of batch-size, images-numpy-path, input-name, synthetic-shape, dtype, layout, signature-name, model-version ...), e.g. 'resnet share=3 batch-size=1:6,8:3; mobilenet share=1'. Each model is a Locust user class named after it (weight = share; --config-users and the class picker use that name), with rows of its own. Default: one model (--model-name)")),
    (("--iterations", "--tfs-iterations"), dict(topic=LOAD, label="Iterations per user", dest="tfs_iterations", type=_int_at_least(-1, "-1 (no limit), 0 (one pass over the file) or N > 0"), default=D.iterations, help=f"Measured requests per user, then the user stops; the run ends when all users are done. 0 = one pass over the file; -1 = until --run-time or stop. Default: {D.iterations}")),
    (("--warmup-iterations",), dict(topic=LOAD, label="Warm-up iterations per user", type=_int_at_least(0, "an integer >= 0"), default=D.warmup_iterations, help=f"Requests per user sent before measuring (the first carries connection set-up); reported as 'Predict MODEL (warm-up)' ('ModelInfer MODEL (warm-up)' with --protocol kserve). Default: {D.warmup_iterations}")),
    (("--mix-seed",), dict(topic=LOAD, label="Mix seed", type=_int_at_least(0, "an integer >= 0"), default=D.mix_seed, help=f"Seed of the sequence of batch sizes and data files a mixed run sends (each user of each process draws its own, reproducibly). Default: {D.mix_seed}")),
    (("--synthetic-shape",), dict(topic=MODEL, label="Synthetic frame shape", default="", help="Shape of one synthetic frame when no numpy file is given. Default: from the model's signature, else 224,224,3")),
    (("--input",), dict(topic=MODEL, label="Input files (NAME=FILE.npy)", action=_JoinAction, default="", help="NAME=FILE.npy for a model with several inputs (repeatable, or comma-separated); all files are sliced in step. Default: none")),
    (("--images-dir",), dict(topic=MODEL, label="Images folder (JPEG/PNG)", default="", help="Folder of JPEG/PNG files sent as encoded bytes to a DT_STRING input (e.g. image_bytes). Default: none")),
    (("--input-name", "--input_name"), dict(topic=MODEL, label="Input name", default="", help="Name of the input tensor in the signature. Default: the signature's only input (from GetModelMetadata), else 'input'")),
    (("--signature-name", "--signature_name"), dict(topic=MODEL, label="Signature name", default=D.signature_name, help=f"ModelSpec.signature_name. Default: {D.signature_name}")),
    (("--model-version", "--model_version"), dict(topic=MODEL, label="Model version", type=_int_at_least(0, "a version number >= 0 (0 = latest)"), default=D.model_version, help=f"ModelSpec.version; 0 = the latest version. Default: {D.model_version}")),
    (("--model-version-label",), dict(topic=MODEL, label="Model version label", default="", help="ModelSpec.version_label (e.g. stable); used when --model-version is 0. Default: empty")),
    (("--dtype",), dict(topic=MODEL, label="Input dtype", default="", help="Send the input as this numpy dtype (e.g. float32, uint8). Default: the model's input dtype from its signature, else as stored")),
    (("--layout",), dict(topic=MODEL, label="Layout", choices=LAYOUTS, default=D.layout, help=f"auto: move the channel axis when only that makes the file fit the model's signature; keep: send as stored; nhwc-to-nchw / nchw-to-nhwc: always move it (3-d frames only). With a signature, the result must fit it. Default: {D.layout}")),
    (("--allow-lossy-cast",), dict(topic=MODEL, label="Allow lossy cast (clip to the dtype)", action="store_true", default=D.allow_lossy_cast, help="Cast data whose values lie outside the input dtype's range (e.g. 300 or -1 for uint8, 0.5 for bool, NaN for an integer) by clipping them to the range (NaN -> 0, non-zero -> True). Default: off: stop with one line naming the input, the range found and the dtype")),
    (("--protocol",), dict(topic=TARGET, label="Protocol", choices=protocols.NAMES, default=D.protocol, help=f"The server's API: tfs = TF Serving's PredictionService/Predict (TF Serving, OVMS; over http:// its REST API, POST /v1/models/NAME:predict); kserve = the Open Inference Protocol, KServe v2 GRPCInferenceService/ModelInfer (Triton, OVMS, KServe, MLServer; over http:// POST /v2/models/NAME/infer). Default: {D.protocol}")),
    (("--binary-data",), dict(topic=TARGET, label="Binary tensors (KServe v2 over HTTP)", choices=BINARY_DATA, default=D.binary_data, help=f"--protocol kserve over http://: send and ask tensors as binary data (the Open Inference Protocol's binary tensor data extension: a JSON header, then raw bytes) or as JSON. auto = binary when the server's GET /v2 lists binary_tensor_data; on; off = JSON. Default: {D.binary_data}")),
    (("--timeout",), dict(topic=TARGET, label="Timeout (s)", type=_float_at_least(0.0, f"a deadline in seconds > 0 and <= {MAX_TIMEOUT_S:g}", strictly=True, maximum=MAX_TIMEOUT_S), default=D.timeout_s, help=f"Deadline per request (gRPC's deadline; over HTTP the whole call), in seconds. Default: {D.timeout_s:g}")),
    (("--arrival-rate",), dict(topic=LOAD, label="Arrival rate (req/s, 0 = closed loop)", type=_float_at_least(0.0, f"requests/s 0..{MAX_ARRIVAL_RATE:g}", maximum=MAX_ARRIVAL_RATE), default=0.0, help=f"Open loop: requests/s for the whole test, split over processes/workers in proportion to their users (with --models: each model its share of the rate as its own schedule, sent only by its users, each process its users of that model's part); users then only bound the requests in flight. Latency is measured from each request's scheduled send time (corrected for coordinated omission); the service time from the actual send is reported beside it. 0 = closed loop; at most {MAX_ARRIVAL_RATE:g} (a Python process sends a few thousand a second). Default: 0")),
    (("--arrival",), dict(topic=LOAD, label="Arrivals (poisson, constant, gamma:CV)", type=_arrival_text, default="poisson", help="Open-loop inter-arrival times: poisson (exponential), constant (evenly spaced) or gamma:CV (gamma-distributed with coefficient of variation CV: 1 is Poisson, e.g. gamma:3 sends in bursts with lulls between, at the same mean rate). Default: poisson")),
    (("--arrival-trace",), dict(topic=LOAD, label="Arrival trace (file of send times)", default="", help="Open loop from a recorded trace: replay its send times (seconds from the start, one per line, or a CSV with a time column and optional model and batch_size columns that choose each line's model and batch size; gzip accepted), latency from each request's scheduled time; with --processes/workers each sends every n-th line (of each model's lines, among the processes that run its users), so together they send the trace exactly once, every worker from one moment the master picks once all users run (clocks of several hosts must be synced, e.g. NTP). The run ends after the trace's last request is answered (unless --trace-loop). Not with --arrival-rate or --sweep. Default: none")),
    (("--trace-speedup",), dict(topic=LOAD, label="Trace speed-up", type=_float_at_least(0.0, "a factor > 0, e.g. 10", strictly=True), default=1.0, help="Replay --arrival-trace this many times faster (10: a 60 s trace in 6 s). Default: 1")),
    (("--trace-loop",), dict(topic=LOAD, label="Loop the trace", action="store_true", default=False, help="Replay --arrival-trace again from its start (one mean gap after its last request) until the run stops (-t, Ctrl-C). Default: off: the run ends with the trace")),
    (("--sweep",), dict(topic=LOAD, label="Sweep (users:1,2,4 or rate:100-1000:100)", type=_sweep_text, default="", help="Run the test as steps: users:1,2,4,8 (users per step) or rate:100,200,400 / rate:100-1000:100 (open-loop req/s per step, with --users users). One row per step in the console, PREFIX_tfs_steps.csv and the JSON. With --slo-* the sweep ends after the first step that misses them and the run passes when some step met them. Default: none")),
    (("--step-time",), dict(topic=LOAD, label="Sweep step time", type=_duration_text, default="10s", help="Duration of each sweep step (e.g. 10s, 1m; at least 1s); its first 20 %% (at most 2 s) is warm-up, left out of the step's figures. Default: 10s")),
    (("--slo-p99-ms",), dict(topic=OUTPUT, label="SLO p99 (ms)", type=_float_at_least(0.0, "milliseconds >= 0"), default=R.slo_p99_ms, help=f"Exit non-zero when the overall p99 latency exceeds this many ms; 0 = off. Default: {R.slo_p99_ms:g}")),
    (("--slo-min-fps",), dict(topic=OUTPUT, label="SLO min FPS", type=_float_at_least(0.0, "frames/s >= 0"), default=R.slo_min_fps, help=f"Exit non-zero when overall FPS is below this; 0 = off. Default: {R.slo_min_fps:g}")),
    (("--slo-max-fail-ratio",), dict(topic=OUTPUT, label="SLO max fail ratio", type=_ratio, default=R.slo_max_fail_ratio, help=f"Exit non-zero when failures/requests exceeds this ratio (0..1); 1 = off. Default: {R.slo_max_fail_ratio:g}")),
    (("--output-names",), dict(topic=MODEL, label="Output names", type=_checked_by(parse_names, OptionError), default="", help="Outputs to ask for, comma-separated (TF Serving's output_filter; KServe v2's requested outputs). Default: all the model's outputs")),
    (("--validate-outputs",), dict(topic=MODEL, label="Validate outputs", type=parse_bool, default=D.validate_outputs, help=f"Count a response without outputs, with an output whose first dimension is not the batch size or whose contents do not match its shape, or without an output --output-names asked for, as a failure (true/false). Default: {str(D.validate_outputs).lower()}")),
    (("--wait-for-model",), dict(topic=TARGET, label="Wait for model (s)", type=_float_at_least(0.0, "seconds >= 0"), default=D.wait_for_model_s, help=f"Seconds to wait for the server to accept connections (at least 5), then for the model version to become AVAILABLE (ModelService/GetModelStatus), before failing. Default: {D.wait_for_model_s:g}")),
    (("--skip-preflight",), dict(topic=TARGET, label="Skip pre-flight calls", action="store_true", default=D.skip_preflight, help="Make no GetModelStatus/GetModelMetadata call before the run (for servers that answer them wrongly); input name, dtype and shape come from the options and data. Default: off")),
    (("--report-every", "--report_every"), dict(topic=OUTPUT, label="Report every N requests", type=_int_at_least(0, "an integer >= 0"), default=D.report_every, help=f"Log a progress line per user every N requests, like the old script; 0 = off. Default: {D.report_every}")),
    (("--status-interval",), dict(topic=OUTPUT, label="Status interval (s)", type=_float_at_least(0.0, "seconds >= 0"), default=R.status_interval_s, help=f"Seconds between console status lines in headless runs; 0 = off. Default: {R.status_interval_s:g}")),
    (("--sweep-all-steps",), dict(topic=LOAD, label="Run all sweep steps", action="store_true", default=False, help="Run every sweep step even after one misses the SLOs (default: the sweep ends after the first step that misses them)")),
    (("--plot",), dict(topic=OUTPUT, label="Capacity plot (HTML file)", default="", help="Write a self-contained HTML file with latency (p50, p99) against FPS per step and FPS/latency over time. Default: none")),
    (("--arrival-seed",), dict(topic=LOAD, label="Arrival seed", type=_int_at_least(-1, "an integer >= 0, or -1 for a fresh seed"), default=-1, help="Seed of the Poisson arrivals (each process draws its own sequence from it); -1 = fresh. Default: -1")),
    (("--server-metrics",), dict(topic=OUTPUT, label="Server metrics (Prometheus URLs)", type=_checked_by(parse_metric_urls, OptionError), default="", help="The server's Prometheus metrics page, e.g. http://127.0.0.1:8002/metrics (several comma-separated, one per endpoint). Scraped at the start and end of the test and of every sweep step (by the master only): the server's request count, request, queue and inference time over the window beside ours (TF Serving, OVMS, Triton, MLServer). Default: none")),
    (("--baseline",), dict(topic=OUTPUT, label="Baseline (JSON summaries)", action=_JoinAction, default=R.baseline, help="Compare this run at its end with earlier runs' --json-summary files: one file, or several (comma-separated, the option repeated, or a pattern such as 'main/*.json'), whose spread then measures the noise between runs: per figure (p50, p90, p99, FPS, fail ratio; per step for a sweep) better / same / worse, the change and the range the noise allows (docs/compare.md). A worse figure makes the run exit 3; a baseline of another model, batch size, protocol or load exits 2. Default: none")),
    *[((f.option,), dict(topic=OUTPUT, label=f"Baseline threshold {f.label} ({'points' if not f.relative else '%'})", type=_threshold_text, default=f"{f.default:g}", help=f"With --baseline: the smallest change of {f.label} called worse or better, in {'percentage points' if not f.relative else '%%'}, however quiet the runs; off = leave it out of the verdict. Default: {f.default:g}")) for f in FIGURES],
    (("--json-summary",), dict(topic=OUTPUT, label="JSON summary file", default="", help="Write the final TFS summary as JSON to this file. Default: none")),
    (("--grpc-metadata", "--metadata"), dict(topic=TARGET, label="gRPC metadata / HTTP headers (KEY=VALUE)", action=_JoinAction, default="", is_secret=True, help="KEY=VALUE sent as gRPC metadata (HTTP headers over http://) with every call; --metadata is the same option; repeat the option or separate pairs with commas; over gRPC a KEY ending in -bin takes its bytes as base64 text; values are never printed. Default: none")),
    (("--max-message-mb",), dict(topic=TARGET, label="Max message size (MiB)", type=_int_at_least(1, f"MiB 1..{MAX_MESSAGE_MB} (gRPC's limit is a 32-bit byte count)", maximum=MAX_MESSAGE_MB), default=D.max_message_mb, help=f"gRPC send/receive message limit on each channel, MiB (gRPC's own receive default is 4 MB). Default: {D.max_message_mb}")),
    (("--grpc-compression",), dict(topic=TARGET, label="gRPC compression", choices=COMPRESSIONS, default=D.compression, help=f"Compress requests. Default: {D.compression}")),
    (("--grpc-option",), dict(topic=TARGET, label="gRPC channel options (KEY=VALUE)", action=_JoinAction, default="", help="KEY=VALUE gRPC channel argument, e.g. grpc.keepalive_time_ms=30000 (repeatable, or comma-separated); integer values are passed as integers, JSON values (e.g. grpc.service_config={...}) as their text, commas kept; overrides ours (message limits, reconnect backoff). Default: none")),
    (("--request-cache-mb",), dict(topic=LOAD, label="Request cache (MiB)", type=_int_at_least(0, "an integer >= 0 (MiB)"), default=D.request_cache_mb, help=f"Memory per process for prepared request bodies, in MiB; beyond it bodies are built before each call. Default: {D.request_cache_mb}")),
    (("--grpc-tls-ca",), dict(topic=TARGET, label="gRPC TLS root certificates (PEM file)", default="", help="PEM file of root certificates for grpcs:// hosts. Default: the system's")),
    (("--grpc-tls-cert",), dict(topic=TARGET, label="gRPC TLS client certificate (PEM file)", default="", help="PEM client certificate for mutual TLS (with --grpc-tls-key). Default: none")),
    (("--grpc-tls-key",), dict(topic=TARGET, label="gRPC TLS client key (PEM file)", default="", is_secret=True, help="PEM client private key for mutual TLS (with --grpc-tls-cert). Default: none")),
    (("--grpc-tls-server-name",), dict(topic=TARGET, label="gRPC TLS server name", default="", help="Server name to verify instead of the host's (TLS). Default: the host")),
    (("--grpc-address", "--grpc_address"), dict(topic=TARGET, label="gRPC address (old style)", default="", help="Server address, old-script style; used when --host is not given. Default: empty (localhost when neither is given)")),
    (("--grpc-port", "--grpc_port"), dict(topic=TARGET, label="gRPC port (old style)", type=_port, default=0, help=f"Server port, old-script style; used when --host is not given. Default: 0 ({DEFAULT_PORT} when neither is given)")),
    (("--demo-server",), dict(topic=TARGET, label="Demo server", action="store_true", default=False, include_in_web_ui=False, help="Start the bundled demo TFS server on a free loopback port and test it (no --host needed)")),
    (("--demo-server-args",), dict(topic=TARGET, label="Demo server arguments", default="", include_in_web_ui=False, help="Extra arguments for the demo server, e.g. '--delay-ms 2'. Default: empty")),
]


OPTIONS = sorted(_OPTIONS, key=lambda entry: TOPICS.index(entry[1]["topic"]))
"""Every option as (flags, keyword arguments), by topic."""


def add_options(parser):
    """Register the options on Locust's parser (``init_command_line_parser`` listener).

    locust-plugins, which Locust imports first when it is installed, owns
    ``-i/--iterations`` (a per-process count); then ours is ``--tfs-iterations`` only.
    TLS options are ``--grpc-tls-*``: Locust's own ``--tls-cert/--tls-key`` serve its web UI.
    """
    taken = getattr(parser, "_option_string_actions", {})
    for flags, kwargs in OPTIONS:
        env_var = "TFS_" + flags[0].lstrip("-").replace("-", "_").upper()
        kwargs = {k: v for k, v in kwargs.items() if k not in ("label", "topic")}
        flags = [f for f in flags if f not in taken]
        if not flags:
            raise ValueError(f"option {kwargs.get('dest', '')} clashes with an option another plugin added")
        if not hasattr(parser, "args_included_in_web_ui"):  # a plain parser, not Locust's
            kwargs = {k: v for k, v in kwargs.items() if k not in UI_KEYWORDS}
        parser.add_argument(*flags, env_var=env_var, **kwargs)


def option_dest(flags, kwargs):
    """The attribute name of an OPTIONS entry in Locust's ``parsed_options`` ("--batch-size" -> "batch_size")."""
    return kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")


def topics():
    """{topic: [option dest, ...]} in TOPICS order, options in OPTIONS order (``--help``, the start form)."""
    grouped = {topic: [] for topic in TOPICS}
    for flags, kwargs in OPTIONS:
        grouped[kwargs["topic"]].append(option_dest(flags, kwargs))
    return grouped


def form_labels():
    """{option dest: label} in OPTIONS order: the web UI start form's labels and order (``tfs_user.webform``);
    options not offered on the form (``include_in_web_ui=False``) are left out."""
    return {option_dest(flags, kwargs): kwargs.get("label") or flags[0] for flags, kwargs in OPTIONS
            if kwargs.get("include_in_web_ui", True)}
