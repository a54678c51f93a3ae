"""The servers' own figures in a run (``--server-metrics URL[,URL...]``): when to scrape, what to put beside them.

The run object (``TfsRun.server``) owns one ``ServerWindow``; only a local runner or a master has
one that scrapes (workers never do: one scrape per server, however many workers). The window of
the test runs from ``test_start``, before any user is spawned, to ``test_stop``, when every user
has stopped and the requests in flight were answered, so the server's count is compared with all
we sent in it: measured requests, warm-ups and those completed after the stop. A sweep step's
window is its measured part: from the end of its warm-up to the moment it closes
(``tfs_user.capacity.step_clock``); then requests in flight at either edge (at most the step's
users) are the only difference, with the requests sent while the edge was uncertain: while its
scrape was under way (the server wrote its page at some moment of it) and, with workers, before they
heard of the edge (as late as they measured it: the master's send time in the load message against
theirs, so hosts need synchronized clocks); both at the step's rate. That sum is the entry's ``count_slack``.

A statistics reset (web UI) restarts the test's window while users run. On a master, Locust resets its own
table only: what the workers had not reported yet arrives after the reset and counts there, in Locust's
table and in ours alike, though those requests were sent before it. So the master asks its workers
(``RESET_MESSAGE``) how many they held then and how late they heard of it, and the server's count is
compared with ours minus those (``carried``); the window's start is as uncertain as its scrape was long
and the workers were late, at the test's rate. The live web UI tab compares each page with our count as of that
page (read right after its scrape), not of now. On a master our count lags each worker by up to its
report interval (Locust's WORKER_REPORT_INTERVAL, 3 s), so the live tab shows both counts without a
verdict (``LIVE_ON_MASTER``); the test's end compares them once every worker has reported.

The figures themselves come from ``tfs_user.server_metrics`` (scrape, parse, difference, recognise
the server); entries, console lines and the CSV from ``tfs_user.server_metrics.entries``.
"""

import math
import time

import gevent

from tfs_user.results import report
from tfs_user.option_values import DEMO_METRICS, parse_metric_urls
from tfs_user.server_metrics import entries as entries_mod
from tfs_user.server_metrics.entries import ClientSide
from tfs_user.server_metrics.watch import Watch
from tfs_user.transport.endpoints import row_name

RESET_MESSAGE = "tfs_server_reset"
RESET_DONE_MESSAGE = "tfs_server_reset_done"
LIVE_ON_MASTER = ("count gap: not checked while running on a master (our count lags each worker's report by up to "
                  "3 s); checked at the test's end")


