"""``--baseline FILE.json`` in a run: check the files before the test, compare at the end, and the exit code.

``--baseline`` names one JSON summary or several: a comma-separated list, the option repeated, or a
pattern such as ``main/*.json`` (``compare_cli.baseline_paths``); several make a baseline of several runs
(``tfs_user.results.baseline_runs``). Before a headless test (``check_before_start``): each file must be a
JSON summary of this version and of the same test (protocol, transport, each model with its batch sizes,
data mix and share, users, closed or open loop: arrival kind, rate or trace; step plan), each run once,
else one line naming the file and exit 2 before any request. At the end
(``judge``): the comparison (``tfs_user.results.compare``) goes into the JSON summary (key ``baseline``)
and under the console summary; each worse figure adds a ``Worse than baseline: ...`` line to the verdict
and makes the exit code 3, as a missed SLO does (2, a run that could not run, still wins).
"""

from tfs_user.results import compare
from tfs_user.results.compare_cli import read_baseline
from tfs_user.results.summary_keys import run_facts_of
from tfs_user.results.verdict import COULD_NOT_RUN, SLO_MISSED, Verdict


def thresholds(options):
    """{figure name: float or None} from RunOptions.baseline_thresholds."""
    given = dict(options.baseline_thresholds)
    return {f.name: compare.parse_threshold(given.get(f.name, f"{f.default:g}")) for f in compare.FIGURES}


def check_before_start(run):
    """Raise CompareError when ``--baseline`` names a file that cannot be compared with this run."""
    docs, paths = read_baseline([run.options.baseline], "--baseline")
    compare.check_runs(docs, names=paths, new_run=run_facts_of(run))


def judge(run, data, verdict):
    """Compare ``data`` (the run's summary, with ``run`` and steps) with ``--baseline``; store the comparison in
    ``data["baseline"]``, add its table to ``run.notes``; return the Verdict with the worse lines added."""
    try:
        docs, paths = read_baseline([run.options.baseline], "--baseline")
        comparison = compare.compare(docs, data, thresholds(run.options), names=paths)
    except compare.CompareError as e:
        data["baseline"] = {"file": run.options.baseline, "error": str(e)}
        return Verdict(COULD_NOT_RUN, (*verdict.violations, f"error: {e}"))
    data["baseline"] = dict(file=run.options.baseline, files=paths, **comparison.to_json())
    run.notes.append(compare.format_table(comparison))
    worse = tuple(comparison.worse_lines())
    if not worse:
        return verdict
    return Verdict(max(verdict.exit_code, SLO_MISSED) if verdict.exit_code == COULD_NOT_RUN else SLO_MISSED,
                   (*verdict.violations, *worse))
