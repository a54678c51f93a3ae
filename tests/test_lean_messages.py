"""TF Serving's messages without TensorFlow (``tfs_user/protocols/tfs/compiled.py``) put the same bytes on
the wire as the tensorflow-serving-api wheel's.

Each message set runs in its own process (tests/wire_table.py; protobuf's descriptor pool takes one
set per process): the lean one with ``tensorflow`` made unimportable, as on a lean install. The same
requests (every dtype the tool sends, model spec with version / version label / signature, the
pre-flight requests) must serialize to the same bytes; the same responses (the demo server's
Predict, GetModelMetadata with a SignatureDefMap, GetModelStatus) must serialize alike and parse
to the same content in both. And every .proto file we ship must describe what the 2.21 wheels do.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPT = str(ROOT / "tests" / "wire_table.py")


NO_TENSORFLOW = str(ROOT / "tests" / "no_tensorflow")


def _table(*args, lean):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if lean:
        env["PYTHONPATH"] = NO_TENSORFLOW
    done = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def built():
    """(wheel's, ours): the table built by each message set."""
    return _table("build", lean=False), _table("build", lean=True)


def test_each_process_uses_the_message_set_it_should(built):
    wheel, ours = built
    assert (wheel["source"], ours["source"]) == ("tensorflow-serving-api", "compiled")
    assert not wheel["tensorflow loaded"] and not ours["tensorflow loaded"]  # the wheel's messages without TF's __init__


def test_the_same_requests_are_the_same_bytes(built):
    wheel, ours = built
    assert list(ours["requests"]) == list(wheel["requests"])
    dtypes = [name for name in wheel["requests"] if name.startswith("predict ") and "," not in name]
    assert len(dtypes) == 12, dtypes  # tensors.py's table: float32 ... bool
    for name, data in wheel["requests"].items():
        assert ours["requests"][name] == data, name


def test_the_same_responses_are_the_same_bytes_and_parse_alike(built, tmp_path):
    from wire_table import ORDER_FREE

    wheel, ours = built
    assert list(ours["responses"]) == list(wheel["responses"])
    for name, data in wheel["responses"].items():
        if not name.endswith(ORDER_FREE):
            assert ours["responses"][name] == data, name
    (tmp_path / "wheel.json").write_text(json.dumps(wheel))
    (tmp_path / "ours.json").write_text(json.dumps(ours))
    readings = {(reader, writer): _table("parse", str(tmp_path / f"{writer}.json"), lean=reader == "ours")["parsed"]
                for reader in ("wheel", "ours") for writer in ("wheel", "ours")}
    reference = readings["wheel", "wheel"]
    for key, parsed in readings.items():
        assert parsed == reference, key
    metadata = reference[f"metadata, two inputs {ORDER_FREE}"]
    assert metadata["unpacked"] and metadata["dtype names"] == ["DT_FLOAT", "DT_FLOAT", "DT_UINT8"]
    assert reference["status, ended with an error"]["states"] == ["END"]
    assert "error_code: NOT_FOUND" in reference["status, ended with an error"]["text"]
    assert reference["predict, typed values"]["outputs"] == {"half": [1.5, -2.0], "scores": [0.25, 0.25, 0.25]}


def test_our_proto_files_describe_what_the_wheels_do(tmp_path):
    protos = ROOT / "tfs_user" / "protocols" / "tfs" / "protos"
    files = sorted(str(p.relative_to(protos)) for p in protos.rglob("*.proto"))
    descriptor_set = tmp_path / "ours.pb"
    done = subprocess.run([sys.executable, "-c", "import sys, grpc_tools.protoc as p; sys.exit(p.entrypoint())",
                           "-I", str(protos), "--include_imports", f"--descriptor_set_out={descriptor_set}", *files],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = _table("descriptors", str(descriptor_set), lean=False)
    assert report["differ"] == [] and report["not in the wheels"] == [], report
    assert sorted(report["compared"]) == files
