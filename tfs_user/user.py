"""The Locust users: ``TfsUser`` (abstract, for your own locustfile) and ``OptionsTfsUser``.

One task iteration = one inference call of the server's protocol (``tfs_user.protocols``:
TF Serving's ``PredictionService/Predict``) with the next batch, and exactly one Locust request
event: request_type ``gRPC`` (``HTTP`` when ``--host`` is ``http://`` or ``https://``: the REST API), name ``<verb> <model>`` (``Predict resnet``), response_time in ms (float,
``time.perf_counter`` from just before the call to the moment gRPC's wait for
the response returned on the completion engine's thread, see
``tfs_user.transport.engine.end_time``), response_length = response bytes,
exception = ``RpcFailure`` (gRPC status code name + details), ``HttpFailure`` (HTTP status and
the server's error text, a timeout, a refused or reset connection), ``BadResponse``
(returned but wrong) or None. Warm-up requests are named
``Predict <model> (warm-up)`` and requests that complete after the runner began
to stop ``Predict <model> (after stop)``, so that Locust's own table keeps them
apart from the measured ones.
"""

import argparse
import logging
import time

from locust import User, task
from locust.exception import StopUser

from tfs_user import plugin  # noqa: F401  (plugin registers the parser and init listeners)
from tfs_user.capacity import wiring as capacity
from tfs_user.capacity.state import trace_batch_sizes
from tfs_user.data.mix import MixSequence, mix_text
from tfs_user.transport.connect import connect
from tfs_user.transport.endpoints import endpoint_index, label, worker_index
from tfs_user.transport.engine import end_time
from tfs_user.transport.failures import RpcFailure, bad_response
from tfs_user.transport.http_client import HttpFailure
from tfs_user.transport.gevent_grpc import grpc
from tfs_user.phases import CONTEXT_KEY, Phase, Sample
from tfs_user.run import TfsRun
from tfs_user.settings import DEFAULTS, USER_FIELDS, Settings

logger = logging.getLogger(__name__)

UNAVAILABLE_PAUSE_S = 0.1
"""Pause after an UNAVAILABLE failure (server down or restarting), seconds."""
PARKED_WAIT_S = 3600.0
"""Wait time of a user whose iterations are done: it stays alive (so Locust does not respawn it) but idle."""


