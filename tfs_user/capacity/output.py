"""The final output of a capacity run (master / local runner, at quitting): step rows, console lines,
``PREFIX_tfs_steps.csv``, the JSON keys (``steps``, ``best_step``, ``sweep_stopped_after``,
``open_loop``), the ``--plot`` page, and the sweep's SLO verdict.
"""

from tfs_user.capacity import steps as steps_mod, plans as sweep_mod, trace_start
from tfs_user.capacity.arrivals import DispatchStats
from tfs_user.capacity import lanes
from tfs_user.capacity.lanes import no_user_warning
from tfs_user.loop_lag import figures as lag_figures
from tfs_user.results.report import plural, target_text
from tfs_user.results.summary_keys import exact_keys
from tfs_user.server_metrics.entries import step_columns
from tfs_user.stats import LatencyStats


def finish(c):
    """Master/local at quitting: the final figures as a dict for the JSON (``steps``, ``open_loop``,
    ``best_step``), and the lines for the console; writes the steps CSV and the plot."""
    if c is None or c.config is None or not c.config.active:
        return None
    for greenlet in c.greenlets:
        greenlet.kill(block=False)
    config = c.config
    options = c.environment.parsed_options
    out = {}
    lines = []
    rows = []
    if config.sweep is not None:
        last = c.stopped_after or max(c.entered, max(c.steps.steps, default=0))
        rows = steps_mod.step_rows(c.plan, c.steps, config.slo, last_index=last, edges=c.step_edges, judged=c.verdicts)
        for row in rows:  # JSON only: the steps CSV keeps its columns
            row["lost_workers"] = sorted(w for w, (_, index) in c.lost.items() if index == row["step"])
            add_server(c, row)
            stats = c.steps.steps.get(row["step"])
            row.update(exact_keys(stats.latency if stats else LatencyStats(windowed=True)))
        best_line = sweep_mod.best_line(rows, config.slo)
        best = sweep_mod.best_step(rows)
        out["steps"] = steps_mod.json_steps(rows)
        out["best_step"] = best["step"] if best else None
        out["sweep_stopped_after"] = c.stopped_after
        lines.append(steps_mod.format_steps(rows, best_line))
        if c.stopped_after is not None:
            lines.append(f"Sweep ended after step {c.stopped_after} of {len(c.plan)}: it missed the SLO")
        out["between_steps_requests"] = between = c.steps.between
        if between:
            lines.append(f"{between} measured request{'s' if between != 1 else ''} went out between sweep steps "
                         "(while a step was judged, or before a worker heard of the next one): in the run's figures, "
                         "in no step's")
        out["after_verdict_requests"] = late = after_verdict(c, rows)
        if late:
            lines.append(f"{late} request{'s' if late != 1 else ''} of a step completed after the step was judged "
                         "(beyond its 0.5 s grace): in the run's figures, not in the step's row as judged")
        lines.extend(lost_lines(c))
        lines.extend(f"Warning: step {row['step']}: {e['warning']}" for row in rows for e in row["server"].values()
                     if e["warning"])
        if options.csv_prefix:
            steps_mod.write_steps_csv(f"{options.csv_prefix}_tfs_steps.csv", rows)
    if config.open_loop:
        summary = open_loop_summary(c)
        out["open_loop"] = summary
        lines.append(format_open_loop(summary))
        if summary["trace_cut_short"]:
            lines.append(cut_short_line(summary))
        if summary["trace_start"] is not None:
            lines.append(trace_start.line(summary["trace_start"]))
        lag = lag_figures(c.run.recorder.loop_lag)["loop_lag_p99_ms"]
        warning = c.dispatch.warning(c.config.remedy, lag)
        if warning:
            lines.append(warning)
        if not config.lanes.per_model and not summary["sent"] and summary["unsent"]:  # no user took a slot
            lines.append(no_user_warning(config.lanes.models[0] or "of this run", summary["unsent"]))
        summary["models"] = model_summaries(c)
        for model, s in summary["models"].items():
            lines.append(format_model(model, s))
            stats = c.dispatches.get(lanes.class_name(model)) or DispatchStats()
            if not stats.sent and stats.unsent:
                lines.append(no_user_warning(model, stats.unsent))
            elif stats.warning(c.config.remedy, lag):
                lines.append(f"model {model}: {stats.warning(c.config.remedy, lag)}")
    if config.plot:
        from tfs_user.web import plot  # matplotlib: imported only when a plot is asked for
        plot.write_plot(config.plot, rows, [s for s in c.samples if s[2] is not None],
                        best_line=sweep_mod.best_line(rows, config.slo) if rows else None,
                        slo_p99_ms=config.slo.p99_ms)
        lines.append(f"Plot written to {config.plot}")
    c.final = (out, lines)
    return c.final


