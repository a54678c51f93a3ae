"""FPS and exact latency in Locust's web UI and HTML report; readable errors for bad form values.

Only Locust 2.47's documented extension points are used (docs "Extending the web UI",
Locust's ``examples/extend_web_ui.py``), on the local runner or the master:

- a **TFS tab** (``web_ui.template_args``: ``extended_tabs``/``extended_tables``) whose rows an
  ``app.after_request`` handler adds as ``extended_stats`` to Locust's ``/stats/requests`` JSON,
  which the UI polls every 2 s while a test runs, like its own tables: per request name and
  ``Aggregated``, current FPS (last CURRENT_WINDOW_S seconds), FPS and req/s over the measured
  window, min/mean/p50/p90/p95/p99/p99.9/max in ms (microsecond resolution);
- two links in the **Download Data** tab (``extended_csv_files``): the summary as CSV
  (``tfs/summary.csv``) and an **FPS-over-time chart** page (``tfs/fps``). Locust's Charts tab
  draws a fixed set of series and its tabs can only hold tables, so the chart is a page of its own;
- **start-form checks**: an ``app.before_request`` handler on ``/swarm`` parses the TFS fields
  with the command line's own parsers and validates them (``Settings``, the numpy file) before
  the run starts. A bad value gets the answer Locust gives for its own bad form values,
  ``{"success": false, "message": "error: ..."}``, shown in red under the form, and the same
  line in the Logs tab. (Without this, ``abc`` ended in an HTTP 500 that the UI shows as
  "An unknown error occurred.", and ``0`` or a missing file started a run that stopped at once.)
- the **HTML report** (``--html FILE`` and the UI's "Download Report"): Locust renders it from a
  fixed set of arguments with no extension hook, so a plain HTML section (the summary table and
  the FPS chart) is inserted before ``</body>``: by an ``after_request`` handler on
  ``/stats/report`` and, for ``--html``, into the written file on the ``quit`` event (the
  figures are then the final ones of the console summary).

Importing this module registers the listeners (``tfs_user.user`` imports it).
"""

import argparse
import collections
import csv
import html
import io
import json
import logging
import os
import re
import time
import weakref

import gevent
from flask import Blueprint, Response, before_render_template, jsonify, make_response, request
from flask_login import current_user
from locust import events
from locust.runners import STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING, MasterRunner, WorkerRunner

from tfs_user import control, hooks, report, webform
from tfs_user.prepare import check_data
from tfs_user.options import OPTIONS, Settings

logger = logging.getLogger(__name__)

TAB_KEY = "tfs"
SAMPLE_INTERVAL_S = 0.5
"""Seconds between samples of the frame counters (current FPS, chart)."""
CURRENT_WINDOW_S = 10.0
"""Current FPS = frames of requests that ended in about the last 10 s (Locust's current RPS uses 10 s)."""
ROWS_CACHE_S = 2.0
"""Seconds the TFS tab's rows are reused (Locust caches /stats/requests for 2 s too)."""
CHART_POINTS = 7200
"""Chart history: one point per sample, 1 h at SAMPLE_INTERVAL_S."""

# Locust's request endpoints (blueprint "locust", view function names in locust/web.py)
STATS_ENDPOINT = "locust.request_stats"
SWARM_ENDPOINT = "locust.swarm"
REPORT_ENDPOINT = "locust.stats_report"

TABLE_COLUMNS = [
    ("name", "Name"), ("requests", "Requests"), ("failures", "Fails"), ("frames", "Frames"),
    ("current_fps", "Current FPS"), ("fps", "FPS"), ("rps", "Req/s"), ("min_ms", "Min ms"), ("mean_ms", "Mean ms"),
    ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"), ("p95_ms", "p95 ms"), ("p99_ms", "p99 ms"), ("p999_ms", "p99.9 ms"),
    ("max_ms", "Max ms"),
]


