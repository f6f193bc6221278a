"""Two daemons on one Redis: one is the primary, the other stands by; SIGKILL the primary in the
middle of a delivery burst and the standby takes over within 10 s, delivering every alert, the
only duplicates being the sends in flight at the kill (at most one per channel)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.status import report
from daemon.store import Keys
from tests.chaos import ChaosTable
from tests.e2e.test_kill import ID, config, ids, seed_burst, start
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
N = 300


async def test_the_standby_takes_over_a_killed_primary_within_10s(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys,
    slack_server: FakeSlackServer, twilio_server: FakeTwilioServer, chaos: ChaosTable,
) -> None:  # fmt: skip
    slack_server.delay = twilio_server.delay = 0.01  # a burst that takes a few seconds
    await seed_burst(redis, keys, N)
    cfg = config(tmp_path, redis_url, keys, slack_server, twilio_server)
    cfg.write_text(cfg.read_text() + "http: {listen: off}\n")

    def slack_texts() -> list[str]:
        return [str(r.body) for r in slack_server.requests
                if r.path.endswith("chat.postMessage") and r.status == 200]  # fmt: skip

    def sms_texts() -> list[str]:
        return [m["body"] for m in twilio_server.sent]

    holder: list[str | None] = [None]

    async def lease_holder() -> str | None:
        holder[0] = await redis.get(keys.lease("primary"))
        return holder[0]

    primary = start(cfg, "--instance", "alpha")
    standby = None
    try:
        await wait_until(lambda: len(slack_texts()) >= 1, 60, "alpha delivering")
        assert await lease_holder() == "alpha"
        standby = start(cfg, "--instance", "beta")  # stands by
        await wait_until(lambda: len(slack_texts()) >= N // 5, 60, "the burst under way")
        assert await lease_holder() == "alpha"
        deadline = time.monotonic() + 10
        while not any("beta: standby" in line for line in await report(redis, keys, [])):
            assert time.monotonic() < deadline, "beta never said it stands by"
            await wait_until(lambda: True, 0.1, "a moment")
        shown = "\n".join(await report(redis, keys, []))
        assert "instances:\n  alpha: primary (lease " in shown, shown
        primary.send_signal(signal.SIGKILL)
        primary.wait(10)
        killed = time.monotonic()
        at_kill = len(ids(slack_texts()))
        assert at_kill < N, "the burst was over before the kill: not mid-delivery"
        while await lease_holder() != "beta":  # a poll of the lease key, with a deadline
            assert time.monotonic() - killed < 10, f"no takeover within 10 s ({holder[0]})"
            await wait_until(lambda: True, 0.1, "a moment")
        took_over_s = time.monotonic() - killed
        shown = "\n".join(await report(redis, keys, []))
        assert "  beta: primary (lease " in shown, shown
        await wait_until(
            lambda: len(ids(slack_texts())) == N and len(ids(sms_texts())) == N,
            90, "every alert on both channels after the takeover",
        )  # fmt: skip
    finally:
        if primary.poll() is None:
            primary.kill()
        assert standby is not None
        standby.send_signal(signal.SIGTERM)
        rc = standby.wait(30)
    stderr = standby.stderr.read() if standby.stderr else ""
    assert rc == 0, stderr[-2000:]
    assert "standing by: instance alpha is the primary" in stderr
    assert "instance beta took over as the primary" in stderr
    assert took_over_s < 10
    for name, texts in (("Slack", slack_texts()), ("SMS", sms_texts())):
        chaos.record(
            f"primary SIGKILLed mid-burst of {N}, standby took over in {took_over_s:.1f} s "
            f"({name})",
            range(N),
            [n for t in texts for n in {int(m.group(1)) for m in ID.finditer(t)}],
            up=rc == 0,
            allowed_duplicates=1,
        )
