"""README and docs/ stay short and true: README fits a screen or two, every link lands, and every
README recipe that needs no outside server runs as written (against the bundled demo server)."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT, end_group, run_group

README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


def _slug(heading):
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path):
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", path.read_text(), re.M)}


def test_readme_is_short_and_links_every_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    linked = {m for m in LINK.findall(text) if m.startswith("docs/")}
    assert {f"docs/{p.name}" for p in PAGES} <= {link.split("#")[0] for link in linked}


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: p.name)
def test_every_relative_link_lands(path):
    for link in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{path.name}: {link} (no {file})"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file), f"{path.name}: {link} (no heading #{anchor} in {file.name})"


def _recipes():
    """The README's shell commands that run `locust` against the bundled demo server."""
    blocks = re.findall(r"```bash\n(.+?)\n```", README.read_text(), re.S)
    commands = [" ".join(line.rstrip("\\").strip() for line in block.splitlines()) for block in blocks]
    return [c for c in commands if c.startswith("locust ") and ("--demo-server" in c or "configs/demo.conf" in c)]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _folder(tmp_path):
    """A working folder laid out like the clone (locustfile.py, configs/), so the recipes' paths work."""
    for name in ("locustfile.py", "configs"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "results").mkdir()
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1",
                PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))


def test_the_readme_has_the_five_recipes():
    recipes = _recipes()
    assert len(recipes) == 4, recipes  # CI job, --processes, sweep, web UI (the main job runs in test_core_runs)
    assert sum("--headless" in r or "configs/demo.conf" in r for r in recipes) == 3


@pytest.mark.parametrize("recipe", [r for r in _recipes() if "--headless" in r or "configs/demo.conf" in r])
def test_headless_recipe_runs_as_written(recipe, tmp_path):
    # only the length changes: --run-time 3s (the config's 15 s too), step time 2 s
    command = re.sub(r"--run-time \S+", "--run-time 3s", recipe)
    command = re.sub(r"--step-time \S+", "--step-time 2s", command)
    if "--run-time" not in command and "--sweep" not in command:
        command += " --run-time 3s"
    env = _folder(tmp_path)
    done = run_group(["bash", "-c", command], timeout=180, cwd=tmp_path, env=env)
    output = done.stdout + done.stderr
    if "--sweep" in command:
        # the verdict is this machine's: 0 when a step met the p99 SLO, 3 when even the first missed
        # it (seen on a busy CI machine: p99 36 ms at 50 req/s); the sweep's own line says which
        best = re.search(r"^\s*Highest FPS within the SLO: (.*)$", output, re.M)
        assert best, output[-3000:]
        met = best.group(1) != "none (no step met it)"
        assert done.returncode == (0 if met else 3), output[-3000:]
    else:
        assert done.returncode == 0, output[-3000:]
    assert re.search(r"^Aggregated\s+[1-9]\d*\s+0\s", output, re.M), output[-3000:]
    assert "demo server served" in output
    if "--json-summary" in command:
        summary = json.loads((tmp_path / re.search(r"--json-summary (\S+)", command).group(1)).read_text())
        assert summary["passed"] is True and summary["exit_code"] == 0
    if "--sweep" in command:
        assert (tmp_path / "results" / "sweep_tfs_steps.csv").is_file() and (tmp_path / "results" / "capacity.html").is_file()


def test_web_ui_recipe_serves_the_form_on_loopback(tmp_path):
    recipe = next(r for r in _recipes() if "--web-host 127.0.0.1" in r)
    port = _free_port()  # the recipe's port 8089 may be taken here: only the port changes
    env = _folder(tmp_path)
    process = subprocess.Popen(shlex.split(recipe) + ["--web-port", str(port)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"locust exited with {process.returncode}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the web UI did not answer within 60 s"
                time.sleep(0.5)
    finally:
        end_group(process)