class TfsUser(User):
    """Abstract Locust user that load-tests a model server's gRPC inference call (TF Serving ``Predict``).

    Subclass it in your locustfile and set the class attributes (every field of
    ``tfs_user.settings.Settings`` but target and TLS, with the same name, type and
    default: listed below), or override ``make_settings``. ``host`` is ``HOST:PORT``
    (``grpc://``, or ``grpcs://`` for TLS; ``http://`` or ``https://`` for the server's REST API);
    Locust's ``--host`` overrides it. Each user opens one gRPC channel (or one keep-alive HTTP
    connection) in ``on_start`` and closes it in ``on_stop``; the closed loop sends the
    next request as soon as the previous one returns (``pause_s`` adds think time, seconds).
    Settings are made once per user class and test, requests prepared once per process.
    """

    abstract = True
    host = DEFAULTS.target
    _on_the_wire = False  # an open-loop request is in flight: a stop waits for it (``stop``)
    _stop_asked = False

    @classmethod
    def make_settings(cls, environment):
        """The validated Settings of this user class; raises OptionError on bad values."""
        return Settings.for_host(environment.host or cls.host or "",
                                 **{f.name: getattr(cls, f.name) for f in USER_FIELDS})

    def on_start(self):
        # A user that cannot start stays parked (done) rather than raising StopUser:
        # Locust logs a traceback per user for exceptions from on_start, and the
        # one-line error the run object logs already says what is wrong and ends the run.
        self._done, self._channel = True, None
        run = TfsRun.of(self.environment)
        self._control = run.control
        try:
            prepared = run.prepared(type(self))
        except ValueError as e:  # OptionError, DataError, InputError, PreflightError: the run cannot go on
            self._control.report_error(str(e))
            return
        s = self._s = prepared.settings
        self._control.deadline_s = max(self._control.deadline_s, s.timeout_s)
        self._names = prepared.names
        self._limit = prepared.iterations_limit
        self._number = run.next_user_number()
        endpoints = s.endpoints
        index = endpoint_index(self._number, endpoints, worker_index(self.environment.runner))
        self._endpoint = label(endpoints, index)
        self._channel = connect(endpoints[index], s)  # a gRPC channel, or a keep-alive HTTP connection
        self._metadata = s.grpc_metadata or None
        self._pause_after_failure = 0.0
        self._request_type = "HTTP" if s.http else "gRPC"
        self._call = prepared.api.open_call(self._channel, s)
        self._check_response = prepared.api.check_response
        self._warmups_left = s.warmup_iterations
        # a mixed run: each request's batch size and data file from this user's own seeded sequence
        self._mix = [(parts, p.settings.batch_size, p.requests) for _, parts, p in prepared.mix]
        stream = (worker_index(self.environment.runner), self._number)
        self._sequence = MixSequence([weight for weight, _, _ in prepared.mix], s.mix_seed, stream)
        # a trace's batch_size column picks the size; the sequence of that size's variants the data file
        self._by_size = {}
        for size in {size for _, size, _ in self._mix}:
            indices = [i for i, (_, b, _) in enumerate(self._mix) if b == size]
            weights = [prepared.mix[i][0] for i in indices]
            self._by_size[size] = (indices, MixSequence(weights, s.mix_seed, (*stream, size)))
        self._batch_index = [0] * len(self._mix)
        self._sent = 0
        self._sum_ms = 0.0
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
        """Send one inference call with the next batch and fire one request event."""
        if self._done:
            return
        s = self._s
        warmup = self._warmups_left > 0
        # open loop: waits for the next slot of this user's model
        ticket = capacity.begin(self.environment, scheduled=not warmup, lane=type(self).__name__)
        if ticket is None or self._control.stopping:
            # the run stopped while this user waited for its slot (or between its calls): that send would
            # fall after the run; sent anyway, every user's would go out at once and never be reported
            return
        # warm-up sends each variant in turn (every shape warmed), measured requests follow the sequence, or
        # the batch size of the trace line this slot replays
        variant = (s.warmup_iterations - self._warmups_left) % len(self._mix) if warmup else self._variant(ticket)
        _, _, requests = self._mix[variant]
        body = requests.request(0 if warmup else self._batch_index[variant])
        if ticket.slot is not None:  # open loop: the stop waits for this request (RunControl.drain)
            self._control.scheduled_in_flight += 1
            try:
                self._on_the_wire = True
                self._send(s, warmup, body, ticket, variant)
            finally:
                self._on_the_wire = False
                self._control.scheduled_in_flight -= 1
            if self._stop_asked:
                raise StopUser()
        else:
            self._send(s, warmup, body, ticket, variant)

    def _variant(self, ticket):
        """The mix variant of a measured request: the trace line's batch size (its data file from that size's
        own sequence), else the user's seeded sequence."""
        chosen = self._by_size.get(ticket.batch_size) if ticket.batch_size else None
        if chosen is None:
            return self._sequence.next()
        indices, sequence = chosen
        return indices[sequence.next()]

    def stop(self, force=False):
        """Locust stops this user (fewer users in a sweep or from the web UI, rebalancing): an open-loop
        request on the wire completes and is recorded first, then the user stops (a slot sent is never
        lost; seen: 64 -> 8 users at 5 req/s, a request sent and never recorded)."""
        if self._on_the_wire:
            self._stop_asked = True
            return False
        return super().stop(force)

    def _checked(self, response, batch_size, s):
        """The answer check's failure (a BadResponse) or None; an answer so odd that the check itself raises is
        a failure too, named as such (a request without its event would vanish from every count)."""
        try:
            return self._check_response(response, batch_size, self._endpoint, s.output_names)
        except Exception as e:  # noqa: BLE001 - any answer ends as one request event
            return bad_response(f"answer of {len(response)} bytes could not be checked ({type(e).__name__}: {e})",
                                self._endpoint)

    def _send(self, s, warmup, body, ticket, variant):
        """One call of the mix's ``variant``, its request event, and the user's counters."""
        parts, batch_size, _ = self._mix[variant]
        start_wall = time.time()
        start = time.perf_counter()
        try:
            response = self._call(body, timeout=s.timeout_s, metadata=self._metadata)
            end = end_time(start)
            length = len(response)
            exception = self._checked(response, batch_size, s) if s.validate_outputs else None
        except grpc.RpcError as e:
            end = end_time(start)
            length = 0
            exception = RpcFailure.from_rpc_error(e, self._endpoint)
            if exception.code == grpc.StatusCode.UNAVAILABLE:
                # server down: retry at a bounded rate instead of a busy loop of instant failures
                self._pause_after_failure = UNAVAILABLE_PAUSE_S
        except HttpFailure as e:
            end = time.perf_counter()
            length = 0
            exception = e.at(self._endpoint)
            self._pause_after_failure = e.pause_s  # server down or restarting: retry at a bounded rate
        except Exception as e:  # noqa: BLE001 - whatever a call raises ends as this request's failure, never a lost one
            end = time.perf_counter()
            length = 0
            exception = bad_response(f"the call raised {type(e).__name__}: {e}", self._endpoint)
        # open loop: response time and start from the scheduled send time; the service time rides in the context
        response_time, start_wall, extra = ticket.finish(start, end, start_wall)
        # a scheduled (open-loop) request counts wherever it completes: the stop waits for it; a closed-loop
        # one completing after the stop carries the stop's delays and is left out
        stopped = self._control.stopping and ticket.slot is None
        phase = Phase.AFTER_STOP if stopped else (Phase.WARMUP if warmup else Phase.MEASURED)
        self.environment.events.request.fire(
            request_type=self._request_type,
            name=self._names[phase],
            response_time=response_time,
            response_length=length,
            exception=exception,
            context={CONTEXT_KEY: Sample(phase, batch_size, self._endpoint, parts), **extra},
            start_time=start_wall,
        )
        if warmup:
            self._warmups_left -= 1
            return
        self._batch_index[variant] += 1
        self._sent += 1
        self._sum_ms += response_time
        if s.report_every and self._sent % s.report_every == 0:
            total = f"/{self._limit}" if self._limit else ""
            logger.info("user %d: Iteration %d%s; Current latency: %.2fms; Average latency: %.2fms",
                        self._number, self._sent, total, response_time, self._sum_ms / self._sent)
        if self._limit is not None and self._sent >= self._limit:
            self._done = True
            self._control.user_done()


