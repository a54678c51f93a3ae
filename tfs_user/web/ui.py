"""FPS and exact latency in Locust's web UI and HTML report; readable errors for bad form values.

Only Locust 2.47's documented extension points are used (docs "Extending the web UI",
Locust's ``examples/extend_web_ui.py``), on the local runner or the master:

- a **TFS sweep steps** tab: one row per sweep step entered so far, the columns of
  ``PREFIX_tfs_steps.csv``, updated with the same polling (empty without ``--sweep``);
- a **TFS tab** (``web_ui.template_args``: ``extended_tabs``/``extended_tables``) whose rows an
  ``app.after_request`` handler adds as ``extended_stats`` to Locust's ``/stats/requests`` JSON,
  which the UI polls every 2 s while a test runs, like its own tables: per request name and
  ``Aggregated``, current FPS (last CURRENT_WINDOW_S seconds), FPS and req/s over the measured
  window, min/mean/p50/p90/p95/p99/p99.9/max in ms (microsecond resolution);
- a **TFS server metrics** tab (``--server-metrics``): per URL the server's own count and request,
  queue and inference times since the test started, scraped every few seconds
  (``tfs_user.server_window``);
- two links in the **Download Data** tab (``extended_csv_files``): the summary as CSV
  (``tfs/summary.csv``) and an **FPS-over-time chart** page (``tfs/fps``). Locust's Charts tab
  draws a fixed set of series and its tabs can only hold tables, so the chart is a page of its own;
- **start-form checks**: an ``app.before_request`` handler on ``/swarm`` parses the TFS fields
  with the command line's own parsers and validates them (``Settings``, the numpy file) before
  the run starts. A bad value gets the answer Locust gives for its own bad form values,
  ``{"success": false, "message": "error: ..."}``, shown in red under the form, and the same
  line in the Logs tab. (Without this, ``abc`` ended in an HTTP 500 that the UI shows as
  "An unknown error occurred.", and ``0`` or a missing file started a run that stopped at once.)
  A ``--models`` posted on the form makes its user classes there (``change_models``), before Locust's
  handler dispatches users by class name (a master does so before ``test_start``); refused with Locust's
  class picker, whose page lists the classes of start-up. The mixes (``--models``, batch sizes, data files,
  arrivals, a trace) changed while a test runs are refused: they were made when it started.
- the **HTML report** (``--html FILE`` and the UI's "Download Report"): Locust renders it from a
  fixed set of arguments with no extension hook, so a plain HTML section (the summary table and
  the FPS chart) is inserted before ``</body>``: by an ``after_request`` handler on
  ``/stats/report`` and, for ``--html``, into the written file on the ``quit`` event (the
  figures are then the final ones of the console summary). Its charts are matplotlib PNGs
  (``tfs_user.web.plot``): FPS over time, and for sweeps/open loop latency against FPS per step,
  FPS and latency over time, and the steps table.

The run object (``tfs_user.run``) calls ``extend`` on the local runner or master when there is a
web UI; the FPS meter, form checks and report section are modules of their own.
"""

import json
import logging
import time

from flask import Blueprint, Response, before_render_template, jsonify, make_response, request
from flask_login import current_user
from werkzeug.datastructures import ImmutableMultiDict

from locust.runners import STATE_RUNNING, STATE_SPAWNING

from tfs_user import models
from tfs_user.capacity import wiring as capacity, steps as steps_mod
from tfs_user.results import report
from tfs_user.results.fps_meter import CURRENT_WINDOW_S
from tfs_user.startup import no_users_problem
from tfs_user.web.html_report import fps_chart, insert_section, report_section
from tfs_user.web.form import check_form, form_fields, running_change, without_empty_secrets
from tfs_user.web.tab import SERVER_COLUMNS, TABLE_COLUMNS, server_rows, table_rows

logger = logging.getLogger(__name__)

TAB_KEY = "tfs"
STEPS_TAB_KEY = "tfs_steps"
SERVER_TAB_KEY = "tfs_server"
ROWS_CACHE_S = 2.0
"""Seconds the TFS tab's rows are reused (Locust caches /stats/requests for 2 s too)."""
CHART_CACHE_S = 10.0
"""Seconds the chart page's FPS image is reused: drawing it (matplotlib) holds the event loop about 0.1 s."""

