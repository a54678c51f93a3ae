"""A small TF-Serving-compatible gRPC server for demos, tests and calibration.

It implements the parts of the TensorFlow Serving gRPC API that a load test
touches: ``PredictionService/Predict``, ``PredictionService/GetModelMetadata``
(``signature_def`` only) and ``ModelService/GetModelStatus``. Requests are
validated the way TF Serving does it (model name and version, signature name,
input alias, dtype, shape) and answered with the same gRPC status codes.

The "model" is a real, cheap numpy function: each frame of the input is
flattened, averaged over ``output_size`` contiguous chunks and passed through a
softmax, giving a float32 ``[batch, output_size]`` output whose rows sum to 1
(well under 1 ms for a 224x224x3 frame). Latency and failures are injected on
purpose: a fixed delay per Predict, every N-th Predict slower, every M-th
Predict failing with a chosen status code. Counters (requests, frames, the
wall-clock window of successful requests) let a test compare what the load
generator reported with what the server saw.

It uses a plain ``grpc.server`` with a thread pool (no gevent), so it runs
in-process next to a test or as its own process::

    python -m tfs_user.demo_server --port 9000 --delay-ms 20
"""

import argparse
import dataclasses
import io
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
import numpy as np

from tfs_user.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    meta_graph_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    tensor_shape_pb2,
    types_pb2,
)
from tfs_user.tensors import DT_NAMES, dtype_to_dt, ndarray_to_tensor_proto, supported_dtypes, tensor_proto_to_ndarray

_PREDICT_METHOD_NAME = "tensorflow/serving/predict"
_STABLE_LABEL = "stable"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """One served model: one input (plus ``extra_inputs``), one output.

    The input layout is simply ``shape``: ``(-1, 224, 224, 3)`` is NHWC,
    ``(-1, 3, 224, 224)`` is NCHW; -1 accepts any size in that dimension.
    The first dimension is the batch (frames per request).
    """

    name: str = "resnet"
    """Model name clients put in ``model_spec.name``."""
    input_name: str = "input"
    """Input tensor alias in the signature."""
    dtype: str = "float32"
    """numpy dtype name of the input, one of the tensors table (float32, uint8, ...)."""
    shape: tuple = (-1, 224, 224, 3)
    """Input shape, rank >= 1; -1 means any size."""
    output_name: str = "prob"
    """Output tensor alias; always float32 ``[batch, output_size]``."""
    output_size: int = 1000
    """Number of outputs per frame (classes)."""
    versions: tuple = (1,)
    """Loaded versions; a request without a version gets the highest one."""
    signature_name: str = "serving_default"
    """Signature name; a request with an empty signature_name gets this one."""
    extra_inputs: tuple = ()
    """Further inputs ``((name, dtype, shape), ...)``; all must have the same batch size."""

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "versions", tuple(sorted(int(v) for v in self.versions)))
        object.__setattr__(self, "dtype", _dtype_name(self.dtype))
        object.__setattr__(self, "extra_inputs", tuple((n, _dtype_name(d), tuple(int(x) for x in sh))
                                                       for n, d, sh in self.extra_inputs))
        for _, _, shape in self.inputs:
            if not shape or any(d != -1 and d <= 0 for d in shape):
                raise ValueError(f"shape {list(shape)} is not valid; expected rank >= 1 with sizes > 0 or -1")
        if self.output_size <= 0:
            raise ValueError(f"output_size {self.output_size} is not valid; expected > 0")
        if not self.versions or any(v <= 0 for v in self.versions):
            raise ValueError(f"versions {list(self.versions)} is not valid; expected one or more integers > 0")


    @property
    def inputs(self):
        """All inputs as ``(name, dtype name, shape)``; dtype "string" is DT_STRING (encoded images)."""
        return ((self.input_name, self.dtype, self.shape), *self.extra_inputs)


def _dtype_name(value):
    if value == "string":
        return "string"
    try:
        dtype = np.dtype(value)
        dtype_to_dt(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"dtype {value!r} is not supported; expected one of {supported_dtypes()}, string") from None
    return dtype.name


def _dt(dtype_name):
    return types_pb2.DT_STRING if dtype_name == "string" else dtype_to_dt(dtype_name)


def _decode_images(proto):
    """Scores input for a DT_STRING tensor: each encoded image decoded to float32 RGB pixels."""
    from PIL import Image

    frames = []
    for item in proto.string_val:
        try:
            frames.append(np.asarray(Image.open(io.BytesIO(item)).convert("RGB"), dtype=np.float32))
        except Exception as e:  # noqa: BLE001 - any undecodable image is the client's error
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot decode image {len(frames)}: {e}") from None
    return frames