class ServerWindow:
    """``--server-metrics`` in one run (see the module docstring). ``watch`` is None without URLs or on a worker."""

    def __init__(self, run):
        self.run = run
        self.watch = None
        self._live = None
        self._reset_lag_s = None  # after a statistics reset: how late the workers heard of it (max), s; else None
        self._carried = 0  # requests the workers held unreported at the last reset (in ours, before the window)

    def register(self, runner):
        """Master / worker: the statistics reset's messages (see the module docstring)."""
        if self.run.worker:
            def on_reset(msg, **kwargs):
                recorder = self.run.recorder  # not yet reported: sent before the master's reset, reported after it
                held = recorder.total().requests + recorder.warmup + recorder.after_stop
                runner.send_message(RESET_DONE_MESSAGE, {"lag_s": max(0.0, time.time() - msg.data["at"]), "held": held})
            runner.register_message(RESET_MESSAGE, on_reset)
        elif self.run.master:
            def on_done(msg, **kwargs):
                self._reset_lag_s = max(self._reset_lag_s or 0.0, float(msg.data["lag_s"]))
                self._carried += int(msg.data["held"])
            runner.register_message(RESET_DONE_MESSAGE, on_done)
    @property
    def active(self):
        return self.watch is not None

    def _current_watch(self):
        """The Watch for the URLs the options give now (the web form may have changed them), made anew
        when they changed; None without URLs or on a worker."""
        options = self.run.environment.parsed_options
        urls = () if self.run.worker else parse_metric_urls(getattr(options, "server_metrics", "") or "")
        demo = self.run.demo.metrics_url if self.run.demo is not None else ""
        urls = tuple(dict.fromkeys(demo or url if url == DEMO_METRICS else url for url in urls))
        if self.watch is None or self.watch.urls != urls:
            if self._live is not None:
                self._live.kill(block=False)
                self._live = None
            self.watch = Watch(urls) if urls else None
        return self.watch

    def on_test_start(self):
        """At ``test_start``, before the first user: read the test window's start."""
        self._reset_lag_s, self._carried = None, 0
        if self._current_watch() is not None:
            self.watch.begin()

    def restart(self):
        """A statistics reset: the test's window starts again now; a master's workers forget what they have not
        reported (it was before the reset)."""
        runner = self.run.environment.runner
        if self.run.master and runner is not None:
            self._reset_lag_s, self._carried = 0.0, 0
            for client in list(runner.clients.values()):
                runner.send_message(RESET_MESSAGE, {"at": time.time()}, client_id=client.id)
        elif not self.run.worker:
            self._reset_lag_s = 0.0
        if self.watch is not None:
            self.watch.begin()

    def on_test_stop(self):
        if self.watch is not None:
            self.watch.finish()

    def watch_live(self, running):
        """Web UI: scrape every few seconds while ``running()`` (its own greenlet), our figures read with each page."""
        if self.watch is not None and self._live is None:
            self._live = gevent.spawn(self.watch.watch_live, running, lambda: report.summary(self.run.recorder))

    # ------------------------------------------------------------- figures

    def model(self):
        """The model whose figures are read: the first TfsUser class's ``model_name``."""
        for settings in self.run.settings_list():
            return settings.model_name
        return ""

    def models(self):
        """Every model of the run's TfsUser classes, in class order, each once (``--models``: several)."""
        return list(dict.fromkeys(settings.model_name for settings in self.run.settings_list()))

    def _by_model(self, start, end, data):
        """{url: entry} for one model, or with several models {"URL (model M)": entry} per URL and model, each
        beside that model's own rows (the server counts per model: TF Serving, OVMS, Triton, MLServer, demo)."""
        models = self.models()
        if len(models) <= 1:
            return entries_mod.entries(self.watch.urls, start, end, self.model(), self._clients(data))
        left_out = data["warmup_requests"] + data["after_stop_requests"]
        out = {}
        for model in models:
            rows = [r for r in data["rows"][:-1] if not r.get("part_of") and r["name"].split(" ", 1)[-1] == model]
            ok = sum(r["requests"] - r["failures"] for r in rows)
            mean = (sum(r["mean_ms"] * (r["requests"] - r["failures"]) for r in rows if r["mean_ms"] is not None)
                    / ok) if ok else None
            slack = self._users() + self._uncertain(data, None) + left_out + self._carried
            side = ClientSide(sum(r["requests"] for r in rows), slack, mean,
                              f"measured of model {model}; {left_out} warm-up and after-stop requests not kept per model")
            for url, e in entries_mod.entries(self.watch.urls, start, end, model,
                                              {url: side for url in self.watch.urls}).items():
                out[f"{url} (model {model})"] = e
        return out

    def _users(self):
        options = self.run.environment.parsed_options
        plan = self.run.capacity.plan if self.run.capacity is not None else []
        return max([int(getattr(options, "num_users", 0) or 1), *(step.users for step in plan)])

    def _clients(self, data, end=None):
        """{url: ClientSide} of the test from the summary ``data`` and the run's left-out counts; ``end``: the
        live Edge it is compared with (None: the test's end).

        One URL per endpoint (as many URLs as endpoints): each URL beside its endpoint's rows; the
        warm-ups and after-stop requests, not kept per endpoint, widen the allowed gap. Else every
        URL beside all our requests.
        """
        urls = self.watch.urls
        endpoints = data.get("endpoints") or []
        left_out = data["warmup_requests"] + data["after_stop_requests"]
        carried = self._carried  # in ours, sent before a reset (a master's workers had not reported them)
        users = self._users() + self._uncertain(data, end)
        total = data["rows"][-1]
        if len(endpoints) > 1 and len(urls) == len(endpoints):
            out = {}
            for url, endpoint in zip(urls, endpoints):
                rows = [r for r in data["rows"][:-1] if r["name"].endswith(row_name("", endpoint))]
                ok = sum(r["requests"] - r["failures"] for r in rows)
                mean = (sum(r["mean_ms"] * (r["requests"] - r["failures"]) for r in rows if r["mean_ms"] is not None)
                        / ok) if ok else None
                out[url] = ClientSide(sum(r["requests"] for r in rows), users + left_out + carried, mean,
                                      f"measured to {endpoint}; {left_out} warm-up and after-stop requests not kept "
                                      "per endpoint")
            return out
        what = "measured + warm-up + after stop" + (f" - {carried} sent before the reset" if carried else "")
        side = ClientSide(total["requests"] + left_out - carried, users, total["mean_ms"], what)
        return {url: side for url in urls}

    def _uncertain(self, data, end):
        """Requests the edges' uncertainty may add to a gap, at the test's rate: a reset's start edge (its scrape
        and the workers' lag in hearing of it), and for a live page its scrape."""
        seconds = 0.0
        if self._reset_lag_s is not None and self.watch.start is not None:
            seconds += self._reset_lag_s + max(self.watch.start.took.values(), default=0.0)
        if end is not None:
            seconds += max(end.took.values(), default=0.0)
        return math.ceil((data["rows"][-1].get("rps") or 0.0) * seconds)

    def test_entries(self, data):
        """{url: entry} of the test (JSON key ``server``), from the summary ``data``; None without URLs."""
        if self.watch is None:
            return None
        self.watch.finish()  # Ctrl-C: quitting before test_stop
        return self._by_model(self.watch.start, self.watch.end, data)

    def live_entries(self):
        """{url: entry} from the test's start to the last live scrape (or the end): the web UI's tab."""
        if self.watch is None or self.watch.start is None:
            return {}
        if self.watch.end is not None:
            end, data, live = self.watch.end, report.summary(self.run.recorder), None
        elif self.watch.latest is not None and self.watch.latest_ours is not None:
            end, data = self.watch.latest, self.watch.latest_ours  # our count as of that page, not of now
            live = end
        else:
            return {}
        out = entries_mod.entries(self.watch.urls, self.watch.start, end, self.model(), self._clients(data, live))
        if live is not None and self.run.master:
            for e in out.values():
                e["warning"] = None
                e["notes"].append(LIVE_ON_MASTER)
        return out

    def step_entries(self, row, users, wait_s=None):
        """{url: entry} of the sweep step of ``row`` (a step row), beside its measured requests; {} when the
        step has no scrapes (not closed yet, no URLs, not done within ``wait_s``)."""
        if self.watch is None:
            return {}
        edges = self.watch.step_edges(row["step"], wait_s)
        if edges is None:
            return {}
        rate = row.get("rps") or 0.0
        lag = 2 * row.get("edge_lag_s", 0.0)  # workers hear of each edge by message, as late as they measured

        def side(url):  # the edges are as uncertain as the scrapes were long: requests at the step's rate meanwhile
            uncertain = lag + sum(edge.took.get(url, 0.0) for edge in edges)
            return ClientSide(row["requests"], users + math.ceil(rate * uncertain), row.get("mean_ms"),
                              "measured in the step")

        return entries_mod.entries(self.watch.urls, edges[0], edges[1], self.model(),
                                   {url: side(url) for url in self.watch.urls})

    def step_start(self, index, delay_s):
        """Step ``index`` entered: scrape when its warm-up ends. Step 1 starts a new sweep (Locust enters
        it just before ``test_start``)."""
        watch = self._current_watch() if index == 1 else self.watch
        if watch is not None:
            if index == 1:
                watch.clear_steps()
            watch.step_start(index, delay_s)

    def step_end(self, index):
        if self.watch is not None:
            self.watch.step_end(index)

    def write_csv(self, path, data):
        """``PREFIX_tfs_server.csv``: the test's entries (``data['server']``), then each step's."""
        windows = [("test", data["server"])]
        windows += [(f"step {row['step']}", row.get("server") or {}) for row in data.get("steps", [])]
        entries_mod.write_csv(path, windows, report._write_atomically)

    def lines(self, by_url):
        """Console lines of the test's entries."""
        scraped_by = "the master (workers do not scrape)" if self.run.master else "this process"
        return entries_mod.lines(by_url or {}, scraped_by)
