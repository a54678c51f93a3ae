"""``python -m tfs_user.compare BASE.json [BASE2.json ...] NEW.json``: the baseline comparison after the fact.

The last file is the run to judge; the ones before it are the baseline, one run or several
(``tfs_user.results.baseline_runs``). Prints the table (``compare.format_table``) and one ``Worse than baseline: ...`` line per worse figure;
``--json FILE``, ``--csv FILE`` and ``--plot FILE.html`` write the same comparison. Thresholds are the
run's options (``--baseline-p50 4`` ..., ``off`` leaves a figure out). Exit codes as a run's
(``tfs_user.results.verdict``): 0 nothing worse, 3 a figure worse, 2 the files cannot be compared or an output
file cannot be written (its folder does not exist, as for --json-summary): one line on stderr, nothing written.
"""

import argparse
import csv
import glob
import json
import os
import sys

from tfs_user.results.report import _write_atomically, output_path_problem
from tfs_user.results import compare
from tfs_user.results.verdict import COULD_NOT_RUN, OK, SLO_MISSED

CSV_COLUMNS = ("step", "figure", "base", "new", "change", "noise", "noise_windows", "noise_runs", "threshold",
               "allowed", "verdict")
PATTERN = "*?["
"""A baseline item with one of these is a file name pattern (``glob``), e.g. ``baseline/*.json``."""


def read_summary(path, label):
    """The JSON summary at ``path`` as a dict, checked (``compare.check_document``). Raises CompareError."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise compare.CompareError(f"cannot read {label} {path!r}: {e.strerror}; expected a JSON summary file") from None
    except ValueError:
        raise compare.CompareError(f"{label} {path!r} is not JSON; expected a file written by --json-summary") from None
    compare.check_document(doc, f"{label} {path!r}")
    return doc


def baseline_paths(texts):
    """The baseline's files from ``texts`` (each a file, a comma-separated list, or a pattern such as
    ``main/*.json``, expanded in name order), in order. Raises CompareError (one line) when there is none, a
    pattern matches no file, or a file comes twice (a run counted twice narrows the baseline's spread)."""
    paths = []
    for text in texts:
        for item in (part.strip() for part in str(text).split(",")):
            if item and any(c in item for c in PATTERN):
                found = sorted(glob.glob(item))
                if not found:
                    raise compare.CompareError(f"baseline pattern {item!r} matches no file; expected JSON summaries "
                                               "(--json-summary files) there")
                paths += found
            elif item:
                paths.append(item)
    if not paths:
        raise compare.CompareError("no baseline file given; expected one JSON summary or more (comma-separated)")
    seen = {}
    for path in paths:
        first = seen.setdefault(os.path.realpath(path), path)
        if first != path or paths.count(path) > 1:
            raise compare.CompareError(f"baseline file {path!r} is given twice; expected each run once (a run counted "
                                       "twice narrows the baseline's spread)")
    return paths


def read_baseline(texts, label="baseline"):
    """([summary dicts], [their paths]) of the baseline's files (``baseline_paths``), each checked
    (``read_summary``). Raises CompareError."""
    paths = baseline_paths(texts)
    return [read_summary(path, label) for path in paths], paths


def threshold_options(parser, with_help=True):
    """Add ``--baseline-p50`` ... (one per compared figure) to an argparse parser (this command's)."""
    for figure in compare.FIGURES:
        unit = "percentage points" if not figure.relative else "%%"  # argparse formats help with %
        parser.add_argument(figure.option, type=_threshold, default=f"{figure.default:g}",
                            help=f"Smallest change of {figure.label} called worse or better, {unit}, however quiet "
                                 f"the runs; 'off' leaves it out. Default: {figure.default:g}")


def _threshold(text):
    try:
        compare.parse_threshold(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def thresholds_from(options):
    """{figure name: float or None} from parsed options holding ``baseline_p50`` ..."""
    return {f.name: compare.parse_threshold(getattr(options, f"baseline_{f.name}")) for f in compare.FIGURES}


def write_outputs(comparison, base_docs, new_doc, json_path="", csv_path="", plot_path=""):
    """Write the comparison as JSON, CSV and/or the HTML page (each never half-written); ``base_docs``: the
    baseline's summaries (a list, or one dict)."""
    if json_path:
        _write_atomically(json_path, lambda f: json.dump(comparison.to_json(), f, indent=2))
    if csv_path:
        def write(f):
            out = csv.writer(f)
            out.writerow(CSV_COLUMNS)
            for row in comparison.rows:
                out.writerow(["" if v is None else v if isinstance(v, str) else f"{v:.6g}"
                              for v in (row.to_json()[k] for k in CSV_COLUMNS)])
        _write_atomically(csv_path, write)
    if plot_path:
        from tfs_user.results import compare_plot  # matplotlib only when a plot is asked for

        compare_plot.write_page(plot_path, comparison, base_docs, new_doc)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tfs_user.compare", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="JSON summaries (--json-summary): the baseline's, one run or several (each a file, a "
                             "comma-separated list or a pattern such as 'main/*.json'), then the run to judge, last")
    parser.add_argument("--json", default="", help="write the comparison as JSON to this file")
    parser.add_argument("--csv", default="", help="write the comparison as CSV to this file")
    parser.add_argument("--plot", default="", help="write a self-contained HTML page with both runs' charts")
    threshold_options(parser)
    options = parser.parse_args(argv)
    if len(options.files) < 2:
        parser.error("expected the baseline's JSON summaries, then the new run's: BASE.json [BASE2.json ...] NEW.json")
    for option, path, example in (("--json", options.json, "compare.json"), ("--csv", options.csv, "compare.csv"),
                                  ("--plot", options.plot, "compare.html")):
        problem = output_path_problem(option, path, example)
        if problem:  # before anything is read or written
            print(f"error: {problem}", file=sys.stderr)
            return COULD_NOT_RUN
    try:
        base_docs, paths = read_baseline(options.files[:-1])
        new_doc = read_summary(options.files[-1], "new run")
        comparison = compare.compare(base_docs, new_doc, thresholds_from(options), names=paths)
    except compare.CompareError as e:
        print(f"error: {e}", file=sys.stderr)
        return COULD_NOT_RUN
    print(compare.format_table(comparison))
    for line in comparison.worse_lines():
        print(line)
    write_outputs(comparison, base_docs, new_doc, options.json, options.csv, options.plot)
    return SLO_MISSED if comparison.worse else OK
