"""Locust's own CSV files, made final at exit.

Locust 2.47's ``StatsCSVFileWriter`` rewrites ``PREFIX_stats.csv``, ``_failures.csv`` and
``_exceptions.csv`` once a second from a greenlet and never at exit (``close_files()`` only
closes them): a short run leaves ``Aggregated,0,0,...`` and a longer one misses its last second
(seen: 3 607 in the file, 3 611 in Locust's final console table). Its greenlet also goes on
writing into the closed files while the process exits (``ValueError: I/O operation on closed
file``). ``install()`` makes Locust use the subclass below: on ``quitting`` it stops the runner
(as Locust does next), stops that greenlet and writes the final tables, before Locust prints
its own (``--json`` printing empties Locust's per-name entries, so it must be before).
"""

import os

import gevent
from locust import stats

SUFFIXES = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv")
"""The files Locust opens for ``--csv PREFIX`` (before our ``init`` runs)."""


def remove_empty(prefix):
    """Remove Locust's still-empty CSV files of ``prefix`` (a run that never started leaves nothing behind)."""
    for path in [f"{prefix}{suffix}" for suffix in SUFFIXES] if prefix else []:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            os.remove(path)


class FinalStatsCSVFileWriter(stats.StatsCSVFileWriter):
    """``StatsCSVFileWriter`` that writes its tables once more, final, when the run quits."""

    def __init__(self, environment, *args, **kwargs):
        super().__init__(environment, *args, **kwargs)
        self._writer_greenlet = None
        environment.events.quitting.add_listener(self._write_final_tables)

    def stats_writer(self):
        self._writer_greenlet = gevent.getcurrent()
        return super().stats_writer()

    def _stop_writing(self):
        if self._writer_greenlet is not None and self._writer_greenlet is not gevent.getcurrent():
            self._writer_greenlet.kill(block=True)
        self._writer_greenlet = None

    def _write_final_tables(self, **kwargs):
        runner = self.environment.runner
        if runner is not None:
            runner.quit()  # what Locust's shutdown does next: the last requests and worker reports are in
        self._stop_writing()
        for handle, writer, write_table in (
                (self.requests_csv_filehandle, self.requests_csv_writer, self.requests_csv),
                (self.failures_csv_filehandle, self.failures_csv_writer, self.failures_csv),
                (self.exceptions_csv_filehandle, self.exceptions_csv_writer, self.exceptions_csv)):
            if not handle.closed:
                handle.seek(0)
                handle.truncate()
                write_table(writer)  # header and rows, as Locust's own loop writes them
                handle.flush()

    def close_files(self):
        self._stop_writing()
        super().close_files()


def install():
    """Make ``locust.main`` create FinalStatsCSVFileWriter for ``--csv`` (it looks the class up at run time)."""
    stats.StatsCSVFileWriter = FinalStatsCSVFileWriter
