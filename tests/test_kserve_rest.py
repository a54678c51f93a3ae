"""KServe's own Python model server (PyPI ``kserve`` 0.21.0, tests/kserve_server.py) over its REST port:
TF Serving's REST format (its "v1 protocol", ``/v1/models/NAME:predict``) and the Open Inference Protocol's
(``/v2/models/NAME/infer``) as JSON and as binary tensors (it speaks the extension without listing it in
``GET /v2``: ``--binary-data on``). The counts are KServe's own (``request_predict_seconds`` ``_count``):
every request the tool reports (measured, warm-up, after stop) is one KServe counted, exactly.
"""

import json

import numpy as np
import pytest

import kserve_server as ks
from conftest import SPARED_GROUPS


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One KServe server per module and test process; conftest's cleanup spares its group, ended here by pid."""
    try:
        python = ks.kserve_python()
    except ks.BuildError as e:
        if ks.pypi_unreachable(e):
            pytest.skip(f"KServe's virtualenv cannot be built here (PyPI unreachable): {str(e).splitlines()[-1]}")
        raise
    running = ks.KServeServer(tmp_path_factory.mktemp("kserve"), python).__enter__()
    SPARED_GROUPS.add(running.process.pid)
    try:
        yield running
    finally:
        SPARED_GROUPS.discard(running.process.pid)
        running.__exit__(None, None, None)


CASES = {  # case -> (protocol, extra options, request name, notice expected)
    "v1-predict": ("tfs", ("--synthetic-shape", "4", "--dtype", "float32"), "Predict",
                   "notice: GET /v1/models/kmodel/metadata answered HTTP 404"),
    "v2-json": ("kserve", ("--binary-data", "auto"), "ModelInfer", "notice: tensors go as JSON (--binary-data auto)"),
    "v2-binary": ("kserve", ("--binary-data", "on"), "ModelInfer",
                  "notice: tensors go as binary data (Inference-Header-Content-Length) (--binary-data on)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_tool_counts_exactly_what_kserve_served_over_rest(server, run_locust, tmp_path, case):
    protocol, options, verb, notice = CASES[case]
    np.save(tmp_path / "rows.npy", np.random.default_rng(4).uniform(-2, 2, (12, 4)).astype(np.float32))
    data = () if protocol == "tfs" else ("--images-numpy-path", "rows.npy")
    before = server.predict_counts()
    run = run_locust("--protocol", protocol, "--host", server.http_url, "--model-name", server.model_name,
                     "--batch-size", "2", "-u", "2", "-r", "2", "-t", "2s", "--json-summary", "summary.json",
                     "--status-interval", "0", *data, *options, timeout=180)
    assert run.returncode == 0, run.output[-3000:]
    summary = json.loads((run.folder / "summary.json").read_text())
    after = server.predict_counts()
    served = after["predict"] - before["predict"]
    sent = summary["rows"][-1]["requests"] + summary["warmup_requests"] + summary["after_stop_requests"]
    assert summary["rows"][-1]["requests"] > 0 and summary["rows"][-1]["failures"] == 0, summary
    assert served == sent and after["postprocess"] - before["postprocess"] == served, (served, summary)
    assert f"HTTP {verb} {server.model_name}" in " ".join(run.output.split())
    assert notice in run.output, run.output[-3000:]
    print(f"\n{case}: KServe counted {served}, the tool reported {sent}")
