"""The periodic status line of headless runs and its history file ``PREFIX_tfs_history.csv``.

Every ``--status-interval`` seconds while the test runs: one console line (users, req/s and
FPS since the previous line, p50/p99 so far, failures) and the same figures as a CSV row.
"""

import csv
import time

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from tfs_user.report import ms_text

HISTORY_COLUMNS = ["Timestamp", "Users", "Requests", "Failures", "Frames", "Requests/s", "FPS", "p50 ms", "p99 ms"]


class StatusLine:
    """Periodic one-line status: users, current req/s and FPS (since the last line), p50/p99 so far, failures."""

    def __init__(self):
        self._last = (time.monotonic(), 0, 0)  # (time, ok, frames) at the previous line

    def format(self, recorder, users):
        total = recorder.total()
        now = time.monotonic()
        rps = fps = 0.0
        if total.ok < self._last[1]:  # statistics were reset (a new test)
            self._last = (now, 0, 0)
        if now > self._last[0]:
            elapsed = now - self._last[0]
            rps = (total.ok - self._last[1]) / elapsed
            fps = (total.frames - self._last[2]) / elapsed
        self._last = (now, total.ok, total.frames)
        ratio = total.failures / total.requests if total.requests else 0.0
        line = (f"[tfs] users {users} | {rps:.1f} req/s | {fps:.1f} FPS | p50 {ms_text(total.percentile_ms(50))} ms | "
                f"p99 {ms_text(total.percentile_ms(99))} ms | failures {total.failures} ({100 * ratio:.2f} %)")
        history = [f"{time.time():.3f}", users, total.requests, total.failures, total.frames,
                   f"{rps:.3f}", f"{fps:.3f}", ms_text(total.percentile_ms(50)), ms_text(total.percentile_ms(99))]
        return line, history


class StatusPrinter:
    """A greenlet printing a StatusLine of ``run.recorder`` every ``interval_s`` seconds (when the test runs),
    and appending it to ``PREFIX_tfs_history.csv`` when ``csv_prefix`` is given; ``stop()`` closes the file."""

    def __init__(self, run, interval_s, csv_prefix=""):
        self._run = run
        self._interval_s = interval_s
        self._path = f"{csv_prefix}_tfs_history.csv" if csv_prefix else ""
        self._file = None
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self):
        status = StatusLine()
        runner = self._run.environment.runner
        while True:
            gevent.sleep(self._interval_s)
            if runner.state not in (STATE_RUNNING, STATE_SPAWNING):
                continue
            line, row = status.format(self._run.recorder, runner.user_count)
            print(line, flush=True)
            if self._path:
                if self._file is None:
                    self._file = open(self._path, "w", newline="")
                    self._writer = csv.writer(self._file)
                    self._writer.writerow(HISTORY_COLUMNS)
                self._writer.writerow(row)
                self._file.flush()

    def stop(self):
        """End the loop and close the history file."""
        self._greenlet.kill(block=False)
        if self._file is not None:
            self._file.close()
            self._file = None