def _dt_text(dt):
    """TensorFlow's short name of a DataType, e.g. DT_FLOAT -> 'float' (as in TF error messages)."""
    name = DT_NAMES.get(dt)
    return name[3:].lower() if name else f"type {dt}"


def _shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


def model_function(frames, output_size):
    """The demo model: float32 ``[batch, output_size]`` scores from any ``[batch, ...]`` input.

    Per frame: flatten, pad with zeros to a multiple of ``output_size``, take
    the mean of each of the ``output_size`` contiguous chunks, then softmax.
    Deterministic; each output row sums to 1.
    """
    batch = frames.shape[0]
    flat = frames.reshape(batch, int(np.prod(frames.shape[1:]))).astype(np.float32, copy=False)
    chunk = max(1, -(-flat.shape[1] // output_size))
    pad = chunk * output_size - flat.shape[1]
    if pad:
        flat = np.pad(flat, ((0, 0), (0, pad)))
    scores = flat.reshape(batch, output_size, chunk).mean(axis=2, dtype=np.float32)
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    return scores


class _Abort(Exception):
    """A request error: the gRPC status code and the details text."""

    def __init__(self, code, details):
        super().__init__(details)
        self.code = code
        self.details = details


class DemoServer:
    """A TF-Serving-compatible gRPC server on a thread pool, with injected delay and failures.

    Args:
        models: the served models (a list of ModelConfig; default one ``resnet``).
        host: address to bind, e.g. "127.0.0.1" or "0.0.0.0".
        port: TCP port; 0 picks a free one (read ``.port`` after ``start()``).
        delay_ms: milliseconds every successful Predict sleeps (models inference time).
        slow_every: if > 0, every slow_every-th Predict (1-based, counting all
            Predict calls) sleeps ``slow_delay_ms`` instead of ``delay_ms``.
        slow_delay_ms: the delay of those slow requests, milliseconds.
        fail_every: if > 0, every fail_every-th Predict fails at once (no delay)
            with status ``fail_code`` and details "injected failure".
        fail_code: a grpc.StatusCode name such as "UNAVAILABLE", "INTERNAL",
            "RESOURCE_EXHAUSTED".
        workers: thread-pool size = the most Predicts served at the same time.
        metadata: False makes GetModelMetadata and GetModelStatus answer
            UNIMPLEMENTED, like a server without them.
        tls: None (insecure) or (certificate PEM bytes, private key PEM bytes,
            client CA PEM bytes or None); with a client CA, clients must
            present a certificate it signed (mutual TLS).

    Message sizes are unlimited in both directions (gRPC's default receive
    limit of 4 MB would reject a batch of 8 float32 224x224x3 frames).
    """

    def __init__(self, models=None, host="127.0.0.1", port=0, delay_ms=0.0, slow_every=0, slow_delay_ms=0.0,
                 fail_every=0, fail_code="UNAVAILABLE", workers=16, metadata=True, tls=None):
        models = list(models) if models is not None else [ModelConfig()]
        if not models:
            raise ValueError("models is empty; expected at least one ModelConfig")
        self.models = {m.name: m for m in models}
        if len(self.models) != len(models):
            raise ValueError(f"model names {[m.name for m in models]} are not unique")
        try:
            self.fail_code = fail_code if isinstance(fail_code, grpc.StatusCode) else grpc.StatusCode[str(fail_code).upper()]
        except KeyError:
            raise ValueError(f"fail_code {fail_code!r} is not a gRPC status code name; expected e.g. UNAVAILABLE, INTERNAL") from None
        if self.fail_code == grpc.StatusCode.OK:
            raise ValueError("fail_code 'OK' is not a failure; expected e.g. UNAVAILABLE, INTERNAL")
        for label, value in (("delay_ms", delay_ms), ("slow_every", slow_every), ("slow_delay_ms", slow_delay_ms),
                             ("fail_every", fail_every)):
            if value < 0:
                raise ValueError(f"{label} {value} is not valid; expected >= 0")
        if workers < 1:
            raise ValueError(f"workers {workers} is not valid; expected >= 1")
        self.host = host
        self.port = port
        self.delay_ms = float(delay_ms)
        self.slow_every = int(slow_every)
        self.slow_delay_ms = float(slow_delay_ms)
        self.fail_every = int(fail_every)
        self.workers = int(workers)
        self.metadata = metadata
        self.tls = tls
        self.last_call_metadata = {}
        """gRPC metadata (key -> value) of the last Predict call, for tests."""
        self._lock = threading.Lock()
        self._server = None
        self.reset_counts()

    @property
    def address(self):
        """"HOST:PORT" to give a client (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self):
        """Bind and start serving; returns the bound port. Raises RuntimeError if the port cannot be bound."""
        if self._server is not None:
            raise RuntimeError("DemoServer is already started")
        options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1),
                   ("grpc.so_reuseport", 0)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="demo-server"),
                             options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_PredictionService(self), server)
        if self.metadata:
            model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self), server)
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            if self.tls:
                cert, key, client_ca = self.tls
                credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                                          require_client_auth=client_ca is not None)
                port = server.add_secure_port(f"{host}:{self.port}", credentials)
            else:
                port = server.add_insecure_port(f"{host}:{self.port}")
        except RuntimeError:
            port = 0
        if port == 0:
            server.stop(None)
            raise RuntimeError(f"cannot bind {host}:{self.port}; expected a free port (or 0 for any free port)")
        self.port = port
        server.start()
        self._server = server
        return port

    def stop(self, grace=None):
        """Stop serving; in-flight calls get ``grace`` seconds to finish (None: cancel them now). Blocks until stopped."""
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def counts(self):
        """A snapshot of the Predict counters.

        Returns a dict: requests (Predict calls received), ok, failed (any
        error status, injected or not), frames (sum of the batch sizes of
        successful requests), first_ok_start and last_ok_end (``time.time()``
        seconds: arrival of the earliest successful request, completion of the
        latest one; None before any).
        """
        with self._lock:
            return dict(self._counts)

    def reset_counts(self):
        """Zero the counters; the slow_every/fail_every cycles restart at request 1."""
        with self._lock:
            self._counts = {"requests": 0, "ok": 0, "failed": 0, "frames": 0, "first_ok_start": None, "last_ok_end": None}

    # --- request handling (called on the server's worker threads) ---

    def _resolve(self, model_spec):
        """(ModelConfig, served version) for a ModelSpec, or _Abort NOT_FOUND like TF Serving."""
        name = model_spec.name
        model = self.models.get(name)
        choice = model_spec.WhichOneof("version_choice")
        if choice == "version":
            version = model_spec.version.value
            if model is None or version not in model.versions:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({name}, {version})")
            return model, version
        if model is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
        if choice == "version_label" and model_spec.version_label != _STABLE_LABEL:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Unrecognized servable version label: {model_spec.version_label}")
        return model, model.versions[-1]

    def _check_signature(self, model, signature_name):
        if signature_name and signature_name != model.signature_name:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f'Serving signature key "{signature_name}" not found.')

    def _predict(self, request):
        """Validate, run the demo model, build the response; raises _Abort on errors."""
        model, version = self._resolve(request.model_spec)
        self._check_signature(model, request.model_spec.signature_name)
        names = set(request.inputs)
        expected = [name for name, _, _ in model.inputs]
        if len(names) != len(expected):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         f"input size does not match signature: {len(names)}!={len(expected)} len({{{','.join(sorted(names))}}}) "
                         f"!= len({{{','.join(sorted(expected))}}}). Missing but required: {{{','.join(sorted(set(expected) - names))}}}.")
        unknown = sorted(names - set(expected))
        if unknown:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                         f"input tensor alias not found in signature: {unknown[0]}. "
                         f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.")
        for alias in request.output_filter:
            if alias != model.output_name:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                             f"output tensor alias not found in signature: {alias} "
                             f"Outputs expected to be in the set {{{model.output_name}}}.")
        batches, scores = set(), None
        for index, (name, dtype, model_shape) in enumerate(model.inputs):
            proto = request.inputs[name]
            expected_dt = _dt(dtype)
            if proto.dtype != expected_dt:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                             f"Expects arg[{index}] to be {_dt_text(expected_dt)} but {_dt_text(proto.dtype)} is provided")
            shape = [d.size for d in proto.tensor_shape.dim]
            if len(shape) != len(model_shape) or any(e != -1 and e != d for e, d in zip(model_shape, shape)):
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT,
                             f"input tensor {name} has shape {_shape_text(shape)} "
                             f"but the signature expects {_shape_text(model_shape)}")
            if dtype == "string":
                frames = _decode_images(proto)
                batches.add(len(frames))
                if index == 0:
                    scores = np.concatenate([model_function(f[None], model.output_size) for f in frames]) \
                        if frames else np.zeros((0, model.output_size), np.float32)
                continue
            try:
                frames = tensor_proto_to_ndarray(proto)
            except ValueError as e:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
            batches.add(frames.shape[0] if frames.ndim else 1)
            if index == 0:
                scores = model_function(frames, model.output_size)
        if len(batches) != 1:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"inputs have different batch sizes {sorted(batches)}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = model.signature_name
        response.outputs[model.output_name].CopyFrom(ndarray_to_tensor_proto(scores))
        return response, batches.pop()

    def _handle_predict(self, request, context):
        start = time.time()
        self.last_call_metadata = dict(context.invocation_metadata())
        with self._lock:
            self._counts["requests"] += 1
            index = self._counts["requests"]
        try:
            if self.fail_every and index % self.fail_every == 0:
                raise _Abort(self.fail_code, "injected failure")
            response, batch = self._predict(request)
            slow = self.slow_every and index % self.slow_every == 0
            delay_ms = self.slow_delay_ms if slow else self.delay_ms
            if delay_ms > 0:
                time.sleep(delay_ms / 1000.0)
        except Exception as e:  # _Abort: a request error; anything else is a bug, reported as INTERNAL
            with self._lock:
                self._counts["failed"] += 1
            if isinstance(e, _Abort):
                context.abort(e.code, e.details)
            context.abort(grpc.StatusCode.INTERNAL, f"demo server error: {e!r}")
        end = time.time()
        with self._lock:
            c = self._counts
            c["ok"] += 1
            c["frames"] += batch
            c["first_ok_start"] = start if c["first_ok_start"] is None else min(c["first_ok_start"], start)
            c["last_ok_end"] = end if c["last_ok_end"] is None else max(c["last_ok_end"], end)
        return response

    def _handle_metadata(self, request, context):
        if not self.metadata:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
        try:
            model, version = self._resolve(request.model_spec)
            if not request.metadata_field:
                raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "GetModelMetadataRequest must specify at least one metadata_field")
            for field in request.metadata_field:
                if field != "signature_def":
                    raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
        except _Abort as e:
            context.abort(e.code, e.details)
        signature = meta_graph_pb2.SignatureDef(method_name=_PREDICT_METHOD_NAME)
        for name, dtype, shape in model.inputs:
            signature.inputs[name].CopyFrom(_tensor_info(name, _dt(dtype), shape))
        signature.outputs[model.output_name].CopyFrom(
            _tensor_info(model.output_name, dtype_to_dt(np.float32), (-1, model.output_size)))
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        signature_map.signature_def[model.signature_name].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = model.name
        response.model_spec.version.value = version
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def _handle_status(self, request, context):
        if not self.metadata:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
        try:
            model, version = self._resolve(request.model_spec)
        except _Abort as e:
            context.abort(e.code, e.details)
        has_version = request.model_spec.WhichOneof("version_choice") is not None
        response = get_model_status_pb2.GetModelStatusResponse()
        for v in ([version] if has_version else model.versions):
            status = response.model_version_status.add(version=v, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
            status.status.SetInParent()  # error_code OK, empty message
        return response


def _tensor_info(name, dt, shape):
    """A TensorInfo like TF Serving's: name "NAME:0", dtype, shape with -1 for dynamic dims."""
    info = meta_graph_pb2.TensorInfo(name=f"{name}:0", dtype=dt)
    info.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape)
    return info


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, owner):
        self._owner = owner

    def Predict(self, request, context):
        return self._owner._handle_predict(request, context)

    def GetModelMetadata(self, request, context):
        return self._owner._handle_metadata(request, context)


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, owner):
        self._owner = owner

    def GetModelStatus(self, request, context):
        return self._owner._handle_status(request, context)


