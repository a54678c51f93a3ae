"""Layout rules that keep the package open to new features (issue 10).

- Any tfs_user module can be imported first, before the user classes: gevent must patch ``ssl``
  before gRPC imports it, and a module that imported gRPC too early made the later
  ``from tfs_user.user import TfsUser`` end in a RecursionError inside ``ssl.py``.
- Modules that tests import in the pytest process import neither Locust nor gRPC: Locust's gevent
  monkey-patching of the test process made its forked children abort (see conftest.py).
"""

import subprocess
import sys

import pytest

from conftest import ROOT

MODULES = sorted(p.stem for p in (ROOT / "tfs_user").glob("*.py") if p.stem not in ("__init__", "locustfile"))

IMPORT_FIRST = r"""
import importlib, ssl, sys
importlib.import_module("tfs_user." + sys.argv[1])
from tfs_user.user import TfsUser, OptionsTfsUser  # noqa: F401
ssl.create_default_context()  # what failed with RecursionError after a too-early gRPC import
print("ok")
"""


def test_every_module_can_be_imported_before_the_users():
    processes = {name: subprocess.Popen([sys.executable, "-c", IMPORT_FIRST, name], cwd=ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in MODULES}
    failed = {}
    for name, process in processes.items():
        out, err = process.communicate(timeout=120)
        if process.returncode != 0 or out.strip() != "ok":
            failed[name] = err.strip().splitlines()[-1:]
    assert not failed, failed


GRPC_FREE = ["target", "settings", "options", "report", "verdict", "status", "stats", "phases", "outcomes", "fitting",
             "inputs", "data", "request_bodies", "tensors", "protos", "web_form", "fps_meter", "html_report",
             "endpoints", "channel_args", "web_tab", "arrivals", "sweep", "steps", "plot", "demo_model", "images"]


@pytest.mark.parametrize("name", GRPC_FREE)
def test_plain_modules_import_neither_locust_nor_grpc(name):
    code = (f"import sys, tfs_user.{name}\n"
            "print(sorted(m for m in ('locust', 'grpc', 'ssl', 'gevent.monkey') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", (name, done.stdout)