class FpsMeter:
    """Current FPS per request name and a chart history, from samples of the Recorder.

    A sample per name is ``(last_end, frames)``: the wall-clock end (s) of the
    latest measured request and the frames counted up to it. Rates between two
    samples use the requests' own end times, not the sampling times, so they
    stay right on a master where workers' data arrive in 3 s steps.
    """

    def __init__(self):
        self.recorder = None
        self.samples = {}  # name -> deque of (last_end s, frames)
        self.chart = collections.deque(maxlen=CHART_POINTS)  # (wall time s, current FPS of Aggregated)

    def sample(self, recorder, now=None):
        """Take one sample of ``recorder``; a new Recorder object (a new test) starts a new series and chart."""
        now = time.time() if now is None else now
        if recorder is not self.recorder:
            self.recorder, self.samples = recorder, {}
            self.chart.clear()
        points = {name: (s.last_end, s.frames) for name, s in recorder.names.items() if s.requests}
        if points:
            points[report.AGGREGATED] = (max(e for e, _ in points.values()), sum(f for _, f in points.values()))
        for name, point in points.items():
            series = self.samples.setdefault(name, collections.deque())
            if not series or point[0] > series[-1][0]:
                series.append(point)
            while len(series) > 2 and series[1][0] <= point[0] - CURRENT_WINDOW_S:
                series.popleft()
        self.chart.append((now, self.current(report.AGGREGATED, now)))

    def current(self, name, now=None):
        """Frames/s of ``name`` over about the last CURRENT_WINDOW_S seconds; 0 when none ended in that time."""
        now = time.time() if now is None else now
        series = self.samples.get(name)
        if not series or series[-1][0] < now - CURRENT_WINDOW_S:
            return 0.0
        end, frames = series[-1]
        start = next(((e, f) for e, f in series if e >= end - CURRENT_WINDOW_S and e < end), None)
        if start is None:  # one sample only: rate since the first measured request
            stats = self.recorder.names.get(name) if name != report.AGGREGATED else self.recorder.total()
            window = end - stats.first_start if stats else 0.0
            return frames / window if window > 0 else 0.0
        return (frames - start[1]) / (end - start[0])


_rows_cache = weakref.WeakKeyDictionary()  # environment -> (monotonic time, rows)
_environments = weakref.WeakSet()


meter = control.per_environment(FpsMeter)
"""The FpsMeter of an environment."""


def _sample_forever(environment):
    while True:
        gevent.sleep(SAMPLE_INTERVAL_S)
        if environment.runner.state in (STATE_RUNNING, STATE_SPAWNING, STATE_STOPPING):
            meter(environment).sample(hooks.state(environment).recorder)


def table_rows(environment):
    """The TFS tab's rows: report.summary rows plus ``current_fps``; ms to 3 decimals, rates to 1.

    Computing percentiles takes a few ms of the load generator's event loop,
    so rows are reused for ROWS_CACHE_S (every open browser tab polls).
    """
    cached = _rows_cache.get(environment)
    if cached is not None and time.monotonic() - cached[0] < ROWS_CACHE_S:
        return cached[1]
    data = report.summary(hooks.state(environment).recorder)
    m = meter(environment)
    rows = []
    for row in data["rows"]:
        if not row["requests"] and row["name"] != report.AGGREGATED:
            continue
        out = {"name": row["name"], "requests": row["requests"], "failures": row["failures"],
               "frames": row["frames"], "current_fps": round(m.current(row["name"]), 1)}
        for key in ("fps", "rps"):
            out[key] = round(row[key], 1)
        for key in ("min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"):
            out[key] = round(row[key], 3)
        out["p999_ms"] = round(row["p99.9_ms"], 3)
        rows.append(out)
    _rows_cache[environment] = (time.monotonic(), rows)
    return rows


