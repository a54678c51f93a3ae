"""How examples/traces/access-day.csv.gz was made: one day of an ingress access log's time column
(synthetic, seed 1): quiet at night, a ramp from 7:00, a burst at 9:00, a lunch dip, a second peak at
14:00, evening decline; 6000 requests. Then, as docs/capacity.md shows:

    python -m tfs_user.make_trace examples/traces/access-day.csv.gz --column time --duration 60 \
        -o examples/traces/day-in-a-minute.trace
"""

import csv
import gzip
from datetime import datetime, timedelta, timezone

import numpy as np


def hourly_weight(hour):
    """Relative request rate at ``hour`` (0-24, float)."""
    base = 0.1 + 0.9 * np.exp(-((hour - 11.0) / 4.0) ** 2) + 0.7 * np.exp(-((hour - 14.5) / 2.0) ** 2)
    burst = 2.5 * np.exp(-((hour - 9.0) / 0.15) ** 2)
    lunch = -0.4 * np.exp(-((hour - 12.5) / 0.5) ** 2)
    return max(base + burst + lunch, 0.02)


def main(path="examples/traces/access-day.csv.gz", requests=6000):
    rng = np.random.default_rng(1)
    grid = np.linspace(0, 24, 24 * 60 + 1)[:-1]  # per minute
    weights = np.array([hourly_weight(h) for h in grid])
    minutes = rng.choice(len(grid), size=requests, p=weights / weights.sum())
    seconds = np.sort(minutes * 60 + rng.uniform(0, 60, requests))
    day = datetime(2026, 12, 7, tzinfo=timezone.utc)
    with gzip.open(path, "wt", newline="") as f:
        out = csv.writer(f)
        out.writerow(["time", "method", "path", "status"])
        for s in seconds:
            out.writerow([(day + timedelta(seconds=float(s))).isoformat(timespec="milliseconds"), "POST",
                          "/v1/models/resnet:predict", 200])


if __name__ == "__main__":
    main()
