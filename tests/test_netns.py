"""A distributed run whose load crosses a real network interface: master and demo server in
one network namespace, two workers in another, joined by a veth pair. Needs root and
iproute2 (`ip netns`); skipped with the reason elsewhere. Addresses are link-local
(169.254.77.0/30) and exist only inside the two namespaces this test creates."""

import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from conftest import ROOT, locust_command

SERVER_NS_IP, WORKER_NS_IP = "169.254.77.1", "169.254.77.2"


def _ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True)


@pytest.fixture
def namespaces():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    tag = uuid.uuid4().hex[:6]
    a, b = f"tfsa{tag}", f"tfsb{tag}"
    if _ip("netns", "add", a).returncode != 0:
        pytest.skip(f"cannot create network namespaces here: {_ip('netns', 'add', a).stderr.strip()}")
    _ip("netns", "add", b)
    try:
        steps = [
            ["link", "add", f"va{tag}", "type", "veth", "peer", "name", f"vb{tag}"],
            ["link", "set", f"va{tag}", "netns", a],
            ["link", "set", f"vb{tag}", "netns", b],
            ["-n", a, "addr", "add", f"{SERVER_NS_IP}/30", "dev", f"va{tag}"],
            ["-n", b, "addr", "add", f"{WORKER_NS_IP}/30", "dev", f"vb{tag}"],
            ["-n", a, "link", "set", f"va{tag}", "up"],
            ["-n", b, "link", "set", f"vb{tag}", "up"],
            ["-n", a, "link", "set", "lo", "up"],
            ["-n", b, "link", "set", "lo", "up"],
        ]
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, (step, done.stderr)
        yield a, b, f"vb{tag}"
    finally:
        _ip("netns", "del", a)
        _ip("netns", "del", b)


def _in(ns, command, **kwargs):
    return subprocess.Popen(["ip", "netns", "exec", ns, *command], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT, **kwargs)


def test_workers_in_another_namespace_load_the_server_across_a_veth_pair(namespaces, tmp_path):
    server_ns, worker_ns, worker_if = namespaces
    server = _in(server_ns, [sys.executable, "-m", "tfs_user.demo", "--host", SERVER_NS_IP, "--port", "0",
                             "--model-name", "small", "--shape=-1,8,8,3", "--output-size", "10"])
    workers = []
    try:
        line = server.stdout.readline()
        assert line.startswith("demo server listening on "), line
        address = line.split()[-1]
        workers = [_in(worker_ns, locust_command("--worker", "--master-host", SERVER_NS_IP, "--master-port", "5557"))
                   for _ in range(2)]
        master = subprocess.run(
            ["ip", "netns", "exec", server_ns, *locust_command(
                "--master", "--master-bind-host", SERVER_NS_IP, "--master-bind-port", "5557", "--expect-workers", "2",
                "--headless", "--host", address, "-u", "4", "-r", "4", "--iterations", "50", "--batch-size", "2",
                "--model-name", "small", "--synthetic-shape", "8,8,3", "--csv", str(tmp_path / "out"))],
            capture_output=True, text=True, timeout=120, cwd=ROOT)
        for worker in workers:
            worker.communicate(timeout=30)
        tx = subprocess.run(["ip", "netns", "exec", worker_ns, "cat", f"/sys/class/net/{worker_if}/statistics/tx_bytes"],
                            capture_output=True, text=True).stdout
    finally:
        for process in [server, *workers]:
            if process.poll() is None:
                process.terminate()
        served = server.communicate(timeout=30)[0]
    output = master.stdout + master.stderr
    assert master.returncode == 0, output
    assert re.search(r"Aggregated\s+200\s+0\s+400\s", output), output
    counts = re.search(r"demo server served (\d+) requests \((\d+) ok, (\d+) failed, 0 cancelled\), (\d+) frames", served)
    assert counts and counts.groups() == ("204", "204", "0", "408"), served  # + 4 warm-up requests
    # every request body (8x8x3 float32 frames, 2 per request) crossed the veth pair
    assert int(tx) > 204 * 2 * 8 * 8 * 3 * 4