def summary_csv(environment):
    """The current summary as CSV text, columns as ``PREFIX_tfs.csv`` (report.CSV_COLUMNS)."""
    data = report.summary(hooks.state(environment).recorder)
    text = io.StringIO()
    out = csv.writer(text)
    out.writerow([title for title, _ in report.CSV_COLUMNS])
    for row in data["rows"]:
        out.writerow([_text(row[k]) for _, k in report.CSV_COLUMNS])
    return text.getvalue()


def _text(value):
    """A summary value as PREFIX_tfs.csv writes it: names and counts as they are, other numbers to 3 decimals."""
    return str(value) if isinstance(value, (str, int)) else f"{value:.3f}"


# ---------------------------------------------------------------- start-form checks

def _ui_field_name(dest):
    """The name under which Locust's UI posts option ``dest``.

    The page camel-cases option names and snake-cases them back on submit (the
    two regular expressions of its ``camelCase``/``snakeCase`` helpers, ported
    here), which splits digit pairs: ``slo_p99_ms`` comes back as ``slo_p9_9ms``
    and Locust, not knowing that name, would drop the value.
    """
    camel = re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), dest)
    if camel[0] == camel[0].upper():
        return camel
    return re.sub(r"([a-z0-9])([A-Z0-9])", r"\1_\2", camel).lower()


def _form_fields():
    """(dest, names posted by the UI, parse function, flag) for each TFS option."""
    fields = []
    keys = webform.field_keys()  # the labels the form posts (tfs_user.webform)
    for flags, kwargs in OPTIONS:
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        if kwargs.get("action") == "store_true":
            parse = lambda text: text == "true"  # noqa: E731  (how Locust reads a checkbox)
        else:
            parse = kwargs.get("type") or str
        fields.append((dest, {dest, _ui_field_name(dest), keys[dest]}, parse, flags[0]))
    return fields


def check_form(environment, form):
    """Parse and validate the TFS fields of a start-form post.

    Returns ``(values, None)`` with the parsed values by option dest, or
    ``(None, message)``: one line naming the option, the value (never of a
    secret option: their parser is ``str``) and what was expected. The checks
    of start-up without the server: the option parsers, Settings, the numpy file.
    """
    options = environment.parsed_options
    values = {}
    for dest, names, parse, flag in _form_fields():
        name = next((n for n in names if n in form), None)
        if name is None:
            continue
        try:
            values[dest] = parse(form[name])
        except (argparse.ArgumentTypeError, ValueError) as e:
            return None, f"{flag}: {e}"
    candidate = argparse.Namespace(**{**vars(options), **values})
    host = form.get("host", environment.host) or ""
    try:
        settings = Settings.from_options(candidate, host)
        check_data(settings, master=isinstance(environment.runner, MasterRunner))  # as at start-up
    except ValueError as e:  # OptionError, DataError
        return None, str(e)
    return values, None


# ---------------------------------------------------------------- chart and HTML report section

def fps_svg(points, width=900, height=220):
    """An SVG line chart of ``points`` [(wall time s, FPS)]: FPS axis from 0, time axis in s from the first point."""
    pad_left, pad_bottom, pad_top = 60, 30, 10
    if len(points) < 2 or points[-1][0] <= points[0][0]:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
                f'<text x="{pad_left}" y="{height // 2}" font-size="14">no FPS samples yet</text></svg>')
    step = max(1, len(points) // 900)
    pts = list(points)[::step]
    t0, t1 = pts[0][0], pts[-1][0]
    top = max(f for _, f in pts) * 1.1 or 1.0
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top

    def xy(t, f):
        return f"{pad_left + (t - t0) / (t1 - t0) * plot_w:.1f},{pad_top + plot_h - f / top * plot_h:.1f}"

    line = " ".join(xy(t, f) for t, f in pts)
    axis = f"{pad_left},{pad_top} {pad_left},{pad_top + plot_h} {pad_left + plot_w},{pad_top + plot_h}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="FPS over time" font-family="sans-serif" font-size="12">'
            f'<polyline points="{axis}" fill="none" stroke="#888"/>'
            f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>'
            f'<text x="{pad_left - 5}" y="{pad_top + 10}" text-anchor="end">{top:.0f}</text>'
            f'<text x="{pad_left - 5}" y="{pad_top + plot_h}" text-anchor="end">0</text>'
            f'<text x="{pad_left - 5}" y="{pad_top + plot_h / 2}" text-anchor="end">FPS</text>'
            f'<text x="{pad_left}" y="{height - 8}">0 s</text>'
            f'<text x="{pad_left + plot_w}" y="{height - 8}" text-anchor="end">{t1 - t0:.0f} s</text>'
            f'</svg>')


