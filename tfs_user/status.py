"""The periodic status line of headless runs and its history file ``PREFIX_tfs_history.csv``.

Every ``--status-interval`` seconds while the test runs (the run object's status loop): one
console line (users, req/s and FPS since the previous line, p50/p99 so far, failures) and the
same figures as a CSV row. Imports neither Locust nor gRPC.
"""

import csv
import time

from tfs_user.report import cell_text, ms_text, percent_text

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
        ratio = total.failures / total.requests if total.requests else None
        line = (f"[tfs] users {users} | {rps:.1f} req/s | {fps:.1f} FPS | p50 {ms_text(total.percentile_ms(50))} ms | "
                f"p99 {ms_text(total.percentile_ms(99))} ms | failures {total.failures} ({percent_text(ratio)} %)")
        history = [f"{time.time():.3f}", users, total.requests, total.failures, total.frames,
                   f"{rps:.3f}", f"{fps:.3f}", cell_text(total.percentile_ms(50)), cell_text(total.percentile_ms(99))]
        return line, history


class HistoryFile:
    """``PREFIX_tfs_history.csv``: the HISTORY_COLUMNS header, then one row per status line; ``close()`` closes it."""

    def __init__(self, path):
        self._file = open(path, "w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(HISTORY_COLUMNS)

    def write(self, row):
        self._writer.writerow(row)
        self._file.flush()

    def close(self):
        self._file.close()
