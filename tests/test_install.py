"""The package installs: a built wheel (and ``pip install .``) gives ``tfs_user`` and a ``tfs-locust`` command that work from any folder.

The wheel is built from a copy of the project (the checkout gets no build/ or egg-info) and
installed into a fresh virtualenv. Its dependencies (TensorFlow: minutes and 2 GB) are not
installed again: a .pth file in the new virtualenv points at the running interpreter's
site-packages, so only our package is new. Every command runs with cwd = an empty folder and
without PYTHONPATH, so nothing can come from the checkout.
"""

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
from tfs_user.cli import HELP_GROUP
from tfs_user.options import OPTIONS, TOPICS

TIMEOUT_S = 300


def _site_packages():
    """The running interpreter's site-packages folders (where the dependencies are)."""
    return [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages") and os.path.isdir(p)]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return dict(env, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")


def _run(command, cwd, timeout=TIMEOUT_S):
    done = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def _copy_project(dest):
    """pyproject.toml, README.md and tfs_user/ copied to ``dest`` (what a build reads)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "tfs_user", dest / "tfs_user", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _fresh_venv(folder):
    """A virtualenv without pip whose .pth file makes the running interpreter's packages (pip included) importable."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    python = folder / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, env=_env()).stdout.strip()
    Path(purelib, "_tfs_test_dependencies.pth").write_text("\n".join(_site_packages()) + "\n")
    return python


def _pip_install(python, target, cwd):
    code, out = _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                      str(target)], cwd)
    assert code == 0, out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, empty working folder): our wheel built and installed into a fresh virtualenv."""
    base = tmp_path_factory.mktemp("install")
    source = _copy_project(base / "src")
    code, out = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                      "-w", str(base / "dist"), str(source)], base)
    assert code == 0, f"building the wheel failed (requirements-dev.txt installs setuptools>=70.1):\n{out}"
    wheel = next((base / "dist").glob("tfs_locust-*.whl"))
    python = _fresh_venv(base / "venv")
    work = base / "work"
    work.mkdir()
    _pip_install(python, wheel, work)
    return python.parent, work


def test_the_package_comes_from_the_new_virtualenv(installed):
    bin_dir, work = installed
    code, out = _run([bin_dir / "python", "-c", "import tfs_user.locustfile as f, tfs_user; print(tfs_user.__file__)"],
                     work)
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith(str(bin_dir.parent)), out


def test_help_lists_locust_options_then_ours_with_defaults(installed):
    bin_dir, work = installed
    command = bin_dir / "tfs-locust"
    assert command.is_file(), "no tfs-locust console script: pyproject.toml [project.scripts] is missing it"
    code, out = _run([command, "--help"], work)
    assert code == 0, out
    assert out.startswith("\nUsage: tfs-locust") or "Usage: tfs-locust" in out[:200], out[:500]
    locust_part, _, ours = out.partition(f"\n{HELP_GROUP}: ")
    assert ours, f"no group {HELP_GROUP!r} in:\n{out}"
    # one group per topic, in TOPICS order, each option in the group of its topic
    titles = re.findall(rf"^{re.escape(HELP_GROUP)}: (.+):$", out, re.M)
    assert titles == list(TOPICS), titles
    sections = dict(zip(titles, re.split(rf"^{re.escape(HELP_GROUP)}: .+:$", out, flags=re.M)[1:]))
    for flags, kwargs in OPTIONS:
        assert re.search(rf"^  {re.escape(flags[0])}\b", sections[kwargs["topic"]], re.M), (flags[0], kwargs["topic"])
    for flag in ("--users", "--spawn-rate", "--headless", "--run-time", "--csv", "--processes", "--web-host"):
        assert re.search(rf"^  (-[^,\n]+, )*{flag}(?![\w-])", locust_part, re.M), flag
    for flags, kwargs in OPTIONS:
        assert re.search(rf"^  {re.escape(flags[0])}\b", ours, re.M), flags[0]
        assert flags[0] not in re.findall(r"^  (--[\w-]+)", locust_part, re.M), flags[0]
    assert "Default: resnet" in " ".join(ours.split())  # help texts end with the default
    assert "Default: 512" in " ".join(ours.split())


@pytest.mark.parametrize("protocol", ["tfs", "kserve"])  # kserve: the wheel carries the .proto it compiles
def test_demo_run_from_another_folder_counts_10_measured_requests(installed, protocol):
    bin_dir, work = installed
    code, out = _run([bin_dir / "tfs-locust", "--demo-server", "--headless", "-u", "1", "--iterations", "10",
                      "--protocol", protocol, "--json-summary", "summary.json"], work)
    assert code == 0, out
    aggregated = re.search(r"^Aggregated\s+(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    assert aggregated and aggregated.groups() == ("10", "0", "10"), out
    rows = json.loads((work / "summary.json").read_text())["rows"]
    assert rows[-1]["requests"] == 10 and rows[-1]["failures"] == 0


def test_locust_options_pass_through(installed):
    bin_dir, work = installed
    code, out = _run([bin_dir / "tfs-locust", "--list"], work)
    assert code == 0 and "OptionsTfsUser" in out, out
    code, out = _run([bin_dir / "tfs-locust", "--version"], work)
    assert code == 0 and re.search(r"locust \d+\.\d+", out), out


@pytest.mark.parametrize("module", ["tfs_user.demo_server", "tfs_user.images"])
def test_modules_run_from_another_folder(installed, module):
    bin_dir, work = installed
    code, out = _run([bin_dir / "python", "-m", module, "--help"], work)
    assert code == 0 and "usage:" in out, out


def test_pip_install_dot_gives_the_command_too(tmp_path):
    source = _copy_project(tmp_path / "src")
    python = _fresh_venv(tmp_path / "venv")
    _pip_install(python, source, tmp_path)
    assert (python.parent / "tfs-locust").is_file()
    code, out = _run([python.parent / "tfs-locust", "--version"], tmp_path)
    assert code == 0 and "locust" in out, out