def report_section(data, chart_points, notes=()):
    """HTML section for Locust's report: the TFS summary table (``report.summary`` data) and the FPS chart."""
    cells = "".join(f"<th>{html.escape(title)}</th>" for title, _ in report.CSV_COLUMNS)
    body = []
    for row in data["rows"]:
        body.append("<tr>" + "".join(f"<td>{html.escape(_text(row[k]))}</td>" for _, k in report.CSV_COLUMNS) + "</tr>")
    total = data["rows"][-1]
    lines = [
        f"Frames: {total['frames']} &nbsp; Measured duration: {total['window_s']:.3f} s &nbsp; "
        f"FPS: {total['fps']:.1f} frames/s &nbsp; Average latency: {total['mean_ms']:.3f} ms &nbsp; "
        f"Failures: {total['failures']}/{total['requests']}",
        f"Left out: {data['warmup_requests']} warm-up requests ({data['warmup_failures']} failed), "
        f"{data['after_stop_requests']} completed after stop",
        *[html.escape(n) for n in notes],
    ]
    style = ("font-family:sans-serif;background:#fff;color:#111;padding:16px;margin:16px;border:1px solid #ccc;"
             "overflow-x:auto")
    return (f'<section id="tfs-summary" style="{style}">'
            "<h2>TFS: FPS and exact latency</h2>"
            "<p>Measured requests only; latency of successful requests in ms with microsecond resolution "
            "(Locust's tables above round to whole ms). FPS = frames of successful requests / measured window.</p>"
            f'<table border="1" cellpadding="4" style="border-collapse:collapse;text-align:right">'
            f"<tr>{cells}</tr>{''.join(body)}</table>"
            + "".join(f"<p>{line}</p>" for line in lines)
            + "<h3>FPS over time (current FPS, last 10 s)</h3>" + fps_svg(chart_points)
            + "</section>")


def insert_section(page, section):
    """``page`` with ``section`` inserted before its last ``</body>`` (appended if there is none)."""
    at = page.rfind("</body>")
    return page + section if at < 0 else page[:at] + section + page[at:]


# ---------------------------------------------------------------- wiring

def _ours(options):
    return options is not None and hasattr(options, "batch_size") and hasattr(options, "slo_p99_ms")


def _logged_in():
    """Whether the request comes from a logged-in user (``--web-login``); False when login is not set up."""
    try:
        return bool(current_user.is_authenticated)
    except Exception:  # no user_loader / secret key: Locust's own login check will answer
        return False


def _label_form_fields(web_ui):
    """Start form: our fields first, in OPTIONS order, labelled as in OPTIONS (``tfs_user.webform``).

    Locust writes the fields into the page with the templates' ``tojson``, which sorts keys, and
    the page makes each label from its key; so the keys become labels and the templates' JSON
    keeps the order (Locust's JSON responses are left as they are).
    """
    policies = web_ui.app.jinja_env.policies
    policies["json.dumps_kwargs"] = {**policies.get("json.dumps_kwargs", {}), "sort_keys": False}

    def relabel(app, template, context, **extra):
        args = context.get("template_args")
        if template.name == "index.html" and isinstance(args, dict) and "extra_options" in args:
            args["extra_options"] = webform.form_fields(args["extra_options"])

    before_render_template.connect(relabel, web_ui.app, weak=False)


