"""KServe's own Python model server (PyPI ``kserve`` 0.21.0), a real server no one here wrote, for the tests.

It lives in its own virtualenv (fastapi/uvicorn/uvloop/pydantic stack; 0.21.0 is the newest 0.21 on PyPI),
built once and cached (``$TFS_KSERVE_VENV``, else ``~/.cache/tfs-locust/kserve-0.21.0``; ~30 s, ~450 MB
here). ``.ci/run`` builds it before the tests: ``python tests/kserve_server.py --build``.

``KServeServer(folder)`` runs tests/kserve_model.py with that venv: a ``kserve.Model`` named ``kmodel``
(input FP32 [-1,4] -> ``output-0`` FP32 [-1,3], ``y = x @ kserve_model.WEIGHTS``; ``fail_every``/``delay_ms``
for failures and server time) served by ``kserve.ModelServer(http_port, grpc_port, enable_grpc=True)`` on
free ports. KServe 0.21 has no host setting (REST ``0.0.0.0`` hard-coded for uvicorn, gRPC ``[::]:PORT``):
kserve_model.py narrows both to 127.0.0.1 (seen with ``ss -ltn``; KServe's own log line still says ``[::]``).

What it answered, by hand (curl, a gRPC client), with KServe 0.21.0:

- Metadata: ``GET /v2`` -> ``{"name":"kserve","version":"0.21.0","extensions":["model_repository_extension"]}``
  (no ``binary_tensor_data`` listed, though it speaks it: below); ``GET /v2/models/kmodel`` -> inputs/outputs as
  the model's ``get_input_types``/``get_output_types`` give them (``[-1,4]``/``[-1,3]``, ``"platform":""``);
  ``GET /v2/health/ready`` -> ``{"ready":true}``, ``/v2/models/kmodel/ready`` -> ``{"name":"kmodel","ready":true}``,
  ``GET /v1/models/kmodel`` -> ``{"name":"kmodel","ready":true}``; ``GET /v1/models/kmodel/metadata`` -> 404
  ``{"detail":"Not Found"}`` (TF Serving has it; KServe does not). Unknown model: HTTP 404
  ``{"error":"Model with name nope does not exist."}`` on every path; gRPC NOT_FOUND with the same text.
- REST v1, ``POST /v1/models/kmodel:predict`` ``{"instances": [[1,2,3,4],[0.5,0.25,0,1]]}`` (``signature_name``
  is passed through and ignored) -> ``{"predictions":[[5.0,-2.0,-1.5],[1.5,-0.75,0.375]]}``. predict() gets
  the parsed JSON dict only with ``Content-Type: application/json``: any other type (curl ``-d`` sends a form
  type) hands predict() the raw bytes (here: HTTP 400 naming it). Columnar ``{"inputs": ...}``: 400 here.
- REST v2 JSON, ``POST /v2/models/kmodel/infer`` (``Content-Type: application/json``) ``{"inputs":[{"name":
  "input-0","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,0.5,0.25,0,1]}]}`` (flat or nested ``data``) ->
  ``{"model_name":"kmodel","model_version":null,"id":"<uuid>","parameters":null,"outputs":[{"name":"output-0",
  "shape":[2,3],"datatype":"FP32","parameters":null,"data":[5.0,-2.0,-1.5,1.5,-0.75,0.375]}]}``. The input name
  is not checked (any name is answered). Without ``"id"`` KServe itself fails the answer (HTTP 500, pydantic
  "id Input should be a valid string") unless the model makes one up, as KServe's own model servers and this
  one do. A JSON body sent with another content type is taken as binary and refused: 400 "received byte
  inputs, but the'inference-header-content-length' header is missing."
- REST v2 binary tensor data: body = JSON header + raw little-endian bytes, header
  ``Inference-Header-Content-Length: <JSON length>``, input ``"parameters":{"binary_data_size":32}`` without
  ``data``, sent as ``application/octet-stream`` (or no content type; ``application/json`` -> 400 "There was an
  error parsing the body"). Outputs asked binary (``"outputs":[{"name":"output-0","parameters":{"binary_data":
  true}}]`` or request ``"parameters":{"binary_data_output":true}``) come back as a 155-byte JSON header
  (``"id":null`` when none was sent; output ``"parameters":{"binary_data_size":24}``) + 24 raw bytes, response
  header ``inference-header-content-length: 155``, chunked, and NO content-type header.
- gRPC v2 (``inference.GRPCInferenceService``): ServerLive/ServerReady/ModelReady true; ServerMetadata
  ``name "kserve" version "0.21.0"``; ModelMetadata as REST. ModelInfer with ``raw_input_contents`` -> outputs
  in ``raw_output_contents`` (the output tensor carries ``parameters {binary_data_size: 24}``), ``id`` echoed;
  with ``contents.fp32_contents`` -> ``contents.fp32_contents`` back, ``id`` made up. predict() gets an
  ``InferRequest`` for REST v2 and gRPC, a dict for REST v1.
- Errors: the model's ``InvalidInput`` (bad shape) -> gRPC INVALID_ARGUMENT / HTTP 400; its ``InferenceError``
  (the failure injection) -> gRPC INVALID_ARGUMENT (sic: KServe maps InferenceError so) / HTTP 500
  ``{"error": "<message>"}``; any other exception -> gRPC INTERNAL "Internal server error" / HTTP 500.
- ``GET /metrics`` (HTTP port; prometheus_client 0.26 text): histograms ``request_preprocess_seconds``,
  ``request_predict_seconds``, ``request_postprocess_seconds`` (``_bucket``/``_count``/``_sum``, one label
  ``model_name``, buckets 5 ms .. 10 s), each with a ``_created`` gauge; ``request_explain_seconds`` declared,
  no samples; then ``python_*``/``process_*``. No request counter, no failure counter, no status label, no
  queue time: KServe times the model's own steps only. preprocess and predict are observed for every call that
  reached the model, failed ones included (``Histogram.time()`` observes on exceptions); postprocess only for
  calls whose predict returned. So predict ``_count`` = calls served, postprocess ``_count`` = those that
  succeeded in the model (seen: 8 calls, 4 failing -> predict 8, postprocess 4). Calls refused before the
  model (unknown model, undecodable body) are in none of them.
"""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from peer_venv import BuildError, cache_folder, end_group, free_port, log_tail, pypi_unreachable, venv_python

