"""The project's ``OptionsTfsUser`` plus a CPU probe, for ``benchmarks/overhead.py``.

    TFS_BENCH_PROBE_DIR=/tmp/probe locust -f benchmarks/probe_locustfile.py --headless ...

Each Locust process (local, master, every ``--processes`` worker) samples,
every ``SAMPLE_S`` seconds from a greenlet, its own CPU time (user + sys of all
its threads, ``resource.getrusage(RUSAGE_SELF)``), the wall clock and the number
of request events it has fired so far, and writes the samples to
``$TFS_BENCH_PROBE_DIR/probe-<pid>.json`` when it quits. overhead.py takes the
CPU between the first sample that saw a request and the first that saw the
last one, so imports, start-up and shut-down are left out.

Cost to the measured process: one extra request listener (a counter, well under
1 us per request) and 20 wake-ups a second.

``TFS_BENCH_NO_ENGINE=1`` leaves the completion engine (``tfs_user.transport.engine``)
out: gRPC then waits on gevent's hub thread pool, as before issue 14, so both
can be measured in one run.
"""

import atexit
import json
import os
import resource
import time

import gevent
from locust import events

from tfs_user.user import OptionsTfsUser  # noqa: F401  (the user under test)

if os.environ.get("TFS_BENCH_NO_ENGINE") == "1":
    import tfs_user.transport.engine

    tfs_user.transport.engine.install = lambda: None  # predict_call then leaves gevent's thread pool in place

SAMPLE_S = 0.05
_count = 0
_samples = []
_state = {"greenlet": None, "written": False, "pid": None}


def _cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _on_request(**kwargs):
    global _count
    _count += 1


def _sample_forever():
    while True:
        _samples.append((time.time(), _cpu_s(), _count))
        gevent.sleep(SAMPLE_S)


def _write(**kwargs):
    folder = os.environ.get("TFS_BENCH_PROBE_DIR")
    if not folder or _state["written"] or _state["pid"] != os.getpid():
        return
    _state["written"] = True
    _samples.append((time.time(), _cpu_s(), _count))
    path = os.path.join(folder, f"probe-{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump({"pid": os.getpid(), "samples": _samples}, f)


@events.init.add_listener
def _on_init(environment, **kwargs):
    # init fires in every process after Locust's --processes fork
    _state["pid"] = os.getpid()
    _samples.clear()
    environment.events.request.add_listener(_on_request)
    _state["greenlet"] = gevent.spawn(_sample_forever)


events.quitting.add_listener(_write)
atexit.register(_write)