def _extend_web_ui(environment, web_ui):
    _label_form_fields(web_ui)
    web_ui.template_args.update({
        "extended_tabs": [{"title": "TFS FPS & latency", "key": TAB_KEY}],
        "extended_tables": [{"key": TAB_KEY, "structure": [{"key": k, "title": t} for k, t in TABLE_COLUMNS]}],
        "extended_csv_files": [
            {"href": "./tfs/summary.csv", "title": "Download TFS summary CSV (FPS, exact percentiles)"},
            {"href": "./tfs/fps", "title": "TFS: FPS over time (chart page)"},
        ],
    })
    base = environment.parsed_options.web_base_path or None
    blueprint = Blueprint("tfs", __name__, url_prefix=base)

    @blueprint.route("/tfs/summary.csv")
    @web_ui.auth_required_if_enabled
    def tfs_summary_csv():
        response = make_response(summary_csv(environment))
        response.headers["Content-Type"] = "text/csv"
        response.headers["Content-Disposition"] = "attachment;filename=tfs_summary.csv"
        return response

    @blueprint.route("/tfs/fps")
    @web_ui.auth_required_if_enabled
    def tfs_fps_chart():
        m = meter(environment)
        page = ('<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">'
                "<title>TFS FPS</title></head><body style=\"font-family:sans-serif\">"
                f"<h2>FPS over time</h2><p>Current FPS: <b id=\"current-fps\">{m.current(report.AGGREGATED):.1f}</b> "
                f"(frames/s over the last {CURRENT_WINDOW_S:g} s; refreshed every 2 s)</p>"
                f"{fps_svg(m.chart)}</body></html>")
        return Response(page, mimetype="text/html")

    web_ui.app.register_blueprint(blueprint)

    @web_ui.app.before_request
    def check_swarm_form():
        if request.endpoint != SWARM_ENDPOINT or request.method != "POST":
            return None
        if web_ui.web_login and not _logged_in():
            return None  # Locust's login check answers; no file checks for strangers
        values, message = check_form(environment, request.form)
        if message is not None:
            logger.error("error: %s", message)
            return jsonify({"success": False, "message": f"error: {message}", "host": environment.host})
        for dest, value in values.items():  # includes fields Locust does not recognise (see _ui_field_name)
            setattr(environment.parsed_options, dest, value)
        return None

    @web_ui.app.after_request
    def add_tfs_figures(response):
        if request.endpoint == STATS_ENDPOINT and response.status_code == 200:
            data = json.loads(response.get_data(as_text=True))
            data["extended_stats"] = [{"key": TAB_KEY, "data": table_rows(environment)}]
            response.set_data(json.dumps(data))
        elif request.endpoint == REPORT_ENDPOINT and response.status_code == 200:
            data = report.summary(hooks.state(environment).recorder)
            section = report_section(data, meter(environment).chart, hooks.state(environment).notes)
            response.set_data(insert_section(response.get_data(as_text=True), section))
        return response


@events.init.add_listener
def _on_init(environment, runner=None, web_ui=None, **kwargs):
    options = environment.parsed_options
    if not _ours(options) or runner is None or isinstance(runner, WorkerRunner):
        return
    if web_ui is None and not options.html_file:
        return
    _environments.add(environment)
    gevent.spawn(_sample_forever, environment)
    if web_ui is not None:
        _extend_web_ui(environment, web_ui)


@events.quit.add_listener
def _on_quit(**kwargs):
    """Add the TFS section to the ``--html`` file Locust wrote (final figures, as in the console summary)."""
    for environment in list(_environments):
        path = environment.parsed_options.html_file
        if not path or not os.path.isfile(path):
            continue
        s = hooks.state(environment)
        data = s.final[0] if s.final else report.summary(s.recorder)
        with open(path, encoding="utf-8") as f:
            page = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(insert_section(page, report_section(data, meter(environment).chart, s.notes)))
