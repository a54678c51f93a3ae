"""Scrapes of the servers' metrics pages at the edges of a window, each in a greenlet of its own.

A ``Watch`` holds the ``--server-metrics`` URLs and the pages read at the edges of the test
(``begin``/``finish``), of each sweep step (``step_start``/``step_end``) and, for the live web UI,
every LIVE_INTERVAL_S (``watch_live``). An ``Edge`` is one moment: a Snapshot per URL, or the
MetricsError that URL gave. A URL that is down, slow or not Prometheus text is one warning line
(the first time it fails) and no figures; nothing here raises into the run. No Locust import.
"""

import logging
import time
from dataclasses import dataclass

import gevent

from tfs_user.server_metrics.snapshots import parse
from tfs_user.server_metrics.scrape import MetricsError, scrape

logger = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 2.0
"""Seconds one scrape of one URL may take in all (connect, answer, read); then it is a MetricsError."""
LIVE_INTERVAL_S = 5.0
"""Seconds between the live web UI's scrapes while a test runs."""


@dataclass(frozen=True)
class Edge:
    """One moment of the window: ``pages`` {url: Snapshot or MetricsError}, ``at`` wall-clock seconds when
    the scrapes began, ``took`` {url: seconds until its page was read}: the server wrote its page at some
    moment in between, so the edge is that uncertain."""

    pages: dict
    at: float
    took: dict


class Watch:
    """The scrapes of one run (master or local runner: workers never scrape). ``urls``: a tuple of str."""

    def __init__(self, urls, timeout_s=SCRAPE_TIMEOUT_S):
        self.urls = tuple(urls)
        self.timeout_s = timeout_s
        self.start = self.end = self.latest = None  # Edge of the test's start, end, the last live scrape
        self.latest_ours = None  # what ``watch_live``'s ``ours()`` gave right after the last live scrape
        self._steps = {}  # step index -> [greenlet of the start Edge, greenlet of the end Edge or None]
        self._failing = set()  # URLs whose last scrape failed (warned once until they answer again)

    def take(self):
        """An Edge: every URL scraped at once (a greenlet each), at most ``timeout_s`` in all; never raises."""
        at = time.time()
        jobs = {url: gevent.spawn(self._read, url) for url in self.urls}
        gevent.joinall(list(jobs.values()), timeout=self.timeout_s)
        pages, took = {}, {}
        for url, job in jobs.items():
            if job.ready() and job.successful():
                pages[url], took[url] = job.value
            elif job.ready():  # _read raises nothing; should it, this is still one URL's failure, not the run's
                pages[url] = MetricsError(f"server metrics {url}: {type(job.exception).__name__}: {job.exception}")
                took[url] = self.timeout_s
            else:
                job.kill(block=False)
                pages[url] = MetricsError(f"server metrics {url}: no answer within {self.timeout_s:g} s")
                took[url] = self.timeout_s
        for url, page in pages.items():
            self._warn_once(url, page)
        return Edge(pages, at, took)

    def _read(self, url):
        began = time.perf_counter()
        try:
            return parse(scrape(url, timeout_s=self.timeout_s)), time.perf_counter() - began
        except MetricsError as e:
            return MetricsError(str(e) if url in str(e) else f"server metrics {url}: {e}"), time.perf_counter() - began
        except Exception as e:  # any answer from any URL is one warning, never the run's end
            reason = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            return MetricsError(f"server metrics {url}: {reason}"), time.perf_counter() - began

    def _warn_once(self, url, page):
        if isinstance(page, MetricsError):
            if url not in self._failing:
                self._failing.add(url)
                logger.warning("%s; the run goes on without these server figures", page)
        else:
            self._failing.discard(url)

    # -------------------------------------------------------------- the test

    def begin(self):
        """At test start (before any user is spawned; it waits at most ``timeout_s``): the window's start."""
        self.start, self.end, self.latest, self.latest_ours = self.take(), None, None, None

    def clear_steps(self):
        """A new sweep: forget the steps' scrapes (and stop those still waiting)."""
        for jobs in self._steps.values():
            for job in jobs:
                if job is not None:
                    job.kill(block=False)
        self._steps = {}

    def finish(self):
        """At test stop (every user stopped, requests in flight answered): the window's end, which is
        also the end of a sweep step still open (one whose warm-up had not ended has no window)."""
        if self.start is not None and self.end is None:
            self.end = self.take()
        for jobs in self._steps.values():
            if jobs[1] is None:
                if jobs[0].ready():
                    jobs[1] = gevent.spawn(lambda edge: edge, self.end)
                else:
                    jobs[0].kill(block=False)

    def watch_live(self, running, ours=lambda: None):
        """Scrape every LIVE_INTERVAL_S while ``running()`` is true (a greenlet of the web UI); ``ours()`` is read
        right after each scrape (``latest_ours``): the client's side as of that page, to compare like with like."""
        while True:
            gevent.sleep(LIVE_INTERVAL_S)
            if running() and self.start is not None:
                latest = self.take()
                self.latest, self.latest_ours = latest, ours()

    # -------------------------------------------------------------- sweep steps

    def step_start(self, index, delay_s):
        """Scrape ``delay_s`` from now (when step ``index``'s warm-up ends), in a greenlet."""
        self._steps[index] = [gevent.spawn_later(delay_s, self.take), None]

    def step_end(self, index):
        """Scrape now (step ``index`` just closed: no request joins it any more), in a greenlet."""
        jobs = self._steps.get(index)
        if jobs is not None and jobs[1] is None:
            jobs[1] = gevent.spawn(self.take)

    def step_edges(self, index, wait_s=None):
        """(start Edge, end Edge) of step ``index``, waiting for its scrapes at most ``wait_s`` (default
        2 x ``timeout_s``); None when the step has no end scrape (not closed) or a scrape is not done."""
        jobs = self._steps.get(index)
        if jobs is None or jobs[1] is None:
            return None
        gevent.joinall(jobs, timeout=2 * self.timeout_s if wait_s is None else wait_s)
        if not all(job.ready() and job.successful() for job in jobs):
            return None
        return jobs[0].value, jobs[1].value
