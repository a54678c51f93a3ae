"""What the demo server keeps of its inference calls (Predict, ModelInfer) for a test to read: counts,
the recorded requests and the service times, all under one lock (the calls run on worker threads).

Every call received ends as exactly one of ok, failed (answered with an error status) or cancelled
(the client's deadline passed or it cancelled: in the handler, or while it waited for a worker), so
``ok + failed + cancelled == requests`` once no call is in the handler (``settle``)."""

import collections
import threading

DEFAULT_RECORD_LIMIT = 10000
SERVICE_TIMES_KEPT = 100_000
"""How many service times ``Ledger.service_times_ms`` keeps (the latest; 0.8 MB)."""


class Ledger:
    """Counts, recorded requests (``record``: keep them, at most ``record_limit``, the latest) and
    service times of one DemoServer's inference calls."""

    def __init__(self, record=False, record_limit=DEFAULT_RECORD_LIMIT):
        self.record = bool(record)
        self.lock = threading.Condition()
        self._received = collections.deque(maxlen=int(record_limit))
        self._service_ms = collections.deque(maxlen=SERVICE_TIMES_KEPT)
        self.reset()

    def reset(self):
        """Zero the counts and forget the recorded requests and service times."""
        with self.lock:
            self.counts = {"requests": 0, "ok": 0, "failed": 0, "cancelled": 0, "frames": 0,
                           "first_ok_start": None, "last_ok_end": None}
            self._handled = 0  # calls that reached the handler: the injected cycles' index
            self._models = {}  # model name -> its requests, ok, failed, cancelled, frames (calls that reached the handler)
            self._batches = {}  # batch size -> successful calls
            self.in_handler = 0
            self._received.clear()
            self._service_ms.clear()

    def _model(self, name):
        counts = self._models.get(name)
        if counts is None:
            counts = self._models[name] = {"requests": 0, "ok": 0, "failed": 0, "cancelled": 0, "frames": 0}
        return counts

    def arrived(self, receipt, model=""):
        """A call entered the handler: its 1-based index among the calls that did, and its ReceivedRequest when
        recording (``receipt(index)`` makes it, under the lock: the records' order is the arrival order) or None."""
        with self.lock:
            self._model(model)["requests"] += 1
            self.counts["requests"] += 1
            self.in_handler += 1
            self._handled += 1
            index = self._handled
            received = None
            if self.record:
                received = receipt(index)
                self._received.append(received)
        return index, received

    def failed(self, cancelled=False, model=""):
        """A call left the handler with an error status; ``cancelled``: because its client's deadline passed or
        it cancelled (the client never saw our answer)."""
        with self.lock:
            self._model(model)["cancelled" if cancelled else "failed"] += 1
            self.counts["cancelled" if cancelled else "failed"] += 1
            self._left()

    def unserved(self):
        """A call was cancelled while it waited for a worker: received, never in the handler."""
        with self.lock:
            self.counts["requests"] += 1
            self.counts["cancelled"] += 1

    def settle(self, timeout_s):
        """Wait until no call is in the handler, at most ``timeout_s``; the number still in it."""
        with self.lock:
            self.lock.wait_for(lambda: self.in_handler == 0, timeout_s)
            return self.in_handler

    def _left(self):
        self.in_handler -= 1
        if self.in_handler == 0:
            self.lock.notify_all()

    def succeeded(self, batch, start, end, service_ms, model=""):
        """A call answered OK: ``batch`` frames, ``start``/``end`` its ``time.time()`` arrival and completion,
        ``service_ms`` how long the handler took."""
        with self.lock:
            self._service_ms.append(service_ms)
            counts = self._model(model)
            counts["ok"] += 1
            counts["frames"] += batch
            self._batches[batch] = self._batches.get(batch, 0) + 1
            c = self.counts
            c["ok"] += 1
            c["frames"] += batch
            c["first_ok_start"] = start if c["first_ok_start"] is None else min(c["first_ok_start"], start)
            c["last_ok_end"] = end if c["last_ok_end"] is None else max(c["last_ok_end"], end)
            self._left()

    def snapshot(self):
        """The counts, with ``models`` ({name: {requests, ok, failed, cancelled, frames}} of the calls that
        reached the handler: a call cancelled while it waited for a worker names no model) and ``batches``
        ({batch size: successful calls})."""
        with self.lock:
            return dict(self.counts, models={name: dict(c) for name, c in self._models.items()},
                        batches=dict(self._batches))

    def service_times_ms(self):
        with self.lock:
            return list(self._service_ms)

    def received(self):
        with self.lock:
            return list(self._received)
