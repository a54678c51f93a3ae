"""Whatever a call or its answer check raises ends as that request's failure: one request event each, none lost."""

import json
import os

import pytest

from conftest import ROOT, locust_command, run_group


@pytest.mark.parametrize("where, text", [("check", "could not be checked (TypeError: odd answer)"),
                                         ("call", "the call raised KeyError: 'odd call'")])
def test_an_exception_in_a_call_or_its_check_is_a_failure_not_a_lost_request(where, text, demo_server, small_model,
                                                                                  tmp_path):
    server = demo_server(models=[small_model])
    command = locust_command("--headless", "--host", server.address, "--model-name", "small",
                             "--synthetic-shape", "8,8,3", "-u", "1", "-r", "1", "--tfs-iterations", "9",
                             "--warmup-iterations", "0", "--json-summary", "s.json", "--status-interval", "0",
                             locustfile=str(ROOT / "tests" / "odd_call_locustfile.py"))
    env = {"ODD_WHERE": where, "ODD_EVERY": "3", "PYTHONPATH": str(ROOT)}
    done = run_group(command, 120, cwd=tmp_path, env=dict(os.environ, **env))
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]  # failed requests: Locust's exit code 1
    row = json.loads((tmp_path / "s.json").read_text())["rows"][-1]
    assert (row["requests"], row["failures"]) == (9, 3), row
    sent = 9 if where == "check" else 6  # a call that raised never reached the server
    assert server.counts()["requests"] == sent
    assert text in output and "Traceback" not in output, output[-3000:]
