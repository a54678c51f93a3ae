"""Seldon MLServer, a real Open Inference Protocol server no one here wrote, for the tests.

MLServer 1.7.1 needs protobuf < 7 and its own fastapi/uvloop stack, so it lives in its own
virtualenv, built once and cached (``$TFS_MLSERVER_VENV``, else ``~/.cache/tfs-locust/mlserver-1.7.1``;
a marker file written after a successful install; a file lock so that two pytest-xdist workers do
not build it at once). ``.ci/run`` builds it before the tests: ``python tests/mlserver_server.py --build``.

``MLServer(folder)`` serves a small scikit-learn model (trained once with that venv's Python and kept
beside it) on free loopback ports (gRPC, HTTP, metrics) and ends the server's whole process group when
it exits.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from peer_venv import BuildError, cache_folder, end_group, free_port, locked, log_tail, pypi_unreachable, venv_python

__all__ = ["BuildError", "MLServer", "mlserver_python", "pypi_unreachable", "trained_model", "venv_folder"]

VERSION = "1.7.1"
PACKAGES = [f"mlserver=={VERSION}", f"mlserver-sklearn=={VERSION}", "scikit-learn", "joblib"]
MODEL = "iris"
START_TIMEOUT_S = 120.0

TRAIN = """
import joblib, sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=500).fit(x, y), sys.argv[1])
"""


def venv_folder():
    return cache_folder("TFS_MLSERVER_VENV", f"mlserver-{VERSION}")


def mlserver_python():
    """The MLServer virtualenv's python (built on first use, then cached); raises BuildError."""
    return venv_python(venv_folder(), PACKAGES, "MLServer")


def trained_model(python):
    """The model file (iris LogisticRegression, joblib) for the venv of ``python``: trained with that
    Python on first use and kept in the venv folder (rebuilding the venv clears it too)."""
    folder = Path(python).parent.parent
    path = folder / f"{MODEL}.joblib"
    if path.exists():
        return path
    with locked(folder):
        if not path.exists():
            partial = folder / f".{MODEL}.joblib.partial"
            done = subprocess.run([str(python), "-c", TRAIN, str(partial)], capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"training the model with {python} failed:\n{done.stderr[-2000:]}")
            os.replace(partial, path)
    return path


class MLServer:
    """``with MLServer(folder) as server:`` an MLServer serving model ``iris`` (input ``input-0`` FP32 [-1,4],
    output ``predict`` INT64 [-1]) on 127.0.0.1: ``grpc_address``, ``metrics_url``, ``model_name``,
    ``request_counts()``. Raises RuntimeError (with its log's tail) when it does not become ready."""

    model_name = MODEL

    def __init__(self, folder, python=None):
        self.folder = Path(folder)
        self.python = Path(python or mlserver_python())
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.grpc_address = f"127.0.0.1:{self.grpc_port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.log = self.folder / "mlserver.log"
        self.process = None

    def _write_settings(self):
        model_dir = self.folder / MODEL
        model_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trained_model(self.python), model_dir / "model.joblib")
        (self.folder / "settings.json").write_text(json.dumps({
            "host": "127.0.0.1", "grpc_port": self.grpc_port, "http_port": self.http_port,
            "metrics_port": self.metrics_port, "debug": False,
            # inference in the server's own process: its worker pool dies at start with the uvloop pip
            # resolves today ("There is no current event loop in thread 'MainThread'", seen here)
            "parallel_workers": 0}))
        (model_dir / "model-settings.json").write_text(json.dumps({
            "name": MODEL, "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "1"},
            "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}]}))

    def __enter__(self):
        self._write_settings()
        mlserver = self.python.parent / "mlserver"
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([str(mlserver), "start", str(self.folder)], cwd=self.folder, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self._end()
            raise
        return self

    def __exit__(self, *exc):
        self._end()

    def _wait_ready(self):
        import grpc

        from tfs_user.protocols.kserve.messages import SERVICE, pb2

        deadline = time.monotonic() + START_TIMEOUT_S
        channel = grpc.insecure_channel(self.grpc_address)
        ready = channel.unary_unary(f"/{SERVICE}/ModelReady", request_serializer=pb2.ModelReadyRequest.SerializeToString,
                                    response_deserializer=pb2.ModelReadyResponse.FromString)
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"mlserver exited with {self.process.returncode}:\n{self._log_tail()}")
                try:
                    if ready(pb2.ModelReadyRequest(name=MODEL), timeout=2).ready:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mlserver not ready after {START_TIMEOUT_S:g} s:\n{self._log_tail()}")
                time.sleep(0.5)
        finally:
            channel.close()

    def _log_tail(self):
        return log_tail(self.log)

    def _end(self):
        """End mlserver and every process it started (its own process group), by pid."""
        end_group(self.process)

    def request_counts(self):
        """{"success": n, "failure": m}: ModelInfer requests of the model as MLServer's metrics count them."""
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        counts = {"success": 0, "failure": 0}
        for family in text_string_to_metric_families(text):
            for kind in counts:
                if family.name == f"model_infer_request_{kind}":
                    counts[kind] += sum(int(s.value) for s in family.samples
                                        if s.name.endswith("_total") and s.labels.get("model") == MODEL)
        return counts


if __name__ == "__main__":
    if sys.argv[1:] != ["--build"]:
        sys.exit("usage: python tests/mlserver_server.py --build")
    started = time.monotonic()
    built = mlserver_python()
    trained_model(built)
    print(f"MLServer venv: {built} and its model ({time.monotonic() - started:.0f} s)")
