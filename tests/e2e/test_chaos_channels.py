"""Chaos on the way out: channels that fail, rate-limit, hang and drop connections mid-burst.

A burst of alerts goes to Slack and SMS while the fakes misbehave; every alert must arrive on
both, none twice (no kill here, so no send is in doubt, except one whose connection dropped
after the fake had taken it: at-least-once may repeat that one).
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.app import Daemon
from daemon.config import load_config
from daemon.notify.retry import RetryPolicy
from daemon.store.keys import Keys
from tests.chaos import ChaosTable
from tests.e2e.test_kill import config
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
N = 60
ID = re.compile(r"chaos-(\d+)\b")
FAST = RetryPolicy(base_delay=0.05, max_delay=0.5)


def ids(texts: list[str]) -> list[int]:
    return [n for t in texts for n in {int(m.group(1)) for m in ID.finditer(t)}]


async def burst(redis: Redis, keys: Keys) -> None:
    now = int(time.time() * 1000)
    for i in range(N):
        a = AlertEvent(rule="burst", key=f"burst{{n={i}}}", state="firing", seq=1, ts_ms=now,
                       severity="warning", summary=f"chaos-{i}", channels=("desk", "phone"),
                       labels={"n": str(i)})  # fmt: skip
        await redis.xadd(keys.outbox, {"alert": a.to_json()})


@pytest.mark.parametrize(
    ("scenario", "trouble", "allowed"),
    [
        ("Slack 500 and Twilio 500 for their first 15 sends",
         lambda s, t: (s.server_error(500, times=15), t.server_error(times=15)), 0),
        ("Slack 429 Retry-After 1 s, Twilio 429 Retry-After 1 s",
         lambda s, t: (s.rate_limit(retry_after=1, times=2),
                       t.rate_limit(times=2, retry_after=1)), 0),
        ("dropped TCP connections (5 per channel)",
         lambda s, t: (setattr(s, "drop_next", 5), setattr(t, "drop_next", 5)), 5),
    ],
)  # fmt: skip
async def test_a_burst_survives_channels_that_misbehave(
    scenario: str,
    trouble: Callable[[FakeSlackServer, FakeTwilioServer], object],
    allowed: int,
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys,
    slack_server: FakeSlackServer, twilio_server: FakeTwilioServer, chaos: ChaosTable,
) -> None:  # fmt: skip
    await burst(redis, keys)
    trouble(slack_server, twilio_server)
    cfg = load_config(config(tmp_path, redis_url, keys, slack_server, twilio_server), env={})
    daemon = Daemon(cfg, console=io.StringIO(), retry=FAST, watch=False)

    def slack() -> list[str]:
        return [str(r.body) for r in slack_server.requests
                if r.path.endswith("chat.postMessage") and r.status == 200]  # fmt: skip

    def sms() -> list[str]:
        return [m["body"] for m in twilio_server.sent]

    await daemon.start()
    try:
        await wait_until(lambda: set(ids(slack())) == set(range(N)) == set(ids(sms())), 60,
                         "every alert on both channels")  # fmt: skip
        up = not daemon.failed.is_set()
    finally:
        await daemon.stop()
    for name, texts in (("Slack", slack()), ("SMS", sms())):
        chaos.record(f"{scenario} ({name})", range(N), ids(texts), up=up,
                     allowed_duplicates=allowed)  # fmt: skip


async def test_a_burst_survives_twilio_timing_out(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys,
    slack_server: FakeSlackServer, twilio_server: FakeTwilioServer, chaos: ChaosTable,
) -> None:  # fmt: skip
    """Twilio stops answering for 2 s (the client gives up after 0.5 s and tries again): every
    SMS arrives. A send that timed out may still have reached Twilio, so at-least-once may
    repeat those few, and only those."""
    await burst(redis, keys)
    path = config(tmp_path, redis_url, keys, slack_server, twilio_server)
    text = path.read_text().replace(
        "    base_url: " + twilio_server.origin, "    base_url: " + twilio_server.origin
        + "\n    timeout: 0.5"
    )  # fmt: skip
    path.write_text(text)
    cfg = load_config(path, env={})
    twilio_server.hold = asyncio.Event()  # requests hang until set
    daemon = Daemon(cfg, console=io.StringIO(), retry=FAST, watch=False)
    await daemon.start()
    try:
        await wait_until(lambda: len(twilio_server.requests) >= 3, 20, "sends timing out")
        await asyncio.sleep(2.0)  # the outage: Twilio is silent for two seconds
        timed_out = len(twilio_server.requests)
        twilio_server.hold.set()
        twilio_server.hold = None

        def all_sms() -> bool:
            return set(ids([m["body"] for m in twilio_server.sent])) == set(range(N))

        await wait_until(all_sms, 60, "every SMS")
        up = not daemon.failed.is_set()
    finally:
        await daemon.stop()
    chaos.record(
        "Twilio silent for 2 s mid-burst (client timeout 0.5 s)",
        range(N),
        ids([m["body"] for m in twilio_server.sent]),
        up=up,
        allowed_duplicates=timed_out,
        note="a timed-out send may have arrived",
    )
