"""What the demo server keeps of its inference calls (Predict, ModelInfer) for a test to read: counts,
the recorded requests and the service times, all under one lock (the calls run on worker threads)."""

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
        self.lock = threading.Lock()
        self._received = collections.deque(maxlen=int(record_limit))
        self._service_ms = collections.deque(maxlen=SERVICE_TIMES_KEPT)
        self.reset()

    def reset(self):
        """Zero the counts and forget the recorded requests and service times."""
        with self.lock:
            self.counts = {"requests": 0, "ok": 0, "failed": 0, "frames": 0, "first_ok_start": None,
                           "last_ok_end": None}
            self._received.clear()
            self._service_ms.clear()

    def arrived(self, receipt):
        """A call entered the handler: its 1-based index, and its ReceivedRequest when recording
        (``receipt(index)`` makes it, under the lock: the records' order is the arrival order) or None."""
        with self.lock:
            self.counts["requests"] += 1
            index = self.counts["requests"]
            received = None
            if self.record:
                received = receipt(index)
                self._received.append(received)
        return index, received

    def failed(self):
        with self.lock:
            self.counts["failed"] += 1

    def succeeded(self, batch, start, end, service_ms):
        """A call answered OK: ``batch`` frames, ``start``/``end`` its ``time.time()`` arrival and completion,
        ``service_ms`` how long the handler took."""
        with self.lock:
            self._service_ms.append(service_ms)
            c = self.counts
            c["ok"] += 1
            c["frames"] += batch
            c["first_ok_start"] = start if c["first_ok_start"] is None else min(c["first_ok_start"], start)
            c["last_ok_end"] = end if c["last_ok_end"] is None else max(c["last_ok_end"], end)

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def service_times_ms(self):
        with self.lock:
            return list(self._service_ms)

    def received(self):
        with self.lock:
            return list(self._received)
