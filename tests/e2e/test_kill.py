"""SIGKILL in the middle of a delivery burst: after a restart every alert arrives, and the only
duplicates are the sends that were in flight at the kill (at most one per channel worker)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.store.keys import Keys
from tests.chaos import ChaosTable
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
N = 300
ID = re.compile(r"kill-(\d+)\b")


def config(tmp: Path, redis_url: str, keys: Keys, slack: FakeSlackServer,
           twilio: FakeTwilioServer) -> Path:  # fmt: skip
    (tmp / "alerts.yaml").write_text(f"""\
redis: {{url: "{redis_url}", prefix: {keys.prefix}}}
channels:
  desk:
    type: slack
    token: {slack.token}
    channel: "#desk"
    base_url: {slack.base_url}
    rate_limit: 10000
  phone:
    type: sms
    account_sid: {twilio.account_sid}
    auth_token: {twilio.auth_token}
    from: "+15550100000"
    to: ["+15550100001"]
    base_url: {twilio.origin}
    rate_limit: 10000
""")
    return tmp / "alerts.yaml"


def start(cfg: Path, *args: str) -> subprocess.Popen[str]:
    """`tickwatch run` on `cfg` in a process of its own (`args`: more options)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TICKWATCH_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--config", str(cfg), *args],
        cwd=cfg.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


async def seed_burst(redis: Redis, keys: Keys, n: int = N) -> None:
    """`n` firings in the outbox, each to Slack and SMS, naming itself `kill-<i>`."""
    now = int(time.time() * 1000)
    for i in range(n):
        a = AlertEvent(rule="burst", key=f"burst{{n={i}}}", state="firing", seq=1, ts_ms=now,
                       severity="warning", summary=f"kill-{i}", channels=("desk", "phone"),
                       labels={"n": str(i)})  # fmt: skip
        await redis.xadd(keys.outbox, {"alert": a.to_json()})


def ids(texts: list[str]) -> Counter[int]:
    """How many messages name each alert (a message may name its alert in several fields)."""
    return Counter(n for t in texts for n in {int(m.group(1)) for m in ID.finditer(t)})


async def test_sigkill_mid_burst_then_restart_delivers_everything(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys,
    slack_server: FakeSlackServer, twilio_server: FakeTwilioServer, chaos: ChaosTable,
) -> None:  # fmt: skip
    slack_server.delay = twilio_server.delay = 0.01  # a burst that takes a few seconds
    await seed_burst(redis, keys)
    cfg = config(tmp_path, redis_url, keys, slack_server, twilio_server)

    def slack_texts() -> list[str]:
        return [str(r.body) for r in slack_server.requests
                if r.path.endswith("chat.postMessage") and r.status == 200]  # fmt: skip

    def sms_texts() -> list[str]:
        return [m["body"] for m in twilio_server.sent]

    first = start(cfg)
    try:
        await wait_until(lambda: len(slack_texts()) >= N // 5, 60, "the burst under way")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = len(ids(slack_texts())), len(ids(sms_texts()))
    assert at_kill[0] < N, "the burst was over before the kill: not mid-delivery"
    await asyncio.sleep(0.2)  # let sends the dead process had on the wire be answered
    second = start(cfg)
    try:
        await wait_until(
            lambda: len(ids(slack_texts())) == N and len(ids(sms_texts())) == N,
            90,
            "every alert on both channels after the restart",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            rc = second.wait(30)
        except subprocess.TimeoutExpired:
            second.kill()
            raise
    stderr = second.stderr.read() if second.stderr else ""
    assert rc == 0, stderr[-2000:]
    for name, texts in (("Slack", slack_texts()), ("SMS", sms_texts())):
        chaos.record(
            f"daemon SIGKILLed mid-burst of {N}, restarted ({name})",
            range(N),
            [n for t in texts for n in {int(m.group(1)) for m in ID.finditer(t)}],
            up=rc == 0,
            allowed_duplicates=1,
            note="one send in flight may repeat",
        )
    dupes_seen = {}
    for name, texts in (("slack", slack_texts()), ("sms", sms_texts())):
        got = ids(texts)
        assert set(got) == set(range(N)), name
        dupes = {i: n for i, n in got.items() if n > 1}
        # one worker per channel: at most the one send in flight at the kill comes twice
        assert len(dupes) <= 1 and all(n == 2 for n in dupes.values()), (name, dupes)
        dupes_seen[name] = len(dupes)
    print(f"\nkilled after {at_kill[0]} Slack / {at_kill[1]} SMS of {N}; restart completed both;"
          f" duplicates: {dupes_seen}")  # fmt: skip
