"""benchmarks/peers.py: its parsers on outputs recorded from real perf_analyzer / LoadGen / locust runs,
the side-by-side table, and (only when both peers' venvs are already built) a --quick run end to end.

Nothing here installs anything: without ``benchmarks/.peers/{perf_analyzer,loadgen}`` the end-to-end
test skips, saying so.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "peers"
sys.path.insert(0, str(ROOT / "benchmarks"))

import peers_table as t  # noqa: E402  (no Locust, no gRPC: safe in the pytest process)


def test_perf_analyzer_closed_csv():
    steps = t.parse_perf_analyzer_csv((DATA / "perf_analyzer_closed.csv").read_text())
    assert sorted(steps) == [1, 2, 3]
    assert steps[1] == {"rps": 151.617, "p50": 6.527, "p90": 6.833, "p99": 8.543, "note": ""}
    assert steps[3]["rps"] == 449.452 and steps[3]["p99"] == 7.691


def test_perf_analyzer_rate_csv_and_delay_warning():
    steps = t.parse_perf_analyzer_csv((DATA / "perf_analyzer_rate.csv").read_text())
    assert steps[200] == {"rps": 195.319, "p50": 6.721, "p90": 7.237, "p99": 7.777, "note": ""}
    # the console says 6.02 % of the 200 req/s requests left late, nothing for 100 req/s
    assert t.perf_analyzer_delays((DATA / "perf_analyzer_rate.txt").read_text()) == {200: 6.02}


def test_perf_analyzer_bad_csv_names_the_file():
    with pytest.raises(ValueError, match=r"^x\.csv: columns \['a', 'b'\]; expected Concurrency"):
        t.parse_perf_analyzer_csv("a,b\n1,2\n", "x.csv")
    with pytest.raises(ValueError, match="no rows"):
        t.parse_perf_analyzer_csv("", "x.csv")


def test_loadgen_summary():
    text = (DATA / "loadgen_summary.txt").read_text()
    step = t.parse_loadgen_summary(text)
    assert step == {"rps": 97.17, "p50": 7.325351, "p90": 7.751336, "p99": 8.447532, "note": ""}
    # early stopping alone (too few queries for LoadGen's estimate) is not noted; a short run is
    short = t.parse_loadgen_summary(text.replace("Min duration satisfied : Yes", "Min duration satisfied : NO"))
    assert short["note"] == "LoadGen: min duration not satisfied"
    with pytest.raises(ValueError, match="99"):
        t.parse_loadgen_summary(text.replace("99.00 percentile", "99.50 percentile"))


def test_ours_steps_schedule_and_service():
    summary = json.loads((DATA / "ours_rate_summary.json").read_text())
    schedule = t.ours_steps(summary, "schedule")
    service = t.ours_steps(summary, "service")
    assert sorted(schedule) == sorted(service) == [100, 200]
    assert schedule[200]["p50"] == 7.763 and schedule[200]["p99"] == 12.687
    assert service[200]["p50"] == 7.047 and service[200]["p99"] == 11.983
    assert schedule[100]["rps"] == service[100]["rps"] == summary["steps"][0]["rps"]
    with pytest.raises(ValueError, match="no steps"):
        t.ours_steps({"rows": []}, "schedule")


def _m(rps, p50, p90, p99, note=""):
    return {"rps": rps, "p50": p50, "p90": p90, "p99": p99, "note": note}


def test_side_by_side_medians_ratios_and_missing_sides():
    rows = [
        {"mode": "quiet", "comparison": "closed", "step": 1, "run": 1, "ours": _m(90, 8, 9, 10), "peer": _m(100, 8, 9, 8)},
        {"mode": "quiet", "comparison": "closed", "step": 1, "run": 2, "ours": _m(80, 9, 9, 30), "peer": _m(100, 6, 9, 8)},
        {"mode": "quiet", "comparison": "closed", "step": 1, "run": 3, "ours": _m(88, 7, 9, 12, "1 late"),
         "peer": _m(100, 7, 9, 8)},
        {"mode": "quiet", "comparison": "rate-schedule", "step": 100, "run": 1, "ours": _m(99, 7, 8, 9), "peer": None},
    ]
    closed, rate = t.side_by_side(rows)
    assert (closed["ours_rps"], closed["peer_rps"], closed["ratio_rps"]) == (88, 100, 0.88)  # medians, not means
    assert (closed["ours_p50"], closed["peer_p50"], closed["ratio_p50"]) == (8, 7, 8 / 7)
    assert closed["ours_p99"] == 12 and closed["ratio_p99"] == 1.5
    assert closed["runs"] == 3 and closed["notes"] == "ours run 3: 1 late"
    assert rate["runs"] == 0 and rate["peer_p50"] is None and rate["ratio_p50"] is None

    text = t.markdown([closed, rate])
    lines = text.splitlines()
    assert lines[0].split(" | ")[4:7] == ["ours req/s", "peer req/s", "ratio"]
    assert lines[2].startswith("| quiet | closed vs perf_analyzer | 1 users | 3 | 88.0 | 100.0 | 0.88 | 8.000 | 7.000 | 1.14 |")
    assert lines[3].startswith("| quiet | rate-schedule vs LoadGen | 100 req/s | 0 | 99.0 |  |  | 7.000 |  |  |")


def test_bad_option_is_one_line_exit_2():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--modes", "loud"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--modes 'loud': expected quiet or '1 hog'" in done.stderr and "Traceback" not in done.stderr


PEERS = ROOT / "benchmarks" / ".peers"


def test_quick_run_end_to_end(tmp_path):
    missing = [name for name in ("perf_analyzer", "loadgen") if not (PEERS / name / ".built").exists()]
    if missing:
        pytest.skip(f"peer venv(s) not built in {PEERS}: {', '.join(missing)} (python benchmarks/peers.py builds them)")
    if not Path("/usr/lib/x86_64-linux-gnu/libb64.so.0d").exists():
        pytest.skip("perf_analyzer needs Debian's libb64-0d (apt-get install libb64-0d)")
    output = tmp_path / "peers.md"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick", "--output", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    text = output.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| quiet |")]
    table = rows[:6]  # the side-by-side table, then every run's lines
    assert [r.split(" | ")[1:3] for r in table] == [
        ["closed vs perf_analyzer", "1 users"], ["closed vs perf_analyzer", "4 users"],
        ["rate-service vs perf_analyzer", "100 req/s"], ["rate-service vs perf_analyzer", "300 req/s"],
        ["rate-schedule vs LoadGen", "100 req/s"], ["rate-schedule vs LoadGen", "300 req/s"]]
    number = re.compile(r"^\d+\.\d+$")
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] == "1" and all(number.match(c) for c in cells[4:16]), row
        assert float(cells[7]) >= 5.0 and float(cells[8]) >= 5.0  # the server sleeps 5 ms: nobody reads less
