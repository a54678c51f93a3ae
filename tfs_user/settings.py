"""What a run needs, validated: ``Settings`` (one user class: model, data, transport) and
``RunOptions`` (the whole run: SLOs, reports, status line). Every default is defined here once;
the command-line options (``tfs_user.options``) and ``TfsUser``'s class attributes take theirs
from these dataclasses.

Plain data: this module imports neither gRPC nor Locust, so a locustfile may import it first.
"""

import dataclasses
import sys
from dataclasses import dataclass

from tfs_user import protocols
from tfs_user.data.mix import parse_batch_sizes, parse_weighted_paths
from tfs_user.option_values import (OptionError, parse_bool, parse_grpc_options, parse_metadata, parse_metric_urls,
                                    parse_named_inputs, parse_names, parse_shape, resolve_target)
from tfs_user.transport.config import Transport
from tfs_user.transport.target import DEFAULT_HOST, TargetError, is_http, is_tls, resolve_host

LAYOUTS = ("auto", "keep", "nhwc-to-nchw", "nchw-to-nhwc")
BINARY_DATA = ("auto", "on", "off")
DEFAULT_MAX_MESSAGE_MB = 256
"""``--binary-data``: the Open Inference Protocol REST's binary tensors when the server lists them, always, never."""


@dataclass(frozen=True)
class Settings:
    """What the users of one user class need, validated (``OptionError`` on bad values).

    Fields after ``tls`` are also ``TfsUser``'s class attributes (same names, defaults, types).
    Times in seconds; ``iterations`` -1 (no limit), 0 (one pass over the file) or N > 0.
    """

    target: str = DEFAULT_HOST
    """gRPC target HOST:PORT, or several comma-separated (from the user's ``host``, see ``tfs_user.transport.target``)."""
    tls: bool = False
    """TLS channel (the host was grpcs:// or https://)."""
    http: bool = False
    """HTTP transport: the server's REST API (the host was http:// or https://); else gRPC."""
    protocol: str = "tfs"
    """Wire protocol of the server (``tfs_user.protocols``): ``tfs`` = TF Serving's PredictionService/Predict,
    ``kserve`` = the Open Inference Protocol's GRPCInferenceService/ModelInfer (KServe v2)."""
    model_name: str = "resnet"
    """ModelSpec.name of the model under test."""
    model_version: int = 0
    """ModelSpec.version; 0 = latest."""
    version_label: str = ""
    """ModelSpec.version_label, used when model_version is 0."""
    signature_name: str = "serving_default"
    """ModelSpec.signature_name."""
    input_name: str = ""
    """Input tensor name in the signature; empty = the signature's only input, else 'input'."""
    images_numpy_path: str = ""
    """.npy [n,h,w,c] or [n,c,h,w] (or .npz, one array per input); empty = synthetic frames."""
    data_mix: tuple = ()
    """((path, weight), ...): several data files in one run (``--images-numpy-path a.npy:1,b.npy:1``); () = one."""
    named_inputs: tuple = ()
    """((input name, .npy path), ...) for a model with several inputs, sliced in step."""
    images_dir: str = ""
    """Folder of JPEG/PNG files sent as encoded bytes to a DT_STRING input."""
    synthetic_shape: tuple = ()
    """Shape of one synthetic frame; () = from the model's signature, else (224, 224, 3)."""
    dtype: str = ""
    """numpy dtype to send; empty = the signature's input dtype, else as stored."""
    layout: str = "auto"
    """auto, keep, nhwc-to-nchw or nchw-to-nhwc (README "Inputs")."""
    allow_lossy_cast: bool = False
    """Clip data outside the input dtype's range to it; False = stop with one line (``tfs_user.data.ranges``)."""
    output_names: tuple = ()
    """Outputs to ask for by name (TF Serving's output_filter, KServe v2's requested outputs); () = all."""
    validate_outputs: bool = True
    """Count a response without outputs or with a wrong first dimension as a failure."""
    batch_size: int = 1
    """Frames per request."""
    batch_mix: tuple = ()
    """((size, weight), ...): several batch sizes in one run (``--batch-size 1:6,8:3,32:1``); () = batch_size only."""
    mix_seed: int = 0
    """Seed of the sequence that picks each request's batch size and data file (``tfs_user.data.mix``)."""
    iterations: int = -1
    """Measured requests per user: N > 0, 0 = one pass over the file, -1 = no limit."""
    warmup_iterations: int = 1
    """Requests per user sent before measuring, reported apart."""
    report_every: int = 0
    """Log a progress line per user every N requests (0 = off)."""
    timeout_s: float = 10.0
    """gRPC deadline per request, in seconds."""
    pause_s: float = 0.0
    """Think time between requests, in seconds."""
    request_cache_mb: int = 512
    """MiB per process for prepared request bodies."""
    wait_for_model_s: float = 0.0
    """Seconds to wait for the server to accept connections, then for the model version to become AVAILABLE."""
    skip_preflight: bool = False
    """Make no GetModelStatus/GetModelMetadata call before the run; the options give the inputs."""
    grpc_metadata: tuple = ()
    """((key, value), ...) sent as gRPC metadata with every call."""
    tls_ca: str = ""
    """PEM root certificates for TLS; empty = the system's."""
    tls_cert: str = ""
    """PEM client certificate for mutual TLS (with tls_key)."""
    tls_key: str = ""
    """PEM client private key for mutual TLS (with tls_cert)."""
    tls_server_name: str = ""
    """Server name to verify instead of the host's (TLS)."""
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB
    """gRPC send/receive message limit on each channel, MiB."""
    compression: str = "none"
    """Request compression: none, gzip or deflate."""
    grpc_options: tuple = ()
    """((key, value), ...) gRPC channel arguments (``--grpc-option``); values int when they are integers."""
    binary_data: str = "auto"
    """KServe v2 over HTTP: tensors as binary data (auto = when the server's ``GET /v2`` lists binary_tensor_data,
    on, off = JSON)."""

    def __post_init__(self):
        checks = [
            (self.batch_size >= 1, f"batch size {self.batch_size} is not valid; expected an integer >= 1"),
            (self.iterations >= -1, f"iterations {self.iterations} is not valid; expected -1, 0 or N > 0"),
            (self.warmup_iterations >= 0, f"warm-up iterations {self.warmup_iterations} is not valid; expected >= 0"),
            (self.timeout_s > 0, f"timeout {self.timeout_s} is not valid; expected seconds > 0"),
            (bool(self.model_name), "model name is empty; expected the ModelSpec.name of a served model"),
            (all(size >= 1 and weight > 0 for size, weight in self.batch_mix),
             f"batch sizes {self.batch_mix} are not valid; expected (size >= 1, weight > 0) pairs"),
            (all(weight > 0 for _, weight in self.data_mix), f"data files {self.data_mix} are not valid; expected "
             "(path, weight > 0) pairs"),
            (self.layout in LAYOUTS, f"layout {self.layout!r} is not known; expected one of {', '.join(LAYOUTS)}"),
            (self.binary_data in BINARY_DATA, f"--binary-data {self.binary_data!r} is not known; expected one of "
                                              f"{', '.join(BINARY_DATA)}"),
            (self.binary_data == "auto" or (self.http and self.protocol == "kserve"),
             f"--binary-data {self.binary_data} applies to --protocol kserve over http:// or https:// only (the Open "
             "Inference Protocol's binary tensor data extension); leave it at auto"),
            (not self.http or (self.compression == "none" and not self.grpc_options
                               and self.max_message_mb == DEFAULT_MAX_MESSAGE_MB),
             "--grpc-compression, --grpc-option and --max-message-mb shape gRPC channels and have no effect over "
             "http:// or https://; leave them out, or use a gRPC host (HOST:PORT)"),
        ]
        for ok, message in checks:
            if not ok:
                raise OptionError(message)
        try:  # the default protocol without --dtype has nothing to check: its api module is loaded only when needed
            if self.protocol != "tfs" or self.dtype or self.http:
                protocols.protocol(self.protocol, self.http).check_settings(self)
        except ValueError as e:  # an unknown protocol, or settings it cannot send
            raise OptionError(str(e)) from None
        self.transport.check()

    @property
    def transport(self):
        """The channel settings as a ``Transport``."""
        return Transport(tls=self.tls, ca=self.tls_ca, cert=self.tls_cert, key=self.tls_key,
                         server_name=self.tls_server_name, max_message_bytes=int(self.max_message_mb) << 20,
                         compression=self.compression, options=self.grpc_options)

    @property
    def endpoints(self):
        """The gRPC targets users are spread over (round-robin, ``tfs_user.transport.endpoints``): a tuple of str."""
        return tuple(self.target.split(","))

    @property
    def data_paths(self):
        """Every data file or folder the settings name."""
        return [p for p in (self.images_numpy_path, *(p for p, _ in self.data_mix), self.images_dir,
                            *(p for _, p in self.named_inputs)) if p]

    @property
    def mixed(self):
        """Whether requests mix batch sizes or data files (``variants`` has more than one)."""
        return len(self.batch_mix) > 1 or len(self.data_mix) > 1

    def variants(self):
        """The mix as [(weight, parts, Settings)]: one per (data file, batch size) pair, weight the product of
        theirs, parts the row labels its requests count under (``batch 8``, ``data a.npy``; a kind only when
        there are several), Settings with that one batch size and file. Unmixed: [(1.0, (), self)]."""
        if not self.mixed:
            return [(1.0, (), self)]
        sizes = self.batch_mix or ((self.batch_size, 1.0),)
        files = self.data_mix or ((self.images_numpy_path, 1.0),)
        out = []
        for path, file_weight in files:
            for size, size_weight in sizes:
                parts = ((f"batch {size}",) if len(sizes) > 1 else ()) + ((f"data {path}",) if len(files) > 1 else ())
                one = dataclasses.replace(self, batch_size=size, batch_mix=(), images_numpy_path=path, data_mix=())
                out.append((file_weight * size_weight, parts, one))
        return out

    @classmethod
    def for_host(cls, host, **fields):
        """Settings for ``host`` (``[grpc://|grpcs://|http://|https://]HOST[:PORT]``, empty = localhost:9000); raises
        OptionError."""
        try:
            tls, http = is_tls(host or ""), is_http(host or "")
        except TargetError as e:
            raise OptionError(str(e)) from None
        return cls(target=resolve_target(host), tls=tls, http=http, **fields)

    @classmethod
    def from_options(cls, options, host=None):
        """Settings from Locust's ``parsed_options`` (+ ``environment.host``); raises OptionError."""
        host = resolve_host(host or "", options.grpc_address, options.grpc_port)
        batch_mix = parse_batch_sizes(options.batch_size)
        data_mix = parse_weighted_paths(options.images_numpy_path)
        return cls.for_host(
            host,
            protocol=options.protocol,
            model_name=options.model_name,
            model_version=int(options.model_version),
            version_label=options.model_version_label,
            signature_name=options.signature_name,
            input_name=options.input_name,
            images_numpy_path=data_mix[0][0] if data_mix else "",
            data_mix=data_mix if len(data_mix) > 1 else (),
            named_inputs=parse_named_inputs(options.input),
            images_dir=options.images_dir,
            synthetic_shape=parse_shape(options.synthetic_shape) if options.synthetic_shape else (),
            dtype=options.dtype,
            layout=options.layout,
            allow_lossy_cast=parse_bool(getattr(options, "allow_lossy_cast", False)),
            output_names=parse_names(options.output_names),
            validate_outputs=parse_bool(options.validate_outputs),
            batch_size=batch_mix[0][0],
            batch_mix=batch_mix if len(batch_mix) > 1 else (),
            mix_seed=int(getattr(options, "mix_seed", 0)),
            iterations=int(options.tfs_iterations),
            warmup_iterations=int(options.warmup_iterations),
            report_every=int(options.report_every),
            timeout_s=float(options.timeout),
            request_cache_mb=int(options.request_cache_mb),
            wait_for_model_s=float(options.wait_for_model),
            skip_preflight=parse_bool(getattr(options, "skip_preflight", False)),
            grpc_metadata=parse_metadata(options.grpc_metadata),
            tls_ca=options.grpc_tls_ca,
            tls_cert=options.grpc_tls_cert,
            tls_key=options.grpc_tls_key,
            tls_server_name=options.grpc_tls_server_name,
            max_message_mb=int(options.max_message_mb),
            compression=options.grpc_compression,
            grpc_options=parse_grpc_options(getattr(options, "grpc_option", "")),
            binary_data=getattr(options, "binary_data", "auto"),
        )