def after_verdict(c, rows):
    """How many requests (measured or warm-up) were recorded into a step after its row was judged."""
    count = 0
    for row in rows:
        stats = c.steps.steps.get(row["step"])
        if stats is not None and row["step"] in c.verdicts:
            count += stats.latency.requests + stats.warmup - row["requests"] - row["warmup_requests"]
    return count


def add_server(c, row, wait_s=None):
    """Fill a step row's ``server`` entries and ``server_*`` columns (``--server-metrics``); the row as it
    was when the step has no scrapes (not closed yet, no URLs). ``wait_s``: how long to wait for them."""
    by_url = c.run.server.step_entries(row, row["users"], wait_s=wait_s)
    if by_url:
        row["server"] = by_url
        row.update(step_columns(by_url))
    return row


def lost_lines(c):
    """Console notes: one line per lost worker naming the sweep step it was lost in."""
    return [(f"Worker {worker} (index {index}) was lost in step {step}; the step's figures include what it "
             "reported before" if step else f"Worker {worker} (index {index}) was lost before the first step")
            for worker, (index, step) in sorted(c.lost.items(), key=lambda item: (item[1][1], str(item[0])))]


def open_loop_summary(c):
    """Dict: target/achieved rates, sends never made (``unsent``), late sends, scheduling error, service-time
    percentiles (None = empty set)."""
    dispatch = c.dispatch.summary()
    service = c.service
    has = service.ok > 0
    lines = len(c.config.trace.times) if c.config.trace is not None else None
    return {
        "arrival": c.config.arrival if c.config.trace is None else "trace",
        "target_rps": c.config.target_rate or None,
        "trace_requests": lines,
        # the run stopped (Ctrl-C, -t) before every line of the trace fell due; None: no trace, or a looping one
        "trace_cut_short": (dispatch["sent"] + dispatch["unsent"] < lines
                            if lines is not None and not c.config.trace_loop else None),
        "sent": dispatch["sent"],
        "unsent": dispatch["unsent"],
        "sent_rps": dispatch["achieved_rps"],
        "late": dispatch["late"],
        "late_ratio": dispatch["late_ratio"],
        "late_p50_ms": dispatch["late_p50_ms"],
        "late_p99_ms": dispatch["late_p99_ms"],
        "late_max_ms": dispatch["late_max_ms"],
        "send_error_mean_ms": dispatch["send_error_mean_ms"],
        "send_error_p50_ms": dispatch["send_error_p50_ms"],
        "send_error_p99_ms": dispatch["send_error_p99_ms"],
        "service_mean_ms": service.sum_ms / service.ok if has else None,
        "service_p50_ms": service.percentile_ms(50) if has else None,
        "service_p90_ms": service.percentile_ms(90) if has else None,
        "service_p99_ms": service.percentile_ms(99) if has else None,
        "schedule_kept": c.dispatch.warning() is None,
        "trace_start": trace_start.summary(c),
    }


def model_summaries(c):
    """{model: dict} of a run with a schedule per model (else {}): its target (its share of the rate; a trace: its
    lines), sent, never sent, sent req/s, late and send error, as ``DispatchStats.summary`` gives them."""
    config = c.config
    rates = config.lanes.rates(config.target_rate) if config.trace is None else {}
    out = {}
    for key in config.lanes.keys if config.lanes.per_model else ():
        stats = c.dispatches.get(key) or DispatchStats()
        s = stats.summary()
        out[config.lanes.model_of(key)] = {
            "share": config.lanes.shares[config.lanes.keys.index(key)],
            "target_rps": rates.get(key) or None,
            "trace_requests": len(config.lanes.lines(key)) if config.trace is not None else None,
            **{name: s[name] for name in ("sent", "unsent", "late", "late_ratio", "late_p99_ms", "send_error_p50_ms",
                                          "send_error_p99_ms")},
            "sent_rps": s["achieved_rps"],
        }
    return out