# --- command line ---

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


def _status_code(text):
    name = text.upper()
    if name not in grpc.StatusCode.__members__ or name == "OK":
        raise argparse.ArgumentTypeError(f"fail code {text!r} is not a gRPC status code name; expected e.g. UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED")
    return name


def build_parser():
    """The command-line parser of ``python -m tfs_user.demo_server``."""
    d = ModelConfig()
    p = _Parser(prog="python -m tfs_user.demo_server", description="Serve a demo model over the TF Serving gRPC API.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=9000, help="TCP port, 0 = any free port (default: 9000)")
    p.add_argument("--model-name", default=d.name, help=f"model name (default: {d.name})")
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
    p.add_argument("--workers", type=_non_negative(int), default=16, help="server threads = concurrent Predicts (default: 16)")
    p.add_argument("--no-metadata", action="store_true", help="answer GetModelMetadata/GetModelStatus with UNIMPLEMENTED")
    return p


def main(argv=None):
    """Run the demo server until SIGINT/SIGTERM; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        model = ModelConfig(name=args.model_name, input_name=args.input_name, dtype=args.dtype, shape=args.shape,
                            output_name=args.output_name, output_size=args.output_size, versions=args.versions)
        server = DemoServer([model], host=args.host, port=args.port, delay_ms=args.delay_ms,
                            slow_every=args.slow_every, slow_delay_ms=args.slow_delay_ms, fail_every=args.fail_every,
                            fail_code=args.fail_code, workers=args.workers, metadata=not args.no_metadata)
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
    print(f"demo server listening on {server.address}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(grace=1.0)
    c = server.counts()
    print(f"demo server served {c['requests']} requests ({c['ok']} ok, {c['failed']} failed), {c['frames']} frames",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
