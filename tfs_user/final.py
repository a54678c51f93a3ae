"""The run's end (local runner or master): the final figures, the verdict and the files at Locust's ``quitting``
(after the workers' last reports: ``tfs_user.control``), the printed summary and the HTML report's section at
``quit``, and the demo server's stop."""

import os

from tfs_user import models
from tfs_user.results import report
from tfs_user.capacity import wiring as capacity
from tfs_user.demo import process as demo_process
from tfs_user.results import baseline, summary_keys
from tfs_user.transport.endpoints import channel_facts
from tfs_user.results.verdict import decide, slo_violations


def on_quitting(run):
    """Locust's ``quitting`` (``run``: the TfsRun): the final figures, CSV/JSON files and the exit code (verdict)."""
    if run.status is not None:
        run.status.kill()
    run.probe.stop()
    # Ctrl-C reaches here with the test still running: stop it first so that the
    # workers' last reports arrive before the figures are final.
    run.environment.runner.quit()
    environment = run.environment
    runner = environment.runner
    data = report.summary(run.recorder)
    summary_keys.add_to_rows(data, run.recorder)  # histograms and windows: for a later comparison
    data["run"] = summary_keys.run_facts_of(run, workers=run.workers_at_start if run.master else None)
    lost = run.control.lost
    data["lost_workers"] = sorted(lost)
    data["counted_from"] = run.counted_from
    data.update(channel_facts(run.settings_by_class.values()))
    if lost:
        run.notes.append(f"Lost workers: {', '.join(f'{w} (index {i})' for w, i in sorted(lost.items()))}; "
                         "figures include what they reported before they were lost")
    if run.counted_from:
        run.notes.append(run.counted_from)
    capacity_final = capacity.finish(run.capacity)  # steps, open loop: JSON keys and summary lines
    if capacity_final is not None:
        data.update(capacity_final[0])
        run.notes.extend(capacity_final[1])
        capacity.add_to_model_rows(data)  # --models in open loop: each model's row its own delivered rate
    run.notes.extend(run.control.cut_short)  # what a second Ctrl-C left out
    server = run.server.test_entries(data)
    if server is not None:
        data["server"] = server
        run.notes.extend(run.server.lines(server))
    verdict = decide(data, run.options, could_not_run=bool(run.control.errors) or environment.process_exit_code == 2,
                     any_failure=bool(runner.stats.errors or runner.exceptions),
                     exit_code_on_error=run.options.exit_code_on_error,
                     violations=_violations(run, data),  # a sweep: SLOs per step; --models: each model's too
                     interrupted=run.control.hurried)
    if run.options.baseline:
        verdict = baseline.judge(run, data, verdict)  # a worse figure: exit 3
    environment.process_exit_code = verdict.exit_code  # Locust exits with it
    if run.options.csv_prefix:
        report.write_csv(f"{run.options.csv_prefix}_tfs.csv", data)
        if server is not None:
            run.server.write_csv(f"{run.options.csv_prefix}_tfs_server.csv", data)
    if run.options.json_summary:
        report.write_json(run.options.json_summary, data, verdict)
    run.final = (data, verdict)


def on_quit(run):
    """Locust's ``quit``: print the summary, add our section to the HTML report, stop the demo server."""
    if run.final is not None:
        data, verdict = run.final
        print(report.format_summary(data, run.notes + list(verdict.violations)), file=run.options.out, flush=True)
        path = run.options.html_file
        if path and os.path.isfile(path):  # Locust wrote it; add our section with the final figures
            from tfs_user.web.html_report import add_to_file

            add_to_file(path, data, run.meter.chart, run.notes, capacity.charts(run.capacity))
    run.demo = demo_process.stop(run.demo, stream=run.options.out)


def _violations(run, data):
    """A sweep's SLO lines (per step), or with ``--models`` SLOs the run's and each model's own; None = the run's."""
    violations = capacity.sweep_violations(run.capacity)
    if violations is None and run.model_slos:
        violations = slo_violations(data, run.options) + models.model_slo_violations(data, run.model_slos)
    return violations