# Locust's request endpoints (blueprint "locust", view function names in locust/web.py)
STATS_ENDPOINT = "locust.request_stats"
SWARM_ENDPOINT = "locust.swarm"
REPORT_ENDPOINT = "locust.stats_report"

STEPS_COLUMNS = [(key.replace(".", ""), title) for title, key in steps_mod.STEP_COLUMNS]
"""(key, title) of the sweep steps tab: the columns of ``PREFIX_tfs_steps.csv``."""


def steps_rows(run):
    """The steps tab's rows: one per sweep step entered so far (``capacity_output.live_rows``), cells as in
    the steps CSV (ms to 3 decimals, empty for an empty set's statistic, "yes"/"no" within the SLO)."""
    return [{key.replace(".", ""): steps_mod._cell(row.get(key)) for _, key in steps_mod.STEP_COLUMNS}
            for row in capacity.live_rows(run.capacity)]


def _logged_in():
    """Whether the request comes from a logged-in user (``--web-login``); False when login is not set up."""
    try:
        return bool(current_user.is_authenticated)
    except Exception:  # no user_loader / secret key: Locust's own login check will answer
        return False


def _label_form_fields(web_ui):
    """Start form: our fields first, in OPTIONS order, labelled as in OPTIONS (``tfs_user.web.form``).

    Locust writes the fields into the page with the templates' ``tojson``, which sorts keys, and
    the page makes each label from its key; so the keys become labels and the templates' JSON
    keeps the order (Locust's JSON responses are left as they are).
    """
    policies = web_ui.app.jinja_env.policies
    policies["json.dumps_kwargs"] = {**policies.get("json.dumps_kwargs", {}), "sort_keys": False}

    def relabel(app, template, context, **extra):
        args = context.get("template_args")
        if template.name == "index.html" and isinstance(args, dict) and "extra_options" in args:
            args["extra_options"] = form_fields(args["extra_options"])

    before_render_template.connect(relabel, web_ui.app, weak=False)


def change_models(run, web_ui, before):
    """Start form: make the user classes of a ``--models`` posted different from ``before`` (the value the current
    classes were made from; None: make them again whatever it was), on the local runner or master before Locust's
    /swarm handler dispatches users (a master hands out users by class name before ``test_start``). Raises
    ValueError (one line) when Locust's class picker lists the classes of start-up on the page (a change while a
    test runs was refused before: ``form.running_change``)."""
    environment = run.environment
    text = environment.parsed_options.models
    if text == before:
        return
    made = f"--models {before!r}" if before else "one model (no --models)"
    if before is not None and web_ui.userclass_picker_is_active:
        raise ValueError(f"--models {text!r} cannot be changed on the start form with --class-picker (the page lists "
                         f"the user classes of {made}); give --models when starting locust")
    run.model_slos = models.apply(environment, text)


