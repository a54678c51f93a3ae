"""Make a trace (``tfs_user.capacity.traces``) from a CSV of timestamps, e.g. an ingress access log's time
column: ``python -m tfs_user.make_trace access.csv --column time --duration 60 -o day.trace``.

Timestamps are epoch seconds or ISO 8601 (``2026-12-07T09:00:01.250+00:00``) or the common log
format (``07/Dec/2026:09:00:01 +0000``). The trace holds seconds from the first request, ascending
(a log written slightly out of order is sorted, and the count of moved lines said); ``--duration S``
scales the whole span to S seconds (a day's shape in a minute), ``--keep-every K`` keeps every K-th
request (a lower rate of the same shape). Bad input: one line, exit 2.
"""

import argparse
import csv
import gzip
import sys
from datetime import datetime

FORMATS = ("%d/%b/%Y:%H:%M:%S %z", "%d/%b/%Y:%H:%M:%S")


def parse_time(text):
    """Seconds (float) from epoch seconds, ISO 8601 or the common log format; ValueError otherwise."""
    text = text.strip().strip("[]")
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    for layout in FORMATS:
        try:
            return datetime.strptime(text, layout).timestamp()
        except ValueError:
            continue
    raise ValueError(f"timestamp {text!r} is not epoch seconds, ISO 8601 or the common log format")


def read_times(path, column):
    """The timestamps of ``column`` (header name or 0-based index) of CSV ``path``, in file order; ValueError."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise ValueError(f"{path!r} cannot be read ({e.strerror or e})") from None
    if not rows:
        raise ValueError(f"{path!r} is empty; expected a CSV with a column of timestamps")
    if column.isdigit():
        index, body, first_line = int(column), rows, 1
    else:
        header = [h.strip() for h in rows[0]]
        if column not in header:
            raise ValueError(f"{path!r} has no column {column!r}; its header: {', '.join(header)}")
        index, body, first_line = header.index(column), rows[1:], 2
    times = []
    for n, row in enumerate(body, first_line):
        if index >= len(row):
            raise ValueError(f"{path!r} line {n} has no column {column}")
        try:
            times.append(parse_time(row[index]))
        except ValueError as e:
            raise ValueError(f"{path!r} line {n}: {e}") from None
    if not times:
        raise ValueError(f"{path!r} has no timestamps below its header")
    return times


def make_trace(times, duration_s=0.0, keep_every=1):
    """(send times from 0, ascending, as floats; lines moved by sorting): scaled to ``duration_s`` (> 0) and
    thinned to every ``keep_every``-th request."""
    ordered = sorted(times)
    moved = sum(a != b for a, b in zip(ordered, times))
    ordered = ordered[::keep_every]
    start, span = ordered[0], ordered[-1] - ordered[0]
    scale = duration_s / span if duration_s and span > 0 else 1.0
    return [(t - start) * scale for t in ordered], moved


def main(argv=None):
    """``python -m tfs_user.make_trace``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tfs_user.make_trace", description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="CSV file (or .csv.gz) with a column of timestamps")
    parser.add_argument("--column", default="time", help="header name or 0-based index of the timestamps (default: time)")
    parser.add_argument("--duration", type=float, default=0.0, help="scale the trace to this many seconds, 0 = as logged (default: 0)")
    parser.add_argument("--keep-every", type=int, default=1, help="keep every K-th request (default: 1, all)")
    parser.add_argument("-o", "--output", required=True, help="trace file to write (.gz: gzip)")
    args = parser.parse_args(argv)
    try:
        if not args.duration >= 0 or args.keep_every < 1:
            raise ValueError(f"--duration {args.duration:g} / --keep-every {args.keep_every} is not valid; "
                             "expected seconds >= 0 and an integer >= 1")
        trace, moved = make_trace(read_times(args.csv, args.column), args.duration, args.keep_every)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = "".join(f"{t:.6f}\n" for t in trace)
    opener = gzip.open if args.output.endswith(".gz") else open
    with opener(args.output, "wt") as f:
        f.write(text)
    span = trace[-1] if trace else 0.0
    print(f"{len(trace)} requests over {span:.3f} s ({len(trace) / span if span else 0:.1f} req/s mean) -> {args.output}"
          + (f"; {moved} lines were out of order and are sorted" if moved else ""))
    return 0
