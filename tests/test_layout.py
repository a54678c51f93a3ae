"""Layout rules that keep the package open to new features (issue 10).

- Any tfs_user module can be imported first, before the user classes: gevent must patch ``ssl``
  before gRPC imports it, and a module that imported gRPC too early made the later
  ``from tfs_user.user import TfsUser`` end in a RecursionError inside ``ssl.py``.
- Modules that tests import in the pytest process import neither Locust nor gRPC: Locust's gevent
  monkey-patching of the test process made its forked children abort (see conftest.py).
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ROOT

MODULES = sorted(".".join(p.relative_to(ROOT / "tfs_user").with_suffix("").parts)
                 for p in (ROOT / "tfs_user").rglob("*.py") if p.stem not in ("__init__", "__main__", "locustfile"))

IMPORT_FIRST = r"""
import importlib, ssl, sys
importlib.import_module("tfs_user." + sys.argv[1])
from tfs_user.user import TfsUser, OptionsTfsUser  # noqa: F401
ssl.create_default_context()  # what failed with RecursionError after a too-early gRPC import
print("ok")
"""


def _import_first(name):
    done = subprocess.run([sys.executable, "-c", IMPORT_FIRST, name], cwd=ROOT, text=True, capture_output=True,
                          timeout=300)
    return name, done.returncode == 0 and done.stdout.strip() == "ok", done.stderr.strip().splitlines()[-1:]


def test_every_module_can_be_imported_before_the_users():
    # A fresh interpreter per module, at most one per core: starting them all at once timed out on a busy machine.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(_import_first, MODULES))
    failed = {name: err for name, ok, err in results if not ok}
    assert not failed, failed


GRPC_FREE = ["transport.target", "settings", "options", "results.report", "results.verdict", "results.status", "stats", "phases",
             "protocols.tfs.outcomes", "data.fitting", "data.inputs", "data.files", "protocols.tfs.request_bodies",
             "protocols.tfs.tensors", "protocols.tfs.messages", "web.form", "results.fps_meter", "web.html_report",
             "transport.endpoints", "transport.channel_args", "web.tab", "capacity.arrivals", "capacity.dispatcher", "capacity.plans",
             "capacity.trace_start",
             "capacity.steps", "web.plot", "demo.model", "data.images", "images", "option_values", "transport.config",
             "transport.failures", "protocols.tfs.api", "prepare", "server_metrics.entries", "results.windows",
             "results.summary_keys", "results.compare", "results.compare_cli", "results.compare_plot", "results.baseline",
             "results.baseline_runs", "results.comparable",
             "compare"]


@pytest.mark.parametrize("name", GRPC_FREE)
def test_plain_modules_import_neither_locust_nor_grpc(name):
    code = (f"import sys, tfs_user.{name}\n"
            "print(sorted(m for m in ('locust', 'grpc', 'ssl', 'gevent.monkey') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", (name, done.stdout)
