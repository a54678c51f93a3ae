"""Before a test (local runner or master, Locust's ``init``): the demo server, the options, settings and
data of each TfsUser class, and for a headless or autostarted run the server and model at every endpoint.
A problem is one line on stderr and exit code 2 (``fail``), before any user exists."""

import logging
import os
import signal
import sys

import gevent

from tfs_user.demo import process as demo_process
from tfs_user.live import print_status
from tfs_user.option_values import DEMO_METRICS
from tfs_user.results import baseline, locust_csv
from tfs_user.results.report import output_path_problem

logger = logging.getLogger(__name__)

PREFLIGHT_TIMEOUT_S = 5.0
"""Seconds to wait for the server to accept a connection before a headless run starts
(``--wait-for-model`` instead, when it is longer)."""

def check_before_start(run):
    """Local runner or master: demo server, settings and data, and (headless) the server and model.

    Whatever ends it early leaves no demo server behind: a bad value is one line and exit 2, Ctrl-C one line
    and exit 130, and an unexpected error stops the demo server before it propagates."""
    try:
        _check_before_start(run)
    except KeyboardInterrupt:
        _end(run, CTRL_C_LINE, 130)
    except MemoryError as e:
        fail(run, f"the request bodies need more memory than this machine has ({e}); lower --batch-size or use "
                  "smaller frames")
    except BaseException:  # SystemExit from fail() too: the demo server never outlives this process
        run.demo = demo_process.stop(run.demo, stream=run.options.out)
        raise


def no_users_problem(run, label):
    """Why the users given (``parsed_options.num_users``, the command line's or the web form's) start no test, as
    one line naming ``label`` (the option or form field); None when they do. 0 users send nothing (seen: a headless
    ``-u 0`` ran its --run-time and exited 0 with no request), unless a load shape sets the users itself: a
    ``--sweep users:...`` or a locustfile's own LoadTestShape (a rate sweep keeps --users for each step)."""
    environment = run.environment
    if getattr(environment.parsed_options, "num_users", None) != 0:
        return None
    shape, capacity = environment.shape_class, run.capacity
    ours = capacity is not None and shape is not None and shape is capacity.shape
    if shape is not None and (not ours or capacity.config.sweep.kind == "users"):
        return None
    return (f"{label} is 0: no user would start and the run would send nothing; expected 1 or more (the users bound "
            "the requests in flight, in open loop too)")


def _check_before_start(run):
    options = run.options
    environment = run.environment
    if getattr(environment.parsed_options, "run_time", None) == 0:
        fail(run, "--run-time 0 would mean no time limit in Locust; expected a duration > 0 such as 30s (leave "
                  "--run-time out to run until stopped)")
    problem = no_users_problem(run, "--users") if options.headless or options.autostart else None
    if problem:
        fail(run, problem)
    for option, path, example in (("--json-summary", options.json_summary, "run.json"),
                                  ("--plot", getattr(environment.parsed_options, "plot", ""), "plot.html")):
        problem = output_path_problem(option, path, example)
        if problem:
            fail(run, problem)
    if "iterations" in vars(environment.parsed_options):  # another plugin (locust-plugins) owns --iterations
        logger.info("notice: --iterations belongs to another plugin here (locust-plugins: requests per process, "
                    "not per user); use --tfs-iterations (config key tfs-iterations) for requests per user")
    if options.demo_server:
        try:
            run.demo = demo_process.start(options.demo_server_args, stream=options.out)
        except demo_process.DemoServerError as e:
            fail(run, str(e))
        # an http:// or https:// --host means its REST port (the host:port part is the demo server's)
        given = environment.parsed_options.host or ""
        http = given.startswith(("http://", "https://"))
        address = f"http://{run.demo.rest_address}" if http and run.demo.rest_address else run.demo.address
        if given and not http:  # an address given beside --demo-server is not tested: say so (seen: silently dropped)
            logger.info(f"notice: --demo-server: the run tests the demo server at {address}, not --host {given}")
        environment.host = environment.parsed_options.host = address
    if DEMO_METRICS in options.server_metrics and not options.demo_server:
        fail(run, "--server-metrics demo reads the demo server's metrics page; expected --demo-server with it "
                  "(or the URL of your server's Prometheus page)")
    checks = []
    try:
        for user_class in run.tfs_user_classes():
            settings = user_class.make_settings(environment)
            checks.append((settings, run.preparer.open(settings, master=run.master) is not None))
    except ValueError as e:  # OptionError, DataError
        fail(run, str(e))
    if not (options.headless or options.autostart):
        return
    if options.baseline:
        try:
            baseline.check_before_start(run)
        except ValueError as e:  # CompareError
            fail(run, str(e))
    from tfs_user.transport.connect import wait_until_reachable

    try:
        for settings, has_data in checks:
            for endpoint in settings.endpoints:  # every endpoint, before any user starts
                wait_until_reachable(endpoint, max(PREFLIGHT_TIMEOUT_S, settings.wait_for_model_s), settings)
            run.preparer.prepare(settings, load=has_data)
    except (ConnectionError, ValueError) as e:
        fail(run, _with_trace_sizes(environment.parsed_options, settings, str(e)))
    if options.status_interval_s > 0:
        run.status = gevent.spawn(print_status, run, options.status_interval_s, options.csv_prefix)

def _with_trace_sizes(options, settings, message):
    """``message`` prefixed with the trace's batch sizes for the model when the trace chose them (the model's
    own check says --batch-size)."""
    from argparse import Namespace

    from tfs_user.capacity.state import trace_batch_sizes

    sizes = trace_batch_sizes(Namespace(**{**vars(options), "model_name": settings.model_name}))
    if not sizes:
        return message
    listed = ", ".join(str(size) for size in sizes)
    return (f"--arrival-trace {options.arrival_trace!r} asks model {settings.model_name} for batch size{'s' if len(sizes) > 1 else ''} "
            f"{listed} (its batch_size column): {message}")


def fail(run, message):
    """Fatal error before the test: one line on stderr, demo server stopped, exit code 2.

    Locust opens its CSV files before ``init``; the still-empty ones are removed
    so that a run that never started leaves nothing behind.
    """
    _end(run, f"error: {message}", 2)


CTRL_C_LINE = "stopped: Ctrl-C before the test started"


def _end(run, line, code):
    """End the process before the test: demo server stopped, Locust's empty CSV files removed, ``line``, ``code``."""
    clean_up_before_start(run, line)
    sys.exit(code)


def clean_up_before_start(run, line):
    """What ends a run before its test leaves: no demo server, no empty CSV files, no forked workers; ``line``."""
    run.demo = demo_process.stop(run.demo, stream=run.options.out)
    locust_csv.remove_empty(run.options.csv_prefix)
    _end_forked_workers(run)
    sys.stderr.write(f"{line}\n")


def _end_forked_workers(run):
    """``--processes``: Locust forked the workers before ``init``; a master that ends here leaves them retrying to
    connect, and Locust's exit waits for them (seen: exit 2 after 5 minutes of "Failed to connect to master"). They
    are this process's children (the demo server is stopped before): SIGTERM ends them while they connect."""
    if not (run.master and getattr(run.environment.parsed_options, "processes", None)):
        return
    for pid in _children():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def _children():
    """Pids of this process's children (Linux /proc; empty where it has no children lists)."""
    pids = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids += [int(pid) for pid in f.read().split()]
        except OSError:
            continue
    return pids

