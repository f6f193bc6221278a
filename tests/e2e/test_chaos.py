"""Chaos: Redis goes away mid-scenario and comes back; the daemon rides it out.

Every stage must notice, back off, and resume from what Redis persisted: no crash, no alert
lost, none sent twice (this test stops Redis cleanly, so no acknowledged write is lost).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.app import Daemon
from daemon.store.embedded import EmbeddedRedis
from daemon.store.keys import Keys
from tests.chaos import ChaosTable
from tests.e2e.test_e2e import SPREAD_RULE, shipped_config, slack_alert_ids
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


async def slack_bound(redis_url: str, prefix: str) -> set[str]:
    """Every alert the evaluator told that is routed to Slack (read from the outbox)."""
    r = Redis.from_url(redis_url, decode_responses=True)
    try:
        rows = await r.xrange(Keys(prefix).outbox)
    finally:
        await r.aclose()
    alerts = [AlertEvent.from_json(f["alert"]) for _, f in rows]
    return {a.id for a in alerts if "slack_desk" in a.channels}


async def test_redis_restart_mid_scenario_loses_and_duplicates_nothing(
    repo: Path,
    tmp_path: Path,
    slack_server: FakeSlackServer,
    twilio_server: FakeTwilioServer,
    caplog: pytest.LogCaptureFixture,
    chaos: ChaosTable,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tickwatch")
    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    try:
        cfg = shipped_config(repo, server.url, slack_server, twilio_server,
                             TICKWATCH_REPLAY_SPEED="150000")  # fmt: skip
        cfg.settings.sources[0].max_gap = type(cfg.settings.sources[0].max_gap)(seconds=0.05)
        console = io.StringIO()
        daemon = Daemon(cfg, console=console)
        await daemon.start()
        try:
            delivery = daemon.delivery
            assert delivery is not None
            await wait_until(
                lambda: sum(delivery.sent.values()) >= 1 and delivery.in_flight == 0,
                what="a first alert delivered and no send in flight",
            )
            assert daemon.sources[0].accepted < 70_000, "replay already done: not mid-scenario"
            # Stop Redis without yielding to the loop, so no send starts in between: a send
            # caught between Slack's answer and its marker write is the documented duplicate
            # window of at-least-once delivery, not what this test is about.
            server.stop()
            await asyncio.sleep(1.0)  # the outage: every stage hits a dead socket
            assert not daemon.failed.is_set()
            await asyncio.to_thread(server.start)
            await wait_until(
                lambda: any(
                    i.startswith(SPREAD_RULE) and i.endswith(":resolved")
                    for i in slack_alert_ids(slack_server)
                ),
                timeout=120,
                what="the spread alert to fire and resolve after the outage",
            )
            assert not daemon.failed.is_set()
            expected = await slack_bound(server.url, cfg.settings.redis.prefix)
        finally:
            await daemon.stop()
    finally:
        server.stop()
    chaos.record(
        "Redis (external) stopped 1 s mid-replay and restarted",
        expected,
        slack_alert_ids(slack_server),
        up=not daemon.failed.is_set(),
    )
    lost = {r.message.split(" lost Redis")[0] for r in caplog.records if "lost Redis" in r.message}
    assert {"evaluator", "router", "deliver slack_desk", "source sample"} <= lost, lost
    delivered = Counter(slack_alert_ids(slack_server))
    assert all(n == 1 for n in delivered.values()), delivered
    rules = {i.split("{")[0] for i in delivered}
    assert {SPREAD_RULE, "megacap-ai-capex-guidance", "cloud-demand-digestion"} <= rules
