"""The Locust users: ``TfsUser`` (abstract, for your own locustfile) and ``OptionsTfsUser``.

One task iteration = one ``PredictionService/Predict`` call with the next batch,
and exactly one Locust request event:
request_type ``gRPC``, name ``Predict <model>``, response_time in ms (float,
``time.perf_counter`` around the call only), response_length = response bytes,
exception = ``RpcFailure`` (gRPC status code name + details), ``BadResponse``
(returned but wrong) or None. Warm-up requests are named
``Predict <model> (warm-up)`` and requests that complete after the runner began
to stop ``Predict <model> (after stop)``, so that Locust's own table keeps them
apart from the measured ones.
"""

import itertools
import logging
import time

import grpc
from locust import User, task

from tfs_user import capacity, control, hooks, webui  # noqa: F401  (importing them registers their event listeners)
from tfs_user.client import RpcFailure, Transport, check_response, is_tls, open_channel, predict_call
from tfs_user.prepare import prepare
from tfs_user.options import Settings, resolve_target

logger = logging.getLogger(__name__)

_user_numbers = itertools.count(1)
UNAVAILABLE_PAUSE_S = 0.1
"""Pause after an UNAVAILABLE failure (server down or restarting), seconds."""
PARKED_WAIT_S = 3600.0
"""Wait time of a user whose iterations are done: it stays alive (so Locust does not respawn it) but idle."""


class TfsUser(User):
    """Abstract Locust user that load-tests a TF Serving gRPC ``Predict`` endpoint.

    Subclass it in your locustfile and set the class attributes, or override
    ``settings()``. ``host`` is ``HOST:PORT`` (optional ``grpc://``); Locust's
    ``--host`` overrides it. Each user opens one gRPC channel in ``on_start``
    and closes it in ``on_stop``; the closed loop sends the next request as soon
    as the previous one returns (``pause_s`` adds think time, in seconds).
    """

    abstract = True
    host = "localhost:9000"
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
    """.npy file [n,h,w,c] or [n,c,h,w]; empty = synthetic frames of synthetic_shape."""
    synthetic_shape: tuple = ()
    """Shape of one synthetic frame; () = from the model's signature, else (224, 224, 3)."""
    dtype: str = ""
    """numpy dtype to send; empty = the signature's input dtype, else as stored."""
    layout: str = "auto"
    """auto, keep, nhwc-to-nchw or nchw-to-nhwc (see README "Inputs")."""
    validate_outputs: bool = True
    """Count a response without outputs or with a wrong first dimension as a failure."""
    batch_size: int = 1
    """Frames per request."""
    iterations: int = -1
    """Measured requests per user: N > 0, 0 = one pass over the file, -1 = no limit."""
    warmup_iterations: int = 1
    """Requests per user sent before measuring, reported apart."""
    report_every: int = 0
    """Log a progress line every N requests (0 = off)."""
    timeout_s: float = 10.0
    """gRPC deadline per request, in seconds."""
    pause_s: float = 0.0
    """Think time between requests, in seconds."""
    request_cache_mb: int = 512
    """MiB per process for prepared request bodies."""

    def settings(self):
        """The validated Settings of this user; raises OptionError/DataError on bad values."""
        return Settings(
            target=resolve_target(self.host or ""), model_name=self.model_name, model_version=self.model_version,
            version_label=self.version_label, signature_name=self.signature_name, input_name=self.input_name,
            images_numpy_path=self.images_numpy_path, synthetic_shape=tuple(self.synthetic_shape),
            batch_size=self.batch_size, iterations=self.iterations, warmup_iterations=self.warmup_iterations,
            report_every=self.report_every, timeout_s=self.timeout_s, request_cache_mb=self.request_cache_mb,
            dtype=self.dtype, layout=self.layout, validate_outputs=self.validate_outputs,
            transport=Transport(tls=is_tls(self.host or "")))

    def on_start(self):
        # A user that cannot start stays parked (done) rather than raising StopUser:
        # Locust logs a traceback per user for exceptions from on_start, and the
        # one-line error below already says what is wrong and ends the run.
        self._done, self._channel = True, None
        try:
            s = self.settings()
            self._requests = prepare(s)
        except ValueError as e:  # OptionError, DataError, InputError, PreflightError: the run cannot go on
            control.report_error(self.environment, str(e))
            return
        self._s = s
        self._number = next(_user_numbers)
        self._channel = open_channel(s.target, s.transport)
        self._metadata = s.grpc_metadata or None
        self._pause_after_failure = 0.0
        self._predict = predict_call(self._channel)
        self._progress = control.progress(self.environment)
        self._names = {
            "measured": f"Predict {s.model_name}",
            "warmup": f"Predict {s.model_name} (warm-up)",
            "after stop": f"Predict {s.model_name} (after stop)",
        }
        self._warmups_left = s.warmup_iterations
        self._batch_index = 0
        self._sent = 0
        self._sum_ms = 0.0
        self._limit = {-1: None, 0: self._requests.batches.one_pass}.get(s.iterations, s.iterations)
        self._done = False

    def on_stop(self):
        channel = getattr(self, "_channel", None)
        if channel is not None:
            channel.close()
            self._channel = None

    def wait_time(self):
        if self._done:
            return PARKED_WAIT_S
        pause, self._pause_after_failure = self.pause_s + self._pause_after_failure, 0.0
        return pause

    @task
    def predict(self):
        """Send one Predict with the next batch and fire one request event."""
        if self._done:
            return
        s = self._s
        warmup = self._warmups_left > 0
        body = self._requests.request(0 if warmup else self._batch_index)
        ticket = capacity.begin(self.environment, scheduled=not warmup)  # open loop: waits for the next slot
        start_wall = time.time()
        start = time.perf_counter()
        try:
            response = self._predict(body, timeout=s.timeout_s, metadata=self._metadata)
            end = time.perf_counter()
            length = len(response)
            exception = check_response(response, s.batch_size) if s.validate_outputs else None
        except grpc.RpcError as e:
            end = time.perf_counter()
            length = 0
            exception = RpcFailure.from_rpc_error(e)
            if exception.code == grpc.StatusCode.UNAVAILABLE:
                # server down: retry at a bounded rate instead of a busy loop of instant failures
                self._pause_after_failure = UNAVAILABLE_PAUSE_S
        # open loop: response_time is from the scheduled send time; the service time goes into the context
        response_time, extra = ticket.finish(start, end)
        phase = "after stop" if self._progress.stopping else ("warmup" if warmup else "measured")
        self.environment.events.request.fire(
            request_type="gRPC",
            name=self._names[phase],
            response_time=response_time,
            response_length=length,
            exception=exception,
            context={"tfs": {"phase": phase, "frames": s.batch_size, "start": start_wall, "end": time.time(), **extra}},
        )
        if warmup:
            self._warmups_left -= 1
            return
        self._batch_index += 1
        self._sent += 1
        self._sum_ms += response_time
        if s.report_every and self._sent % s.report_every == 0:
            total = f"/{self._limit}" if self._limit else ""
            logger.info("user %d: Iteration %d%s; Current latency: %.2fms; Average latency: %.2fms",
                        self._number, self._sent, total, response_time, self._sum_ms / self._sent)
        if self._limit is not None and self._sent >= self._limit:
            self._done = True
            self._progress.user_done()


class OptionsTfsUser(TfsUser):
    """The concrete user of ``locustfile.py``: every setting comes from the command line,
    config file, environment or web UI form (see ``tfs_user.options``)."""

    abstract = False
    host = ""

    def settings(self):
        return Settings.from_options(self.environment.parsed_options, self.host)
