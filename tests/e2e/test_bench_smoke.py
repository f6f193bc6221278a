"""`bench/e2e.py` and `bench/report.py` still run: a tiny end-to-end bench, then the report.

Not a measurement (a few hundred ticks on whatever the CI machine is doing): it checks that the
bench wires the daemon to its fakes, that trades become alerts on the fake Slack, and that
`make bench`'s last step turns the figures into a table, results.json and the PNG.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts the whole daemon, a redis-server and two fakes
ROOT = Path(__file__).resolve().parents[2]
TINY = ["--rules", "50", "--symbols", "25", "--flip-symbols", "5", "--rates", "200:2",
        "--peak-ticks", "2000", "--peak-rounds", "1", "--timeout", "30"]  # fmt: skip


def test_e2e_bench_delivers_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "results"
    e2e = subprocess.run(
        [sys.executable, "bench/e2e.py", *TINY, "--json", str(out / "e2e.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert e2e.returncode == 0, e2e.stderr[-3000:]
    assert "paced 200 ticks/s" in e2e.stdout and "peak, round 1" in e2e.stdout, e2e.stdout
    assert "raw redis-py pipelined XADD" in e2e.stdout
    doc = json.loads((out / "e2e.json").read_text())
    runs = {r["name"]: r for r in doc["runs"]}
    paced = runs["paced 200 ticks/s"]
    assert paced["ticks"] == 400 and paced["transitions"] == 8
    for run in runs.values():
        assert run["transitions"] > 0
        assert run["delivered"] == run["transitions"], run  # every flip trade reached Slack
        assert run["latency_ms"]["50"] > 0
    names = [f["name"] for f in doc["figures"]]
    assert "end-to-end peak (frame → Slack)" in names

    report = subprocess.run(
        [sys.executable, "bench/report.py", str(out), "--out", str(tmp_path / "results.json"),
         "--png", str(tmp_path / "latency.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    assert "tick→Slack p99 at 200 ticks/s" in report.stdout
    combined = json.loads((tmp_path / "results.json").read_text())
    assert "e2e" in combined["benches"] and combined["table"]
    assert (tmp_path / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_bench_runs_on_a_few_days(tmp_path: Path) -> None:
    out = tmp_path / "backtest.json"
    run = subprocess.run(
        [sys.executable, "bench/backtest.py", "--days", "3", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "3 sessions x 9 symbols" in run.stdout and "pandas, vectorized" in run.stdout
    figures = {f["name"]: f for f in json.loads(out.read_text())["figures"]}
    wall = figures["backtest of a year of bars, wall"]
    assert wall["value"] > 0 and wall["baseline_value"] > 0
    assert 0 < figures["backtest peak RSS"]["value"] < 2000


def test_lease_bench_runs_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "lease.json"
    run = subprocess.run(
        [sys.executable, "bench/lease.py", "--rounds", "1", "--commits", "20", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "under the lease (WATCH, GET)" in run.stdout
    doc = json.loads(out.read_text())
    [fenced, per_tick] = doc["figures"]
    assert fenced["baseline_value"] > 0 and fenced["value"] > 0 and per_tick["unit"] == "µs"
