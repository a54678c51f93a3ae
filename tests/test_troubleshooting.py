"""docs/troubleshooting.md is true: every `error:`/`notice:`/`waiting` line in its table is produced here
from the code, and every such line the code produces here has its row.

A row's message is a pattern: `HOST:PORT` stands for any address, `...` for any text; the rest is
literal. Fitting and TLS-probe messages are produced in-process; pre-flight and connect messages
(modules that import gRPC under gevent, i.e. Locust) in one subprocess, against DemoServers
started here.
"""

import json
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from test_preflight import _certificates
from tfs_user.protocols.tfs import request_bodies
from tfs_user.transport import tls_probe
from tfs_user.demo.server import DemoServer, ModelConfig
from tfs_user.data.inputs import Signature, TensorSpec, plan_input
from tfs_user.protocols.tfs.messages import types_pb2
from tfs_user.settings import Settings
from tfs_user.transport.config import Transport
from tfs_user.transport.target import parse_target

F32 = np.float32
MESSAGE_START = ("error: ", "notice: ", "waiting ")


def readme_patterns():
    """{message: regex} for every error/notice/waiting message in the table of docs/troubleshooting.md."""
    section = (ROOT / "docs" / "troubleshooting.md").read_text()
    patterns = {}
    for row in re.findall(r"^\| (.+?) \| .+ \|$", section, re.M):
        for message in re.findall(r"`([^`]+)`", row):
            if message.startswith(MESSAGE_START):
                parts = [re.escape(p) for p in message.split("...")]
                pattern = ".*".join(parts).replace(re.escape("HOST:PORT"), r"\S+")
                patterns[message] = re.compile(pattern)
    return patterns


def _sig(shape, name="input", dt=types_pb2.DT_FLOAT):
    return Signature({name: TensorSpec(name, dt, shape)})


def _error(call):
    try:
        call()
    except ValueError as e:
        return f"error: {e}"
    raise AssertionError("no error raised")


def fitting_messages():
    nhwc = _sig((-1, 8, 8, 3))
    two = Signature({"image": TensorSpec("image", types_pb2.DT_FLOAT, (-1, 8, 8, 3)),
                     "scale": TensorSpec("scale", types_pb2.DT_FLOAT, (-1, 1))})
    return [
        _error(lambda: plan_input(nhwc, Settings(input_name="data"), F32, (8, 8, 3))),
        _error(lambda: plan_input(_sig((4, 8, 8, 3)), Settings(batch_size=2), F32, (8, 8, 3))),
        _error(lambda: plan_input(_sig((-1, -1, -1, 3)), Settings(), F32, (8, 3), rows=8)),
        _error(lambda: plan_input(_sig((-1, 8, 8, 3, 1)), Settings(), F32, (8, 8), rows=4)),
        _error(lambda: plan_input(nhwc, Settings(), F32, (5, 5, 3))),
        _error(lambda: plan_input(nhwc, Settings(layout="keep"), F32, (3, 8, 8))),
        _error(lambda: plan_input(_sig((-1, -1, -1, 3)), Settings(layout="nhwc-to-nchw"), F32, (8, 3), rows=8)),
        _error(lambda: plan_input(nhwc, Settings(layout="nhwc-to-nchw"), F32, (3, 8, 8))),
        _error(lambda: plan_input(_sig((-1,), "image_bytes", types_pb2.DT_STRING), Settings(), F32, (8, 8, 3))),
        _error(lambda: request_bodies.build_requests(Settings(model_name="small"), two,
                                              [("image", np.ones((2, 8, 8, 3), F32))])),
        _error(lambda: request_bodies.build_requests(Settings(model_name="sk"), None, [])),
        _error(lambda: parse_target("http://127.0.0.1:8501/v1/models/small:predict")),
        _error(lambda: parse_target("grpc://127.0.0.1:8500/small")),
        *(f"notice: {n}" for n in plan_input(nhwc, Settings(), np.float64, (8, 8, 3)).notices),
        *(f"notice: {n}" for n in plan_input(nhwc, Settings(input_name="input"), F32, (3, 8, 8)).notices),
    ]


def tls_messages(tmp_path):
    pem = _certificates(tmp_path)
    tls = DemoServer(tls=(pem["server.pem"], pem["server.key"], None))
    mutual = DemoServer(tls=(pem["server.pem"], pem["server.key"], pem["ca.pem"]))
    plain = DemoServer()
    for server in (tls, mutual, plain):
        server.start()
    ca = str(tmp_path / "ca.pem")
    try:
        faults = [tls_probe.diagnose(plain.address, Transport(tls=True)),
                  tls_probe.diagnose(tls.address, Transport()),
                  tls_probe.diagnose(tls.address, Transport(tls=True, server_name="tfs.test")),
                  tls_probe.diagnose(tls.address, Transport(tls=True, ca=ca)),
                  tls_probe.diagnose(mutual.address, Transport(tls=True, ca=ca, server_name="tfs.test"))]
    finally:
        for server in (tls, mutual, plain):
            server.stop()
    assert all(f is not None and f.final for f in faults), faults
    return [f"error: {f.message}" for f in faults]


PREFLIGHT_SCRIPT = r"""
import json, logging, sys
from tfs_user.transport.channel import wait_until_reachable
from tfs_user.protocols.tfs.preflight import inspect_model
from tfs_user.settings import Settings
from tfs_user.transport.config import Transport
from tfs_user.transport.target import parse_target

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
closed, ready, loading, bare, failing = sys.argv[1:]

def show(call):
    try:
        call()
    except (ConnectionError, ValueError) as e:
        print(f"error: {e}")

show(lambda: wait_until_reachable(closed, 5.0, Transport(), progress_s=3.0))
show(lambda: wait_until_reachable("nosuchhost.invalid:8500", 1.0, Transport(), progress_s=3.0))
show(lambda: inspect_model(Settings(target=ready, model_name="nosuch")))
show(lambda: inspect_model(Settings(target=ready, model_name="small", model_version=3)))
show(lambda: inspect_model(Settings(target=loading, model_name="small")))
show(lambda: inspect_model(Settings(target=bare, model_name="small")))
show(lambda: inspect_model(Settings(target=failing, model_name="small")))
show(lambda: inspect_model(Settings(target=failing, model_name="small", skip_preflight=True)))
"""


def preflight_messages():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    small = dict(name="small", shape=(-1, 8, 8, 3), output_size=10)
    servers = [DemoServer([ModelConfig(**small)]), DemoServer([ModelConfig(**small)], available_after_s=600),
               DemoServer([ModelConfig(**small)], metadata=False),
               DemoServer([ModelConfig(**small)], metadata_code="INTERNAL")]
    for server in servers:
        server.start()
    try:
        done = subprocess.run([sys.executable, "-c", PREFLIGHT_SCRIPT, closed, *(s.address for s in servers)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        for server in servers:
            server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in done.stdout.splitlines() if line.startswith(MESSAGE_START)]


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    return fitting_messages() + tls_messages(tmp_path_factory.mktemp("pki")) + preflight_messages()


def test_every_message_the_code_produces_has_its_readme_row(produced):
    patterns = readme_patterns()
    for message in produced:
        rows = [row for row, pattern in patterns.items() if pattern.fullmatch(message)]
        assert rows, f"no README Troubleshooting row for: {message}"


def test_every_readme_row_is_produced_by_the_code(produced):
    unmatched = [row for row, pattern in readme_patterns().items()
                 if not any(pattern.fullmatch(message) for message in produced)]
    assert not unmatched, json.dumps({"unmatched rows": unmatched, "produced": produced}, indent=1)
