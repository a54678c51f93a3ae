"""The verdict of a run: SLO checks and the process exit code, one table for CI.

| exit code | meaning |
|---|---|
| 0 | the run completed and every SLO given holds (failures allowed when ``--slo-max-fail-ratio`` is given) |
| 1 | requests failed and no ``--slo-max-fail-ratio`` was given (Locust's ``--exit-code-on-error``, default 1) |
| 2 | the run could not run: bad input, no server, a worker that could not start |
| 3 | an SLO was missed, or a figure is worse than ``--baseline`` (``tfs_user.results.baseline``) |
| 130 | a second Ctrl-C cut the end of the run short: requests in flight or workers' last reports may be missing |

Thresholds judge the exact figures, and a line that names a miss prints its figure with as many
decimals as it takes to read apart from the threshold (``apart``): "FPS 99.96 < 100", never
"FPS 100.0 < 100". Percentiles are whole microseconds (``tfs_user.stats``), so the 3 decimals
printed are the figure judged. A given fail-ratio SLO replaces Locust's any-failure rule. A latency or FPS SLO over zero
successful requests is missed. Ctrl-C and SIGTERM end the run like ``--run-time``: the figures so
far are final and the same table applies; a second Ctrl-C stops the waits of that end (``interrupted``: 130,
after 2). JSON ``passed`` is ``exit_code == 0``.
"""

from dataclasses import dataclass

OK, FAILURES, COULD_NOT_RUN, SLO_MISSED, INTERRUPTED = 0, 1, 2, 3, 130  # 130: 128 + SIGINT, as shells report it


@dataclass(frozen=True)
class Verdict:
    """``exit_code`` (table above), ``violations`` (one ``SLO missed: ...`` line each)."""

    exit_code: int
    violations: tuple = ()

    @property
    def passed(self):
        return self.exit_code == OK


MAX_DECIMALS = 9


def apart(value, threshold, decimals):
    """``value`` as text with at least ``decimals`` decimals, more (up to MAX_DECIMALS) until it no longer
    reads as ``threshold`` at the same precision; rounding keeps the order, so the text shows the miss."""
    for places in range(decimals, MAX_DECIMALS + 1):
        text = f"{value:.{places}f}"
        if float(text) != float(f"{threshold:.{places}f}"):
            return text
    return f"{value:.{MAX_DECIMALS}f}"


def slo_violations(data, options):
    """One line per missed threshold (``--slo-p99-ms``, ``--slo-min-fps``, ``--slo-max-fail-ratio``) of the
    Aggregated row of ``data`` (``report.summary``); ``options`` has the three thresholds (0/0/1 = off)."""
    total = data["rows"][-1]
    out = []
    if options.slo_p99_ms:
        if total["p99_ms"] is None:
            out.append("SLO missed: p99 latency: no successful requests")
        elif total["p99_ms"] > options.slo_p99_ms:
            out.append(f"SLO missed: p99 latency {apart(total['p99_ms'], options.slo_p99_ms, 3)} ms > "
                       f"--slo-p99-ms {options.slo_p99_ms:g}")
    if options.slo_min_fps:
        if not total["frames"]:
            out.append("SLO missed: FPS: no successful requests")
        elif total["fps"] < options.slo_min_fps:
            out.append(f"SLO missed: FPS {apart(total['fps'], options.slo_min_fps, 1)} < --slo-min-fps {options.slo_min_fps:g}")
    if options.slo_max_fail_ratio < 1:
        if total["fail_ratio"] is None:
            out.append("SLO missed: fail ratio: no measured requests")
        elif total["fail_ratio"] > options.slo_max_fail_ratio:
            out.append(f"SLO missed: fail ratio {apart(total['fail_ratio'], options.slo_max_fail_ratio, 4)} > "
                       f"--slo-max-fail-ratio {options.slo_max_fail_ratio:g}")
    return out


def decide(data, options, could_not_run=False, any_failure=False, exit_code_on_error=FAILURES, violations=None,
           interrupted=False):
    """The Verdict of a run: ``could_not_run`` (a fatal error) -> 2; ``interrupted`` (a second Ctrl-C) -> 130; an SLO
    missed -> 3; ``any_failure``
    (Locust's rule: a failed request or a task exception) without a fail-ratio SLO -> ``exit_code_on_error``.
    ``violations``: the SLO lines when they are not the run's own (a sweep judges its steps), else None."""
    violations = tuple(slo_violations(data, options) if violations is None else violations)
    if could_not_run:
        return Verdict(COULD_NOT_RUN, violations)
    if interrupted:
        return Verdict(INTERRUPTED, violations)
    if violations:
        return Verdict(SLO_MISSED, violations)
    if any_failure and options.slo_max_fail_ratio >= 1:
        return Verdict(exit_code_on_error, violations)
    return Verdict(OK, violations)
