"""`tickwatch run` as a newcomer runs it: no Redis installed, no tokens, bundled sample data."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SPREAD_RULE = "xmag-mags-ytd-spread-compresses"


def test_run_prints_the_spread_alert_on_embedded_redis_and_stops_cleanly(
    repo: Path, tmp_path: Path
) -> None:
    for item in ("alerts.yaml", "rules", "data"):
        src = repo / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_", "SLACK_", "TWILIO_", "TICKWATCH_"))}  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if SPREAD_RULE in line and "FIRING" in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(60), f"no spread alert on stdout; got {lines[-5:]}"
        elapsed = time.monotonic() - started
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert rc == 0, stderr
    print(f"\nfirst spread alert on stdout {elapsed:.1f}s after `tickwatch run` started")
    line = next(x for x in lines if SPREAD_RULE in x)
    assert line.startswith("2026-04-09") and "below 8" in line
    assert line.strip() in (repo / "README.md").read_text(), "README shows stale sample output"
    assert "started embedded Redis 6.2" in stderr and "data in var" in stderr
    assert "slack_desk (slack) is off: token is empty (export SLACK_BOT_TOKEN)" in stderr
    assert "tickwatch stopped" in stderr
    # the embedded server shut down with the daemon (redis-server removes its pidfile on exit)
    assert (tmp_path / "var" / "appendonly.aof").exists()
    assert not (tmp_path / "var" / "redis.pid").exists()
