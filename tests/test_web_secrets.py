"""Secrets stay secret on the web page (issue 30): a real `locust` web UI process is read as a browser gets
it (``GET /`` and the scripts it loads); no secret option's value (ours or another plugin's) is in it, and
the start form posted back with the secret left empty runs with the value given at start-up. Options the
form does not offer (``--demo-server``) are absent from it and refused when posted anyway.
"""

import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT, locust_command
from test_webui import TINY, _free_port, _wait_for_http, end_web_processes
from tfs_user.options import form_labels
from tfs_user.web import form as web_form

SECRET = "S3CRETVAL"
OTHER_SECRET = "T0KENOTHER"
LOCUSTFILE = f"""from locust import events
from tfs_user.user import OptionsTfsUser  # noqa: F401
import tfs_user.web.ui  # noqa: F401


@events.init_command_line_parser.add_listener
def _(parser):  # another plugin's secret option
    parser.add_argument("--other-token", default="", is_secret=True, help="a token")


@events.test_start.add_listener
def _(environment, **kwargs):  # what the other plugin would use
    with open("other_token.txt", "w") as f:
        f.write(environment.parsed_options.other_token)
"""


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8", "replace")


def _post(url, fields):
    body = "&".join(f"{urllib.request.quote(k)}={urllib.request.quote(v)}" for k, v in fields.items()).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/swarm", data=body), timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def secret_web_locust(tmp_path):
    processes = []

    def start(host):
        (tmp_path / "secret_locustfile.py").write_text(LOCUSTFILE)
        port = _free_port()
        log = open(tmp_path / "locust.log", "w")
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        process = subprocess.Popen(
            locust_command("--web-host", "127.0.0.1", "--web-port", str(port), "--host", host, "--status-interval", "0",
                           "--grpc-metadata", f"authorization=Bearer {SECRET}", "--other-token", OTHER_SECRET,
                           locustfile="secret_locustfile.py"),
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
        processes.append((process, log))
        url = f"http://127.0.0.1:{port}"
        _wait_for_http(url + "/", process, 240)  # a bound, not a timing claim: a start took > 90 s beside two CPU hogs
        return url

    yield start
    end_web_processes(processes)


def _extra_options(page):
    """The start form's fields as the page's script receives them (``templateArgs.extra_options``)."""
    match = re.search(r"window\.templateArgs\s*=\s*(\{.*?\})\s*</script>", page, re.S)
    assert match, page[:2000]
    return json.loads(match.group(1))["extra_options"]


def test_no_secret_reaches_the_page_and_an_empty_one_posted_back_keeps_its_value(demo_server, secret_web_locust,
                                                                                  tmp_path):
    server = demo_server(models=[TINY], record=True)
    url = secret_web_locust(server.address)
    page = _get(url + "/")
    scripts = [_get(url + "/" + src.lstrip("./")) if not src.startswith("http") else ""
               for src in re.findall(r'<script[^>]*\ssrc="([^"]+)"', page)]
    assert scripts, page[:2000]  # the page's code was read too
    for text in (page, *scripts):
        for secret in (SECRET, OTHER_SECRET):
            assert secret not in text and secret[::-1] not in text
    fields = _extra_options(page)
    metadata = fields[web_form.field_key(form_labels()["grpc_metadata"])]
    assert metadata["is_secret"] is True and metadata["default_value"] == ""
    assert metadata["help_text"].endswith(web_form.SECRET_SET)  # says a value is set, without it
    assert fields["other_token"]["is_secret"] is True and fields["other_token"]["default_value"] == ""
    labels = form_labels()
    assert web_form.field_key("Demo server") not in fields and "demo_server" not in fields

    # a form post of the demo-server box (not offered) is refused, not ignored
    refused = _post(url, {"user_count": "1", "spawn_rate": "1", "host": server.address, "demo_server": "true"})
    assert refused == {"success": False, "host": server.address,
                       "message": "error: --demo-server is not set from the start form; give it when starting locust"}

    # the form as the page posts it: the secret fields empty
    fields = {"user_count": "1", "spawn_rate": "1", "host": server.address,
              web_form.field_key(labels["grpc_metadata"]): "", "other_token": "",
              web_form.field_key(labels["tfs_iterations"]): "2", web_form.field_key(labels["warmup_iterations"]): "0"}
    assert _post(url, fields)["success"] is True
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(server.received()) < 2:
        time.sleep(0.2)
    received = server.received()
    assert len(received) == 2 and all(r.metadata.get("authorization") == f"Bearer {SECRET}" for r in received), \
        [r.metadata for r in received]
    assert (tmp_path / "other_token.txt").read_text() == OTHER_SECRET
    assert OTHER_SECRET not in _get(url + "/")


def test_every_secret_field_is_emptied_whoever_added_it():
    extra = {"grpc_metadata": {"default_value": "authorization=Bearer x", "is_secret": True, "help_text": "h"},
             "grpc_tls_key": {"default_value": "/keys/client.key", "is_secret": True, "help_text": "h"},
             "other_token": {"default_value": "tok", "is_secret": True, "help_text": ""},
             "other_plain": {"default_value": "shown", "is_secret": False, "help_text": ""},
             "batch_size": {"default_value": 4, "is_secret": False, "help_text": ""}}
    fields = web_form.form_fields(extra)
    secret = {k: v for k, v in fields.items() if v["is_secret"]}
    assert len(secret) == 3 and all(v["default_value"] == "" for v in secret.values())
    assert fields["other_plain"]["default_value"] == "shown"
    assert fields[web_form.field_key("Batch size")]["default_value"] == 4
    assert web_form.form_fields(fields) == fields


def test_an_empty_secret_posted_back_is_dropped_and_a_typed_one_kept():
    key = web_form.field_key(form_labels()["grpc_metadata"])
    items = [(key, ""), ("other_token", ""), ("other_plain", ""), ("grpc_tls_key", "k.pem"), ("batch_size", "2")]
    kept = web_form.without_empty_secrets(items, {"grpc_metadata", "other_token", "grpc_tls_key"})
    assert kept == [("other_plain", ""), ("grpc_tls_key", "k.pem"), ("batch_size", "2")]
