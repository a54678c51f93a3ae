"""What the tests' real peer servers (MLServer, KServe) share: their own virtualenv, built once and cached
(a marker file after a successful install; a file lock so that two pytest-xdist workers do not build it at
once), free loopback ports, and ending a server's whole process group by pid.

Imports only the standard library (``.ci/run`` calls the servers' ``--build`` before anything is installed
but pip's own requirements).
"""

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


class BuildError(RuntimeError):
    """A peer server's virtualenv could not be built; the message ends with pip's last lines."""


def cache_folder(env_var, name):
    """``$env_var`` if set, else ``~/.cache/tfs-locust/NAME`` (a Path)."""
    return Path(os.environ.get(env_var) or Path.home() / ".cache" / "tfs-locust" / name)


@contextlib.contextmanager
def locked(folder):
    """Hold the build lock of the venv at ``folder``: another worker may be building it (or adding to it):
    wait, then use its result."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def venv_python(folder, packages, label):
    """The python of a virtualenv at ``folder`` holding ``packages`` (pip requirement strings), built on first
    use (``label`` names it in errors), then cached; raises BuildError."""
    python, marker = folder / "bin" / "python", folder / ".built"
    if marker.exists():
        return python
    with locked(folder):
        if marker.exists():
            return python
        steps = [[sys.executable, "-m", "venv", "--clear", str(folder)],
                 [str(python), "-m", "pip", "install", "-q", *packages]]
        for command in steps:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                raise BuildError(f"building the {label} venv at {folder} failed: {' '.join(command[:4])} ...\n{tail}")
        marker.write_text(" ".join(packages) + "\n")
    return python


# what pip prints when it cannot connect at all; a pin or a build that fails with PyPI reachable
# ("No matching distribution found" alone, "(from versions: ...)" listed) is a failure, not a skip
_UNREACHABLE = ("Failed to establish a new connection", "NewConnectionError", "Temporary failure in name resolution",
                "Name or service not known", "Network is unreachable", "ConnectTimeoutError", "ProxyError")


def pypi_unreachable(error):
    """Whether a BuildError says PyPI could not be reached (the only reason to skip, not to fail)."""
    return any(words in str(error) for words in _UNREACHABLE)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def end_group(process, grace_s=15.0):
    """End ``process`` (started with ``start_new_session=True``) and every process it started (its process
    group), by pid: SIGTERM, SIGKILL after ``grace_s`` seconds, then SIGKILL to whatever of the group is left."""
    if process is None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its worker processes, if any outlived it
    except ProcessLookupError:
        pass
    process.wait()


def log_tail(path, lines=30):
    """The last ``lines`` lines of the log at ``path`` ("" if there is none)."""
    path = Path(path)
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
