"""`tickwatch check` and `tickwatch run` on good and bad configs, as a user runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30

BAD_RULES = """\
rules:
  - name: nvda-above
    when:
      threshold: {symbols: NVDA, above: 100}
    for: 5 minutes
    channels: [console]
"""
ALERTS = """\
channels:
  console: {type: console}
include: [rules/*.yaml]
"""
BAD_LINE = next(i + 1 for i, text in enumerate(BAD_RULES.splitlines()) if "for:" in text)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    cwd: Path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    # the shipped config reads these; make the run independent of the caller's shell
    for var in ("SLACK_BOT_TOKEN", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "REDIS_URL"):
        env.pop(var, None)
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every CLI invocation of this module, started at once (each pays ~1.5 s of imports)."""
    bad = tmp_path_factory.mktemp("bad")
    (bad / "rules").mkdir()
    (bad / "alerts.yaml").write_text(ALERTS)
    (bad / "rules" / "x.yaml").write_text(BAD_RULES)
    empty = tmp_path_factory.mktemp("empty")
    cases = {
        "check_shipped": (["check", "--config", "alerts.yaml"], REPO),
        "check_bad": (["check", "--config", "alerts.yaml"], bad),
        "run_bad": (["run", "--config", str(bad / "alerts.yaml")], bad),
        "check_missing": (["check", "--config", "nope.yaml"], empty),
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "daemon", *args],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, cwd) in cases.items()
    }
    out: dict[str, Run] = {}
    try:
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
            out[name] = Run(proc.returncode, stdout, stderr, cases[name][1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


def test_check_shipped_config(runs: dict[str, Run]) -> None:
    n_rules = sum(
        len(yaml.safe_load(f.read_text())["rules"]) for f in (REPO / "rules").glob("*.yaml")
    )
    r = runs["check_shipped"]
    assert r.returncode == 0, r.stderr
    assert "alerts.yaml: OK" in r.stdout
    assert f"rules:    {n_rules} in " in r.stdout
    assert "symbols:  9 " in r.stdout
    assert "`--compare OLD_RULES` shows what an edit changes" in r.stdout  # the next step
    assert r.stderr.strip() == ""


def test_check_reports_typo_with_location_and_fix(runs: dict[str, Run]) -> None:
    r = runs["check_bad"]
    assert r.returncode == 2
    assert r.stdout == ""
    expected = f"rules/x.yaml:{BAD_LINE}: rules[0].for: '5 minutes' is not a duration; write 5m"
    assert expected in r.stderr
    assert "1 problem found" in r.stderr
    assert "OK" not in r.stdout + r.stderr


def test_run_with_bad_config_exits_2_without_starting(runs: dict[str, Run]) -> None:
    r = runs["run_bad"]
    assert r.returncode == 2
    assert f"rules/x.yaml:{BAD_LINE}:" in r.stderr
    assert re.search(r"did not start|not started", r.stderr)
    # nothing was started: no embedded Redis data directory, no startup log line
    assert not (r.cwd / "var").exists()
    assert "started" not in re.sub(r"did not start|not started", "", r.stderr)


def test_check_missing_file(runs: dict[str, Run]) -> None:
    r = runs["check_missing"]
    assert r.returncode == 2
    assert "nope.yaml: cannot read file" in r.stderr
