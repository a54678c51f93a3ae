"""Recorded traces (issue 33): reading and checking a trace file, its gaps for an open-loop schedule,
and the command that makes one from a CSV of timestamps (with the example trace in the repo)."""

import gzip
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tfs_user.capacity.trace_maker import make_trace, parse_time
from tfs_user.capacity.traces import Trace, TraceError, TraceIntervals, read_trace

ROOT = Path(__file__).resolve().parent.parent


def _write(path, text, compress=False):
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    return str(path)


@pytest.mark.parametrize("compress", [False, True])
def test_plain_and_csv_traces_gzip_or_not(tmp_path, compress):
    plain = _write(tmp_path / "a.trace", "# seconds\n0\n0.5\n\n0.5\n2.25\n", compress)
    assert read_trace(plain) == Trace((0.0, 0.5, 0.5, 2.25), file_lines=(2, 3, 5, 6))  # comments and blanks skipped
    table = _write(tmp_path / "b.csv", "time,model,batch_size\n0.1,small,1\n0.2,big,8\n1e0,small,32\n", compress)
    assert read_trace(table) == Trace((0.1, 0.2, 1.0), ("small", "big", "small"), (1, 8, 32), file_lines=(2, 3, 4))


@pytest.mark.parametrize("text, words", [
    ("", "is empty"), ("# nothing\n\n", "is empty"),
    ("0\n2\n1\n", "line 3: time 1 is before the line above's 2"), ("-1\n", "line 1: time -1 is negative"),
    ("0\nsoon\n", "line 2: time 'soon' is not a number; expected seconds from the trace's start"),
    ("0\nnan\n", "line 2: time 'nan' is not a number"),
    # each column's own expectation (a batch size was "expected seconds from the trace's start")
    ("time,batch_size\n0,1\n0.1,abc\n", "line 3: batch size 'abc' is not a number; expected an integer >= 1"),
    ("when,model\n1,a\n", "has no time column"), ("time\n", "has a header and no requests"),
    ("time,batch_size\n0,0\n", "line 2: batch size '0' is not an integer >= 1"),
    ("time,model\n0\n", "line 2: 1 fields; expected 2"),
])
def test_bad_traces_are_one_line(tmp_path, text, words):
    with pytest.raises(TraceError) as info:
        read_trace(_write(tmp_path / "t.trace", text))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_unreadable_and_binary_traces(tmp_path):
    with pytest.raises(TraceError, match="cannot be read"):
        read_trace(str(tmp_path / "missing.trace"))
    with pytest.raises(TraceError, match="is not text"):
        (tmp_path / "bin.trace").write_bytes(b"\xff\xfe\x00")
        read_trace(str(tmp_path / "bin.trace"))


def test_gaps_follow_the_trace_at_the_speedup_then_end_or_loop():
    trace = Trace((0.5, 1.0, 3.0))
    gaps = TraceIntervals(trace, speedup=10)
    assert [gaps.next() for _ in range(3)] == pytest.approx([0.05, 0.05, 0.2])
    assert gaps.next() == math.inf and gaps.next() == math.inf  # the replay is over
    looped = TraceIntervals(trace, speedup=2, loop=True)
    sent = [looped.next() for _ in range(6)]
    # the second pass starts one mean gap (1.25 s) after the last request, then keeps the trace's gaps
    assert sent == pytest.approx([0.25, 0.25, 1.0, (1.25 + 0.5) / 2, 0.25, 1.0])
    assert looped.index == 2
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(TraceError, match="speed-up"):
            TraceIntervals(trace, speedup=bad)


def test_make_trace_sorts_scales_and_thins():
    times, moved = make_trace([100.0, 110.0, 105.0, 120.0], duration_s=2.0)
    assert times == pytest.approx([0.0, 0.5, 1.0, 2.0]) and moved == 2
    assert make_trace([0.0, 1.0, 2.0, 3.0, 4.0], keep_every=2)[0] == [0.0, 2.0, 4.0]
    assert parse_time("2026-12-07T09:00:01.250Z") - parse_time("07/Dec/2026:09:00:00 +0000") == pytest.approx(1.25)


def test_make_trace_command_and_the_example_trace(tmp_path):
    log = tmp_path / "access.csv"
    log.write_text("time,path\n2026-12-07T09:00:02Z,/a\n2026-12-07T09:00:00Z,/b\n2026-12-07T09:00:04Z,/c\n")
    out = tmp_path / "t.trace.gz"
    done = subprocess.run([sys.executable, "-m", "tfs_user.make_trace", str(log), "--duration", "1", "-o", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "3 requests over 1.000 s" in done.stdout and "2 lines were out of order" in done.stdout
    assert read_trace(str(out)).times == (0.0, 0.5, 1.0)
    bad = subprocess.run([sys.executable, "-m", "tfs_user.make_trace", str(log), "--column", "when", "-o", "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "has no column 'when'" in bad.stderr
    # the example in the repo is what the documented command makes of the example log
    again = tmp_path / "day.trace"
    subprocess.run([sys.executable, "-m", "tfs_user.make_trace", "examples/traces/access-day.csv.gz", "--column", "time",
                    "--duration", "60", "-o", str(again)], check=True, cwd=ROOT, capture_output=True, timeout=60)
    assert again.read_text() == (ROOT / "examples/traces/day-in-a-minute.trace").read_text()
    example = read_trace(str(again))
    assert len(example.times) == 6000 and example.duration_s == pytest.approx(60.0)