USER_FIELDS = tuple(f for f in dataclasses.fields(Settings) if f.name not in ("target", "tls", "http"))
"""The Settings fields a user class sets as class attributes (target, TLS and transport come from its host)."""
DEFAULTS = Settings()
"""Every setting's default, for options and user attributes."""


@dataclass(frozen=True)
class RunOptions:
    """Run-level options (the whole run, not one user class): SLOs, reports, status line, demo server.

    Thresholds of 0 (and a fail ratio of 1) are off. ``status_interval_s`` 0 = no status line.
    """

    slo_p99_ms: float = 0.0
    slo_min_fps: float = 0.0
    slo_max_fail_ratio: float = 1.0
    status_interval_s: float = 5.0
    json_summary: str = ""
    csv_prefix: str = ""
    html_file: str = ""
    headless: bool = False
    autostart: bool = False
    demo_server: bool = False
    demo_server_args: str = ""
    json_stdout: bool = False
    """Locust's ``--json``: stdout carries Locust's JSON, so our lines go to stderr."""
    exit_code_on_error: int = 1
    """Locust's ``--exit-code-on-error``: the exit code for failures without a fail-ratio SLO."""
    server_metrics: tuple = ()
    """``--server-metrics``: URLs of the servers' Prometheus pages (``tfs_user.server_metrics``)."""
    baseline: str = ""
    """``--baseline``: earlier runs' JSON summaries to compare with at the end, one or several (comma-separated,
    patterns; ``tfs_user.results.baseline``)."""
    baseline_thresholds: tuple = ()
    """(figure name, threshold text) pairs of ``--baseline-p50`` ... (``tfs_user.results.compare.FIGURES``)."""

    @classmethod
    def from_options(cls, options):
        """RunOptions from Locust's ``parsed_options`` (ours and Locust's csv/html/headless)."""
        return cls(
            slo_p99_ms=float(options.slo_p99_ms),
            slo_min_fps=float(options.slo_min_fps),
            slo_max_fail_ratio=float(options.slo_max_fail_ratio),
            status_interval_s=float(options.status_interval),
            json_summary=options.json_summary,
            csv_prefix=getattr(options, "csv_prefix", None) or "",
            html_file=getattr(options, "html_file", None) or "",
            headless=bool(getattr(options, "headless", False)),
            autostart=bool(getattr(options, "autostart", False)),
            demo_server=bool(options.demo_server),
            demo_server_args=options.demo_server_args,
            json_stdout=bool(getattr(options, "json", False)),
            exit_code_on_error=int(getattr(options, "exit_code_on_error", 1)),
            server_metrics=parse_metric_urls(getattr(options, "server_metrics", "") or ""),
            baseline=getattr(options, "baseline", "") or "",
            baseline_thresholds=tuple((key[len("baseline_"):], str(value)) for key, value in sorted(vars(options).items())
                                      if key.startswith("baseline_")),
        )

    @property
    def out(self):
        """Where our console lines go: stdout, or stderr when Locust's ``--json`` owns stdout."""
        return sys.stderr if self.json_stdout else sys.stdout
