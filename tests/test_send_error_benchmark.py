"""benchmarks/send_error.py: the table (medians over runs, the ratio row); the runs themselves are by hand."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import send_error  # noqa: E402


def _run(p50, p99, behind, late, cpu):
    return {"send_error_p50_ms": p50, "send_error_p99_ms": p99, "behind_p50_ms": behind, "late": late, "cpu_us": cpu}


def test_table_gives_medians_per_rate_and_checkout_and_the_ratio_row():
    results = {("this", 300.0): [_run(0.004, 0.30, 0.04, 0, 750), _run(0.006, 0.34, 0.05, 2, 744), _run(0.5, 9.0, 1.0, 9, 999)],
               ("baseline", 300.0): [_run(0.125, 0.40, 0.16, 0, 739), _run(0.127, 0.44, 0.17, 1, 732), _run(0.126, 0.5, 0.15, 3, 700)],
               ("this", 100.0): [_run(0.002, 0.2, 0.03, 0, 1400)]}
    lines = send_error.table(results, ["this", "baseline"])
    assert lines[2:] == [
        "| 100 | this | 1 | 0.002 | 0.200 | 0.030 | 0 | 1400 |",
        "| 300 | this | 3 | 0.006 | 0.340 | 0.050 | 2 | 750 |",
        "| 300 | baseline | 3 | 0.126 | 0.440 | 0.160 | 1 | 732 |",
        "| 300 | ratio this / baseline | | 0.05 | 0.77 | 0.31 | 2.00 | 1.02 |",
    ]
    assert {line.count("|") for line in lines} == {9}  # every row has the header's columns
