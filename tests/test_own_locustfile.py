"""docs/own-locustfile.md's example runs as written: two inputs from an .npz, mutual TLS, gRPC metadata."""

import re

import numpy as np

from conftest import ROOT
from test_preflight import _certificates
from tfs_user.demo.server import ModelConfig


def _example():
    section = (ROOT / "docs" / "own-locustfile.md").read_text()
    return re.search(r"```python\n(.+?)\n```", section, re.S).group(1)


def test_docs_locustfile_example_runs_with_tls_metadata_and_two_inputs(tmp_path, demo_server, run_locust):
    (tmp_path / "detector.py").write_text(_example())
    pem = _certificates(tmp_path, server_name="models.example.com")
    rows = 6
    image = np.random.default_rng(3).uniform(0, 255, (rows, 8, 8, 3)).astype(np.float32)
    scale = np.arange(rows, dtype=np.float32).reshape(rows, 1)  # row i carries i: inputs sliced in step
    np.savez(tmp_path / "inputs.npz", image=image, scale=scale)
    model = ModelConfig(name="detector", input_name="image", shape=(-1, 8, 8, 3), output_size=4,
                        extra_inputs=(("scale", "float32", (-1, 1)),))
    server = demo_server(models=[model], tls=(pem["server.pem"], pem["server.key"], pem["ca.pem"]), record=True)
    port = server.address.rsplit(":", 1)[1]
    run = run_locust("-f", "detector.py", "--host", f"grpcs://127.0.0.1:{port}", "-u", "1", "-r", "1",
                     env={"PYTHONPATH": str(ROOT)})  # as after pip install .
    assert run.returncode == 0, run.output[-3000:]
    received = server.received()
    assert len(received) == 101 and all(r.code == "OK" for r in received)  # 100 + 1 warm-up
    assert all(r.metadata.get("authorization") == "Bearer TOKEN" for r in received)
    for k, request in enumerate(received[1:]):  # the warm-up sends batch 0; measured requests start at batch 0
        index = [(k * 2 + j) % rows for j in range(2)]
        np.testing.assert_array_equal(request.inputs["image"], image[index])
        np.testing.assert_array_equal(request.inputs["scale"], scale[index])
    assert run.tfs_csv()["Predict detector"]["Requests"] == "100"
