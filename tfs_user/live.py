"""The headless status loop: a console line and a history row every ``--status-interval`` seconds."""

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from tfs_user.results.status import HistoryFile, StatusLine


def print_status(run, interval_s, csv_prefix):
    """Every ``interval_s`` seconds while the test of run object ``run`` runs: a StatusLine, and a row of
    ``CSV_PREFIX_tfs_history.csv``. Runs in its own greenlet until killed."""
    status = StatusLine(run.worker_rates if run.master else None)
    runner = run.environment.runner
    history = None
    try:
        while True:
            gevent.sleep(interval_s)
            if runner.state not in (STATE_RUNNING, STATE_SPAWNING):
                continue
            line, row = status.format(run.recorder, runner.user_count)
            print(line, file=run.options.out, flush=True)
            if csv_prefix:
                history = history or HistoryFile(f"{csv_prefix}_tfs_history.csv")
                history.write(row)
    finally:  # killed at quitting
        if history is not None:
            history.close()
