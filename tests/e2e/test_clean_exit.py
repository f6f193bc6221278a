"""`tickwatch run` ends cleanly: on SIGTERM/SIGINT exit 0, on a fatal source problem exit 3 with
one clear line, and never a traceback (APScheduler's "Job raised CancelledError" included)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from daemon.store.keys import Keys
from tests.fakes.ws_feeds import FakeAlpacaServer

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_", "SLACK_", "TWILIO_", "TICKWATCH_"))}  # fmt: skip
    return {**env, **extra}


def _assert_no_traceback(log: str) -> None:
    for bad in ("Traceback", "CancelledError", "lost Redis", "raised an exception"):
        assert bad not in log, f"{bad!r} in the log:\n{log[-3000:]}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_mid_replay_exits_0_without_a_traceback(
    repo: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    """The sample replay at 3,000x real time sleeps between bars: the signal lands mid-job."""
    for item in ("alerts.yaml", "rules", "data"):
        src = repo / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--log-level", "DEBUG"],
        cwd=tmp_path, env=_env(TICKWATCH_REPLAY_SPEED="3000"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    replaying = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "replay sample: 73740 events" in line:
                replaying.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert replaying.wait(60), "".join(lines[-20:])
        time.sleep(1.0)  # the replay job is in its asyncio.sleep, the stages mid-read
        proc.send_signal(sig)
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    log = "".join(lines)
    assert rc == 0, log[-3000:]
    _assert_no_traceback(log)
    assert " ERROR " not in log and " WARNING  tickwatch: " not in log, log[-3000:]
    assert "tickwatch stopped" in log.splitlines()[-1]
    assert not (tmp_path / "var" / "redis.pid").exists()  # the embedded server stopped too


async def test_a_wrong_alpaca_key_exits_3_with_one_clear_line(
    repo: Path, tmp_path: Path, redis_url: str, keys: Keys, alpaca_server: FakeAlpacaServer
) -> None:
    """As reported: the sample replay running, plus an Alpaca feed with a wrong secret."""
    ticks = repo / "data" / "sample" / "ticks.csv.gz"
    (tmp_path / "alerts.yaml").write_text(f"""\
redis: {{url: "{redis_url}", prefix: {keys.prefix}}}
groups: {{mag7: [NVDA, MSFT]}}
sources:
  - {{name: sample, type: replay, ticks: "{ticks}", speed: 3000}}
  - {{name: live, type: alpaca, key_id: {alpaca_server.key_id}, secret_key: wrong-secret-4242,
     url: "{alpaca_server.stocks_url()}"}}
channels: {{console: {{type: console}}}}
rules:
  - {{name: hi, when: {{threshold: {{symbols: NVDA, above: 5000}}}}, channels: [console]}}
""")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "daemon", "run",
        cwd=tmp_path, env=_env(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = out.decode()
    assert proc.returncode == 3, log[-3000:]
    _assert_no_traceback(log)
    errors = [x for x in log.splitlines() if " ERROR " in x]
    assert len(errors) == 1, log[-3000:]
    assert "source live cannot run" in errors[0] and "key" in errors[0].lower(), errors
    assert "wrong-secret-4242" not in log
    assert "tickwatch stopped" in log.splitlines()[-1]
