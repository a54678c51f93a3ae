"""Which JSON summaries a comparison takes (``tfs_user.results.compare``): ours, of this format, of the same test.

A file that is not our JSON, comes from before comparisons, or measured another test (``SAME_LOAD``:
protocol, transport, each model with its batch sizes, data mix and share, users, closed or open loop and
its arrival kind, rate or trace, step plan) is refused with one line naming the key and both values
(CompareError: the caller prints it and exits 2). A summary of format version 2 (before ``run`` named
the whole load) is read where it can tell: a closed loop or an open loop at a rate, of one user class
without a mix; a trace run, a mix or several classes of version 2 is refused (run the baseline again).
What may differ (``NOTICE_KEYS``: tool version, host, mix seed ...) or makes the figures suspect (a load
generator that was the bottleneck) is a notice line. A baseline of several runs: every baseline file
against the new run, each named in the line, and each run once.
"""

import json

from tfs_user.results.summary_keys import CLOSED_LOOP, FORMAT_NAME, FORMAT_VERSION

SAME_LOAD = ("protocol", "transport", "models", "users", "arrival", "arrival_rate", "trace", "trace_speedup",
             "trace_loop", "sweep", "step_time")
"""``run`` keys that must be equal: two runs with another of these measure different things (``models``: each
user class's ``MODEL_KEYS``; ``trace``: its requests and digest, not its file name)."""
MODEL_KEYS = ("batch_size", "data_mix", "share")
"""Keys of a ``run["models"]`` entry that must be equal (its ``model`` names it; ``mix_seed`` is a notice)."""
NOTICE_KEYS = ("tool_version", "host", "cpu_count", "processes", "workers", "mix_seed")
"""``run`` keys that may differ: a notice, not a refusal (another ``mix_seed``: another sequence of the same mix)."""
OLD_VERSION = 2
"""The format version still read (``run_of``)."""


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
    if fmt.get("version") not in (OLD_VERSION, FORMAT_VERSION):
        raise CompareError(f"{label} has summary format version {fmt.get('version')!r}; expected {FORMAT_VERSION} "
                           "(or 2): compare it with the tfs-locust version that wrote it")


def run_of(doc, label):
    """The ``run`` facts of a checked summary (``check_document``). Version 2 did not record the whole load; its
    new keys come from what it holds (``open_loop``, part rows) where that tells, else CompareError (one line)."""
    run = doc.get("run") or {}
    if doc["format"].get("version") != OLD_VERSION:
        return run
    arrival = (doc.get("open_loop") or {}).get("arrival")
    unknown = ("a trace run (which trace, at what speed-up, is not in it)" if arrival == "trace" else
               "a batch-size or data mix (its weights are not in it)" if any(r.get("part_of") for r in doc["rows"]) else
               "several user classes (their models and shares are not in it)" if (run.get("user_classes") or 1) > 1 else
               None)
    if unknown:
        raise CompareError(f"{label} is a summary of format version 2 of {unknown}; expected version {FORMAT_VERSION}: "
                           "run the baseline again with this version")
    model = {"model": run.get("model"), "batch_size": str(run.get("batch_size")), "data_mix": "", "share": 1.0,
             "mix_seed": None}
    return dict(run, models=[model], mix_seed=None, arrival=arrival or CLOSED_LOOP, trace=None, trace_speedup=None,
                trace_loop=None)


def _trace_text(trace):
    """A ``run["trace"]`` as the refusal prints it: ``'my.trace' (200 requests, sha256 1a2b3c4d5e6f)``, or none."""
    if not trace:
        return "none"
    return f"{trace.get('file')!r} ({trace.get('requests')} requests, sha256 {str(trace.get('sha256'))[:12]})"


def _model_order(entry):
    return tuple(str(entry.get(key)) for key in ("model", *MODEL_KEYS))


def load_difference(base_run, new_run):
    """The first ``SAME_LOAD`` difference as (key, value in the new run, value in the baseline), texts as printed;
    None when the runs measured the same load."""
    for key in SAME_LOAD:
        base, new = base_run.get(key), new_run.get(key)
        if key == "models":
            base, new = sorted(base or [], key=_model_order), sorted(new or [], key=_model_order)
            names = ["; ".join(m.get("model") or "" for m in models) for models in (new, base)]
            if names[0] != names[1]:
                return "model" if len(base) == len(new) == 1 else "models", repr(names[0]), repr(names[1])
            for b, n in zip(base, new):
                for model_key in MODEL_KEYS:
                    if b.get(model_key) != n.get(model_key):
                        named = f"{model_key} of model {n.get('model')}" if len(new) > 1 else model_key
                        return named, repr(n.get(model_key)), repr(b.get(model_key))
        elif key == "trace":
            same = [None if t is None else (t.get("requests"), t.get("sha256")) for t in (base, new)]
            if same[0] != same[1]:  # its requests, not its file's name
                return key, _trace_text(new), _trace_text(base)
        elif base != new:
            return key, repr(new), repr(base)
    return None


def check_same_run(base_run, new_run, where="in the baseline"):
    """Raise CompareError when the runs measured different things (``load_difference``); return notice lines for
    the ``NOTICE_KEYS`` that differ. ``where`` names the baseline in the lines (``in the baseline 'b.json'``)."""
    found = load_difference(base_run, new_run)
    if found:
        key, new, base = found
        raise CompareError(f"cannot compare: {key} is {new} in this run but {base} {where}; expected the same {key} "
                           "(compare runs of the same test)")
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
    base_runs = [run_of(doc, label) for doc, label in zip(base_docs, labels)]
    runs = list(zip(base_docs, labels))
    if new_doc is not None:
        check_document(new_doc, "the new run")
        new_run = run_of(new_doc, "the new run")
        runs.append((new_doc, "the new run"))
    for base_run, label in zip(base_runs, labels):
        check_same_run(base_run, new_run, f"in {label}")
    if len(base_docs) > 1:
        seen = {}
        for doc, label in runs:
            first = seen.setdefault(_fingerprint(doc), label)
            if first != label:
                raise CompareError(f"{first} and {label} hold the same run; expected each run once "
                                   "(a run counted twice narrows the baseline's spread)")
    lines = []
    for key in NOTICE_KEYS:  # one line per key, however many baseline runs differ in it
        differ = [f"{run.get(key)!r} in {label}" for run, label in zip(base_runs, labels)
                  if run.get(key) != new_run.get(key)]
        if differ:
            lines.append(f"Notice: {key} differs: {new_run.get(key)!r} here, {', '.join(differ)}")
    lagged = [doc.get("loop_lag_p99_ms", 0) for doc in base_docs if doc.get("loop_lag_warning")]
    if len(base_docs) > 1 and lagged:  # one line for the baseline, however many of its runs
        low, high = f"{min(lagged):.3f}", f"{max(lagged):.3f}"
        lines.append(f"Notice: in {len(lagged)} of the {len(base_docs)} baseline runs the load generator was a bottleneck "
                     f"(event-loop lag p99 {low if low == high else f'{low} to {high}'} ms): "
                     f"{'its' if len(lagged) == 1 else 'their'} latencies include that wait, so does the change")
    for label, doc in ((*zip(labels, base_docs),) if len(base_docs) == 1 else ()) + (("this run", new_doc or {}),):
        if doc.get("loop_lag_warning"):
            lines.append(f"Notice: in {label} the load generator was a bottleneck (event-loop lag p99 "
                         f"{doc.get('loop_lag_p99_ms', 0):.3f} ms): its latencies include that wait, so does the change")
    return lines