def extend(run, web_ui, master=False):
    """Add the TFS tab, downloads, chart page, form checks and report section to ``web_ui`` for ``run``."""
    environment = run.environment
    cached = [0.0, None]  # (monotonic time, rows): computing percentiles costs the event loop a few ms
    chart = [float("-inf"), ""]  # (monotonic time, chart HTML) of the chart page
    _label_form_fields(web_ui)
    from tfs_user.web import plot  # noqa: F401  (matplotlib loads now, about 0.7 s, not during a test's first chart)

    def fps_chart_html():
        if time.monotonic() - chart[0] >= CHART_CACHE_S:
            chart[:] = [time.monotonic(), fps_chart(run.meter.chart)]
        return chart[1]

    def rows():
        if cached[1] is None or time.monotonic() - cached[0] >= ROWS_CACHE_S:
            cached[:] = [time.monotonic(), (table_rows(run), server_rows(run.server.live_entries()))]
        return cached[1]

    web_ui.template_args.update({
        "extended_tabs": [{"title": "TFS FPS & latency", "key": TAB_KEY},
                          {"title": "TFS sweep steps", "key": STEPS_TAB_KEY},
                          {"title": "TFS server metrics", "key": SERVER_TAB_KEY}],
        "extended_tables": [{"key": TAB_KEY, "structure": [{"key": k, "title": t} for k, t in TABLE_COLUMNS]},
                            {"key": STEPS_TAB_KEY, "structure": [{"key": k, "title": t} for k, t in STEPS_COLUMNS]},
                            {"key": SERVER_TAB_KEY, "structure": [{"key": k, "title": t} for k, t in SERVER_COLUMNS]}],
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
        response = make_response(report.csv_text(report.summary(run.recorder)))
        response.headers["Content-Type"] = "text/csv"
        response.headers["Content-Disposition"] = "attachment;filename=tfs_summary.csv"
        return response

    @blueprint.route("/tfs/fps")
    @web_ui.auth_required_if_enabled
    def tfs_fps_chart():
        page = ('<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">'
                "<title>TFS FPS</title></head><body style=\"font-family:sans-serif\">"
                f"<h2>FPS over time</h2><p>Current FPS: <b id=\"current-fps\">{run.meter.current(report.AGGREGATED):.1f}</b> "
                f"(frames/s over the last {CURRENT_WINDOW_S:g} s; refreshed every 2 s, the chart every "
                f"{CHART_CACHE_S:g} s)</p>{fps_chart_html()}</body></html>")
        return Response(page, mimetype="text/html")

    web_ui.app.register_blueprint(blueprint)

    from locust.argument_parser import ui_extra_args_dict

    secret_dests = {dest for dest, field in ui_extra_args_dict().items() if field.get("is_secret")}  # anyone's

    @web_ui.app.before_request
    def check_swarm_form():
        if request.endpoint != SWARM_ENDPOINT or request.method != "POST":
            return None
        if web_ui.web_login and not _logged_in():
            return None  # Locust's login check answers; no file checks for strangers
        if run.demo is not None and "host" in request.form and not request.form["host"].strip():
            form = request.form.copy()  # an empty host on a --demo-server run is the demo server, not localhost:9000
            form["host"] = run.demo.address
            request.form = ImmutableMultiDict(form)  # Locust's swarm reads it just after this hook
        # the page shows secrets empty: one posted back empty keeps its value, for Locust's handler too
        request.form = ImmutableMultiDict(without_empty_secrets(request.form.items(multi=True), secret_dests))
        values, message = check_form(environment, request.form, master=master)
        if message is not None:
            logger.error("error: %s", message)
            return jsonify({"success": False, "message": f"error: {message}", "host": environment.host})
        options = environment.parsed_options
        if environment.runner.state in (STATE_RUNNING, STATE_SPAWNING):
            message = running_change(values, options)
            if message is not None:
                logger.error("error: %s", message)
                return jsonify({"success": False, "message": f"error: {message}", "host": environment.host})
        previous = dict(vars(options))
        for dest, value in values.items():  # includes fields Locust does not recognise (see ui_field_name)
            setattr(options, dest, value)
        try:  # users as Locust will read them from the form just after this hook
            options.num_users = int(request.form.get("user_count", options.num_users))
        except (TypeError, ValueError):
            pass  # Locust answers a bad user count itself
        try:  # --models (user classes) and a sweep or open loop typed into the form, before Locust starts
            change_models(run, web_ui, previous.get("models", ""))
            capacity.configure(run.capacity, environment.runner)
            running = environment.runner.state in (STATE_RUNNING, STATE_SPAWNING)  # an edit may scale to 0, as Locust's
            problem = None if running else no_users_problem(run, "Number of users")
            if problem:
                raise ValueError(problem)
        except ValueError as e:
            vars(options).clear()
            vars(options).update(previous)
            change_models(run, web_ui, None)  # the classes of the options as they were
            capacity.configure(run.capacity, environment.runner)  # the load shape of the options in force again
            logger.error("error: %s", e)
            return jsonify({"success": False, "message": f"error: {e}", "host": environment.host})
        return None

    @web_ui.app.after_request
    def add_tfs_figures(response):
        if request.endpoint == STATS_ENDPOINT and response.status_code == 200:
            data = json.loads(response.get_data(as_text=True))
            figures, server = rows()
            data["extended_stats"] = [{"key": TAB_KEY, "data": figures}, {"key": STEPS_TAB_KEY, "data": steps_rows(run)},
                                      {"key": SERVER_TAB_KEY, "data": server}]
            response.set_data(json.dumps(data))
        elif request.endpoint == REPORT_ENDPOINT and response.status_code == 200:
            data = report.summary(run.recorder)
            data["server"] = run.server.live_entries()
            section = report_section(data, run.meter.chart, run.notes, capacity.charts(run.capacity))
            response.set_data(insert_section(response.get_data(as_text=True), section))
        return response
