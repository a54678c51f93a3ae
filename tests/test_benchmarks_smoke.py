"""Smoke test of benchmarks/overhead.py --quick: it runs end to end and writes a table of numbers."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "overhead.py"

COST_ROWS = [
    "plain gRPC loop (baseline)",
    "grpcio futures, 8 in flight",
    "grpc.aio, 8 tasks",
    "TfsUser 1 user",
    "TfsUser 8 users",
    "TfsUser 8 users, --protocol kserve",
    "TfsUser 8 users, --processes 2",
]
FIDELITY_ROWS = ["plain gRPC loop (baseline)", "TfsUser 1 user"]
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _section(text, title):
    """Rows (lists of cells) of the first markdown table after the heading starting with ``title``."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"## {title}"))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[0], rows[1:]


def test_quick_overhead_benchmark(tmp_path):
    output = tmp_path / "r.md"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--output", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    text = output.read_text()
    assert text in done.stdout  # printed too
    assert "nproc" in text and "grpcio" in text and "locust" in text

    header, rows = _section(text, "Cost per request")
    assert header[:11] == ["payload", "case", "users", "requests", "CPU/request us", "CPU ratio", "req/s",
                           "req/s ratio", "p50 ms", "p99 ms", "p50 overhead us"]
    assert [r[1] for r in rows] == COST_ROWS
    for row in rows:
        assert row[0] == "[1,4]"
        assert all(NUMBER.match(cell) for cell in row[2:11]), row
        assert int(row[3]) >= 100 and float(row[4]) > 0 and float(row[6]) > 0, row
    baseline = rows[0]
    assert baseline[5] == "1.00" and baseline[7] == "1.00" and baseline[10] == "0"

    header, rows = _section(text, "Fidelity")
    assert [r[0] for r in rows] == FIDELITY_ROWS
    for row in rows:
        assert all(NUMBER.match(cell) for cell in row[1:7]), row
        assert float(row[3]) >= 5.0  # the server sleeps 5 ms: nobody may report less

    assert "## Targets" in text
    assert re.search(r"^- issue 14 targets \(CPU, p50\): (met|NOT met) \(\d+ of 3\)$", text, re.M), text
