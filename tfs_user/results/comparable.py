"""Which JSON summaries a comparison takes (``tfs_user.results.compare``): ours, of this format, of the same test.

A file that is not our JSON, comes from before comparisons, or measured another test (``SAME_LOAD``:
protocol, transport, model, batch size, users, arrival rate, step plan) is refused with one line
(CompareError: the caller prints it and exits 2). What may differ (``NOTICE_KEYS``: tool version,
host ...) or makes the figures suspect (a load generator that was the bottleneck) is a notice line.
A baseline of several runs: every baseline file against the new run, each named in the line, and each
run once.
"""

import json

from tfs_user.results.summary_keys import FORMAT_NAME, FORMAT_VERSION

SAME_LOAD = ("protocol", "transport", "model", "batch_size", "users", "arrival_rate", "sweep", "step_time")
"""``run`` keys that must be equal: two runs with another of these measure different things."""
NOTICE_KEYS = ("tool_version", "host", "cpu_count", "processes", "workers")
"""``run`` keys that may differ: a notice, not a refusal."""


class CompareError(ValueError):
    """Two summaries that cannot be compared (one line: which value, what was expected)."""


def check_document(doc, label):
    """Raise CompareError unless ``doc`` is a JSON summary this version can compare; ``label`` names it."""
    if not isinstance(doc, dict) or "rows" not in doc:
        raise CompareError(f"{label} is not a tfs-locust JSON summary (no 'rows'); expected a file "
                           "written by --json-summary")
    fmt = doc.get("format")
    if not isinstance(fmt, dict) or fmt.get("name") != FORMAT_NAME:
        raise CompareError(f"{label} is a JSON summary from before baseline comparisons (no histograms or windows); "
                           "expected one written by this version: run the baseline again")
    if fmt.get("version") != FORMAT_VERSION:
        raise CompareError(f"{label} has summary format version {fmt.get('version')!r}; expected {FORMAT_VERSION}")


def check_same_run(base_run, new_run, where="in the baseline"):
    """Raise CompareError when the runs measured different things (``SAME_LOAD``); return notice lines for the
    ``NOTICE_KEYS`` that differ. ``where`` names the baseline in the lines (``in the baseline 'b.json'``)."""
    for key in SAME_LOAD:
        if base_run.get(key) != new_run.get(key):
            raise CompareError(f"cannot compare: {key} is {new_run.get(key)!r} in this run but {base_run.get(key)!r} "
                               f"{where}; expected the same {key} (compare runs of the same test)")
    return [f"Notice: {key} differs: {new_run.get(key)!r} here, {base_run.get(key)!r} {where}"
            for key in NOTICE_KEYS if base_run.get(key) != new_run.get(key)]


def labels_of(count, names=None):
    """How lines name each of ``count`` baseline runs: ``the baseline`` for one (as ever), else ``the baseline
    'a.json'`` by ``names`` (file names) or ``baseline run 2`` by position."""
    if count == 1:
        return ["the baseline"]
    return [f"the baseline {name!r}" for name in names] if names else [f"baseline run {i + 1}" for i in range(count)]


def _fingerprint(doc):
    """What no two runs share: every row's and step's histogram and windows (wall-clock times)."""
    return json.dumps([[part.get(key) for part in (*doc["rows"], *(doc.get("steps") or []))]
                       for key in ("hdr_histogram", "windows")], sort_keys=True)


def check_runs(base_docs, new_doc=None, names=None, new_run=None):
    """Raise CompareError unless every baseline document and ``new_doc`` can be compared (``check_document``,
    ``check_same_run`` of each baseline against the new run) and, with several, each run is there once (a
    run counted twice would narrow the spread); return the notice lines (``NOTICE_KEYS``, load generator).
    Before a run, without its summary: ``new_run``, what it will run (``summary_keys.run_facts``)."""
    labels = labels_of(len(base_docs), names)
    for doc, label in zip(base_docs, labels):
        check_document(doc, label)
    runs = list(zip(base_docs, labels))
    if new_doc is not None:
        check_document(new_doc, "the new run")
        new_run = new_doc.get("run", {})
        runs.append((new_doc, "the new run"))
    for doc, label in zip(base_docs, labels):
        check_same_run(doc.get("run", {}), new_run, f"in {label}")
    if len(base_docs) > 1:
        seen = {}
        for doc, label in runs:
            first = seen.setdefault(_fingerprint(doc), label)
            if first != label:
                raise CompareError(f"{first} and {label} hold the same run; expected each run once "
                                   "(a run counted twice narrows the baseline's spread)")
    lines = []
    for key in NOTICE_KEYS:  # one line per key, however many baseline runs differ in it
        differ = [f"{doc.get('run', {}).get(key)!r} in {label}" for doc, label in zip(base_docs, labels)
                  if doc.get("run", {}).get(key) != new_run.get(key)]
        if differ:
            lines.append(f"Notice: {key} differs: {new_run.get(key)!r} here, {', '.join(differ)}")
    lagged = [doc.get("loop_lag_p99_ms", 0) for doc in base_docs if doc.get("loop_lag_warning")]
    if len(base_docs) > 1 and lagged:  # one line for the baseline, however many of its runs
        lines.append(f"Notice: in {len(lagged)} of the {len(base_docs)} baseline runs the load generator was a bottleneck "
                     f"(event-loop lag p99 {min(lagged):.3f} to {max(lagged):.3f} ms): their latencies include that "
                     "wait, so does the change")
    for label, doc in ((*zip(labels, base_docs),) if len(base_docs) == 1 else ()) + (("this run", new_doc or {}),):
        if doc.get("loop_lag_warning"):
            lines.append(f"Notice: in {label} the load generator was a bottleneck (event-loop lag p99 "
                         f"{doc.get('loop_lag_p99_ms', 0):.3f} ms): its latencies include that wait, so does the change")
    return lines