def add_to_model_rows(data):
    """Each model's row of the JSON summary (``Predict MODEL``, not its parts) gets its open-loop figures
    (``open_loop.models``) under ``open_loop``."""
    models = (data.get("open_loop") or {}).get("models") or {}
    for row in data.get("rows", []):
        model = row["name"].split(" ", 1)[-1]
        if not row.get("part_of") and model in models:
            row["open_loop"] = models[model]


def format_model(model, s):
    target = (f"target {target_text(s['target_rps'])} req/s" if s["target_rps"] else
              plural(s["trace_requests"], "trace request") if s["trace_requests"] is not None else "target per step")
    return (f"Open loop, model {model} (share {s['share']:g}, {target}): sent {plural(s['sent'], 'request')} at "
            f"{_f(s['sent_rps'], 1)} req/s; fell due and never sent {s['unsent']}; late {s['late']}")


def cut_short_line(s):
    """The line of a trace the run stopped before its end: how many of its requests fell due, were sent."""
    due = s["sent"] + s["unsent"]
    return (f"Trace cut short: the run stopped when {due} of the trace's {s['trace_requests']} requests had fallen due "
            f"({s['sent']} sent, {s['unsent']} never sent); the other {s['trace_requests'] - due} were not due yet")


def trace_end_line(lines, sent, where=""):
    """The line a trace's replay ends the run with: how many of its requests fell due and how many were sent."""
    s = "s" if lines != 1 else ""
    if sent == lines:
        return f"the trace's {lines} request{s} fell due and {'were' if s else 'was'} sent{where}; ending the run"
    return f"the trace's {lines} request{s} fell due ({sent} sent, {lines - sent} never sent){where}; ending the run"


def _f(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_open_loop(s):
    target = f"target {target_text(s['target_rps'])} req/s" if s["target_rps"] else "target per step"
    return (f"Open loop ({s['arrival']}, {target}): sent {plural(s['sent'], 'request')} at {_f(s['sent_rps'], 1)} req/s; "
            f"fell due and never sent {s['unsent']}; late (no user was waiting when it fell due: all busy or the event "
            f"loop behind) {s['late']}"
            + (f" (p50 {_f(s['late_p50_ms'])} ms, p99 {_f(s['late_p99_ms'])} ms, max {_f(s['late_max_ms'])} ms)"
               if s["late"] else "")
            + f"; send error (actual minus scheduled send) p50 {_f(s['send_error_p50_ms'])} ms, p99 {_f(s['send_error_p99_ms'])} ms; latency is from the scheduled send time; "
            f"service time (from the actual send) p50 {_f(s['service_p50_ms'])} ms, p90 {_f(s['service_p90_ms'])} ms, "
            f"p99 {_f(s['service_p99_ms'])} ms")


def sweep_violations(c):
    """With a sweep and SLOs: the run passes when some step met them (one line if none did), else None
    (no sweep: the run-level SLO checks apply)."""
    if c is None or c.config is None or c.config.sweep is None or not c.config.slo.given or c.final is None:
        return None
    out, _ = c.final
    if out.get("best_step"):
        return []
    return ["SLO missed: no sweep step met the SLO"]


def live_rows(c):
    """Master/local while a sweep runs (and after): a row per step entered so far, as ``step_row`` gives it.

    A closed step shows its verdict row; the current step its figures so far (a master's grow with
    each worker report). After the run: the final rows. [] without a sweep.
    """
    if c is None or c.config is None or c.config.sweep is None:
        return []
    if c.final is not None and "steps" in c.final[0]:
        return c.final[0]["steps"]
    rows = []
    for step in c.plan[:c.entered]:
        row = c.verdicts.get(step.index)
        if row is not None and not row["server"]:  # closed: its server figures, once its scrapes are done
            add_server(c, row, wait_s=0)
        rows.append(row if row is not None else steps_mod.step_row(step, c.steps.steps.get(step.index), c.config.slo,
                                                                    c.step_edges.get(step.index)))
    return rows


def charts(c):
    """What the HTML report and web UI draw of a capacity run: dict ``rows`` (``live_rows``), ``samples``
    [(t s, FPS, p50 ms, p99 ms)], ``slo_p99_ms``, ``best_line`` (str or None); None when not a capacity run."""
    if c is None or c.config is None or not c.config.active:
        return None
    rows = live_rows(c)
    return {"rows": rows, "samples": [s for s in c.samples if s[2] is not None], "slo_p99_ms": c.config.slo.p99_ms,
            "best_line": sweep_mod.best_line(rows, c.config.slo) if rows and c.final is not None else None}
