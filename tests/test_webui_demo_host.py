"""An empty host posted from the start form or to ``/swarm`` on a ``--demo-server`` run goes to the demo
server the run started, not to localhost:9000 (issue 29); a host typed in is still taken as typed."""

import json
import urllib.request

import pytest

from test_webui import stats_once_stopped, web_locust  # noqa: F401 (the fixture)
from tfs_user.options import form_labels
from tfs_user.web import form as web_form


def _swarm(url, host):
    labels = form_labels()
    fields = {"user_count": "1", "spawn_rate": "1", "host": host,
              web_form.field_key(labels["tfs_iterations"]): "5", web_form.field_key(labels["warmup_iterations"]): "0"}
    body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in fields.items()).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "/swarm", data=body), timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize("posted", ["", "  "])
def test_an_empty_host_on_a_demo_server_run_is_the_demo_server(web_locust, posted):
    url = web_locust("", "--demo-server", "--status-interval", "0")
    answer = _swarm(url, posted)
    assert answer["success"] is True and answer["host"].startswith("127.0.0.1:"), answer
    data = stats_once_stopped(url)
    rows = {t["key"]: t["data"] for t in data.get("extended_stats", [])}["tfs"]
    total = rows[-1]
    assert (data["state"], total["requests"], total["failures"]) == ("stopped", 5, 0), (data["state"], rows)
