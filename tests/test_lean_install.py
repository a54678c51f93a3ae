"""The lean install (deploy/install.sh, the image's install steps) in a fresh virtualenv, then the demo job
with ``tensorflow`` not importable: the container image's recipe, tested without a container engine.

The build context is what deploy/Dockerfile copies (its COPY lines, read here), so a file the image
forgets is missing here too. pip installs from a local wheelhouse of requirements-lean.txt (built once
by ``pip wheel``, kept in ``$TFS_LEAN_WHEELS``, else ~/.cache/tfs-locust/lean-wheels, by a hash of requirements-lean.txt), given to
the unchanged script through pip's own environment variables (and no .pyc compiling). Cost measured
here at load average 11-12: about 40 s for the fresh venv and the install, 10 s for the demo job, and
once per requirements-lean.txt about 41 s to build the wheelhouse; without the wheelhouse every run
downloads again (65-98 s for the install alone at load 8-11).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import ROOT

CACHE = Path(os.environ.get("TFS_LEAN_WHEELS") or Path.home() / ".cache" / "tfs-locust" / "lean-wheels")
"""Where wheelhouses are kept, one folder per requirements-lean.txt content."""
INSTALL_TIMEOUT_S = 600


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith(("PIP_", "TFS_", "LOCUST_"))}
    return dict(env, PYTHONUNBUFFERED="1", **extra)


def _wheelhouse():
    """A folder of wheels for requirements-lean.txt (and setuptools, to build our package), built once."""
    requirements = ROOT / "requirements-lean.txt"
    folder = CACHE / hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    if not (folder / "complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "-r", str(requirements), "setuptools>=70.1",
                               "-w", str(folder)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                              env=_clean_env())
        assert done.returncode == 0, done.stdout + done.stderr
        (folder / "complete").write_text("")
    return folder


def _build_context(dest):
    """The files deploy/Dockerfile's COPY lines take from the clone, copied to ``dest`` at the same paths."""
    copies = re.findall(r"^COPY (.+)$", (ROOT / "deploy" / "Dockerfile").read_text(), re.M)
    assert copies
    for line in copies:
        *sources, target = line.split()
        for source in sources:  # as Docker does: into a folder when the target ends with "/", else onto it
            goal = dest / target / Path(source).name if target.endswith("/") else dest / target
            goal.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, goal, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / source, goal)
    return dest


@pytest.fixture(scope="module")
def lean_venv(tmp_path_factory):
    """(bin folder, install output, empty working folder): deploy/install.sh run in a fresh virtualenv."""
    base = tmp_path_factory.mktemp("lean")
    context = _build_context(base / "context")
    folder = base / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(folder)
    wheels = _wheelhouse()
    env = _clean_env(PATH=f"{folder / 'bin'}{os.pathsep}{os.environ['PATH']}", PIP_NO_INDEX="1",
                     PIP_FIND_LINKS=str(wheels), PIP_COMPILE="0")  # no .pyc: pip takes "0" here
    done = subprocess.run(["sh", str(context / "deploy" / "install.sh")], capture_output=True, text=True,
                          timeout=INSTALL_TIMEOUT_S, env=env, cwd=base)
    assert done.returncode == 0, done.stdout + done.stderr
    work = base / "work"
    work.mkdir()
    return folder / "bin", done.stdout + done.stderr, work


def _run(command, cwd):
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=cwd, env=_clean_env())
    return done.returncode, done.stdout + done.stderr


def test_the_lean_install_has_no_tensorflow_and_compiles_the_messages(lean_venv):
    bin_dir, installed, work = lean_venv
    assert "tfs-locust: TF Serving messages compiled" in installed, installed
    code, out = _run([bin_dir / "python", "-c", "import tensorflow"], work)
    assert code != 0 and "No module named 'tensorflow'" in out, out
    code, out = _run([bin_dir / "python", "-m", "pip", "list"], work)
    assert code == 0 and not re.search(r"^(tensorflow|tensorflow-serving-api|tf-keras|keras) ", out, re.M | re.I), out


def test_the_demo_job_runs_from_the_lean_install(lean_venv):
    bin_dir, _, work = lean_venv
    code, out = _run([bin_dir / "tfs-locust", "--demo-server", "--headless", "-u", "1", "--iterations", "10",
                      "--json-summary", "summary.json"], work)
    assert code == 0, out
    aggregated = re.search(r"^Aggregated\s+(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    assert aggregated and aggregated.groups() == ("10", "0", "10"), out
    served = re.search(r"demo server served (\d+) requests \((\d+) ok, (\d+) failed, 0 cancelled\)", out)
    assert served and served.groups() == ("11", "11", "0"), out  # + 1 warm-up request
    rows = json.loads((work / "summary.json").read_text())["rows"]
    assert (rows[-1]["requests"], rows[-1]["failures"]) == (10, 0)
