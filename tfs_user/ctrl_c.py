"""Ctrl-C in a run: the first stops the test as Locust does (summary, files, exit code), the second stops the
waits of that stop (``RunControl.hurry``), the third ends the process at once."""

import os
import signal
import time

import gevent

from tfs_user.results.verdict import INTERRUPTED


def take_sigint(on_again=None, exit_code=lambda: INTERRUPTED, ended_before_start=lambda: False):
    """Ctrl-C as a signal handler of the event loop, not a KeyboardInterrupt wherever Python happens to be.

    By default SIGINT raises KeyboardInterrupt in whichever greenlet runs at that moment, often
    a user inside a gRPC call: a traceback per process and, on a worker, no final report. Here
    the loop takes the signal and raises KeyboardInterrupt in the main greenlet, where Locust
    expects it (it then saves the HTML report and shuts down: quitting, summary, exit code).
    A worker's final report goes out on ``quitting`` (``RunControl``). Where Locust would let that
    KeyboardInterrupt out as a traceback (a headless master waiting for its workers),
    ``ended_before_start()`` cleans up and returns True, and the process exits with 130.

    The second Ctrl-C calls ``on_again`` (``RunControl.hurry``: the shutdown stops waiting) instead of
    a KeyboardInterrupt in the middle of the shutdown (seen: a traceback, exit -2, no summary). The third
    ends the process at once with one line, writing nothing more, with ``exit_code()``: the verdict's when
    the files already carry one (they must agree), else 130 (files are written whole or not at all).
    """
    main = gevent.getcurrent()
    if main.parent is not None:  # not the main greenlet (Locust used as a library): leave signals alone
        return
    pressed = []

    def on_sigint():
        pressed.append(time.monotonic())
        if len(pressed) == 1:
            if not main.dead:
                main.throw(SystemExit(INTERRUPTED) if ended_before_start() else KeyboardInterrupt)
        elif len(pressed) == 2 and on_again is not None:
            on_again()
        else:
            os.write(2, b"Ctrl-C a third time: exiting now; nothing more is written\n")
            os._exit(exit_code())

    gevent.signal_handler(signal.SIGINT, on_sigint)