__all__ = ["BuildError", "KServeServer", "kserve_python", "pypi_unreachable", "venv_folder"]

VERSION = "0.21.0"
PACKAGES = [f"kserve=={VERSION}"]
MODEL = "kmodel"
START_TIMEOUT_S = 120.0
PROGRAM = Path(__file__).resolve().parent / "kserve_model.py"


def venv_folder():
    return cache_folder("TFS_KSERVE_VENV", f"kserve-{VERSION}")


def kserve_python():
    """The KServe virtualenv's python (built on first use, then cached); raises BuildError."""
    return venv_python(venv_folder(), PACKAGES, "KServe")


class KServeServer:
    """``with KServeServer(folder, fail_every=0, delay_ms=0) as server:`` KServe's model server for ``kmodel``
    on 127.0.0.1: ``grpc_port``, ``http_port``, ``grpc_address`` (HOST:PORT), ``http_url``, ``metrics_url``,
    ``model_name``, ``metrics_text()``, ``predict_counts()``. ``fail_every`` N > 0: every Nth predict call
    fails (InferenceError); ``delay_ms``: each predict call waits that long. Raises RuntimeError (with the
    server's log tail) when it exits or is not ready within START_TIMEOUT_S; its process group ends on exit."""

    model_name = MODEL

    def __init__(self, folder, python=None, fail_every=0, delay_ms=0.0):
        self.folder = Path(folder)
        self.python = Path(python or kserve_python())
        self.grpc_port, self.http_port = free_port(), free_port()
        self.grpc_address = f"127.0.0.1:{self.grpc_port}"
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.metrics_url = f"{self.http_url}/metrics"
        self.config = {"name": MODEL, "http_port": self.http_port, "grpc_port": self.grpc_port,
                       "fail_every": int(fail_every), "delay_ms": float(delay_ms)}
        self.log = self.folder / "kserve.log"
        self.process = None

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([str(self.python), str(PROGRAM), json.dumps(self.config)], cwd=self.folder,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            end_group(self.process)
            raise
        return self

    def __exit__(self, *exc):
        end_group(self.process)

    def _wait_ready(self):
        """Until ``GET /v2/models/kmodel/ready`` answers 200 (the gRPC server starts in the same event loop)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"kserve exited with {self.process.returncode}:\n{log_tail(self.log)}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/v2/models/{MODEL}/ready", timeout=2) as response:
                    if response.status == 200 and json.loads(response.read()).get("ready") is True:
                        return
            except (OSError, ValueError):  # refused while starting; URLError and HTTPError are OSErrors
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kserve not ready after {START_TIMEOUT_S:g} s:\n{log_tail(self.log)}")
            time.sleep(0.3)

    def metrics_text(self):
        """The server's ``/metrics`` page (Prometheus text)."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return response.read().decode()

    def predict_counts(self):
        """{"predict": n, "postprocess": m}: the ``_count`` of KServe's ``request_predict_seconds`` (every call that
        reached the model's predict, failed ones included) and ``request_postprocess_seconds`` (those whose
        predict returned) for this model."""
        from prometheus_client.parser import text_string_to_metric_families

        counts = {"predict": 0, "postprocess": 0}
        for family in text_string_to_metric_families(self.metrics_text()):
            step = family.name.removeprefix("request_").removesuffix("_seconds")
            if family.name.startswith("request_") and step in counts:
                counts[step] += sum(int(s.value) for s in family.samples
                                    if s.name.endswith("_count") and s.labels.get("model_name") == MODEL)
        return counts


if __name__ == "__main__":
    if sys.argv[1:] != ["--build"]:
        sys.exit("usage: python tests/kserve_server.py --build")
    started = time.monotonic()
    built = kserve_python()
    print(f"KServe venv: {built} ({time.monotonic() - started:.0f} s)")