TfsUser.__annotations__ = {}  # its own, not User's
for _field in USER_FIELDS:  # every setting a typed class attribute, from Settings' one definition
    setattr(TfsUser, _field.name, _field.default)
    TfsUser.__annotations__[_field.name] = _field.type
TfsUser.__doc__ += "\n    Attributes (defaults): " + ", ".join(f"``{f.name}={f.default!r}``" for f in USER_FIELDS) + ".\n"
del _field


class OptionsTfsUser(TfsUser):
    """The concrete user of ``locustfile.py``: every setting comes from the command line,
    config file, environment or web UI form (see ``tfs_user.options``)."""

    abstract = False
    host = ""
    model_options = {}
    """Option dest -> text overriding the run's options for this class (a ``--models`` model's class, see
    ``tfs_user.models``); {} = the options as given."""

    @classmethod
    def make_settings(cls, environment):
        options = environment.parsed_options
        if cls.model_options:
            options = argparse.Namespace(**{**vars(options), **cls.model_options})
        sizes = trace_batch_sizes(options)  # a trace's batch_size column: the sizes it asks of this model
        if sizes:
            options = argparse.Namespace(**{**vars(options), "batch_size": mix_text([(size, 1.0) for size in sizes])})
        return Settings.from_options(options, environment.host or cls.host)
