"""Retry-After on every channel that can say it, through the real clients and the loopback fakes.

A wait the service asks for is honoured in full, however long, holding only that channel's queue;
the wait shows in `tickwatch status` and /metrics; a message is dead-lettered only on a permanent
error or once the time budget (`give_up_after`) is spent, never after a number of quick tries.
Long waits run on a fake clock (`FakeClock`: its `sleep` moves `now` on at once), so a 45 s
Retry-After is shown honoured without spending 45 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import replace
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from daemon.notify.base import Notifier
from daemon.notify.channel_worker import ChannelWorker
from daemon.notify.delivery import Delivery
from daemon.notify.delivery_settings import GIVE_UP_AFTER, DeliveryOptions
from daemon.notify.failure import DeliveryError, parse_retry_after, retry_after_from
from daemon.notify.notification import Notification
from daemon.notify.retry import Clock, RetryPolicy
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.notify.sms import SmsConfig, SmsNotifier
from daemon.notify.webhook import WebhookConfig, WebhookNotifier
from daemon.status import report
from daemon.store.delivery import DeliveryStore
from daemon.store.keys import Keys
from daemon.web.metrics import DaemonCollector
from tests.chaos import ChaosTable
from tests.fakes import RecordedRequest
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.fakes.webhook_server import FakeWebhookServer
from tests.helpers import make_alert, wait_until
from tests.integration.test_delivery import Running, alert, settings

#: Backoff far below any Retry-After used here: a wait that long can only be the service's.
QUICK = RetryPolicy(base_delay=0.01, max_delay=0.05)


class FakeClock(Clock):
    """Wall time that moves only when the worker sleeps: every wait is recorded, none is spent."""

    def __init__(self) -> None:
        self.t = time.time()
        self.sleeps: list[float] = []
        #: requests the fake had answered when each sleep began (set by the test)
        self.seen: list[int] = []
        self.server: Any = None

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:  # no wall-clock steps here: both move only when sleeping
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.server is not None:
            self.seen.append(len(self.server.requests))
        self.t += seconds
        await asyncio.sleep(0)


def slack_channel(server: FakeSlackServer, name: str = "slack") -> SlackNotifier:
    return SlackNotifier(name, SlackConfig(type="slack", token=server.token, channel="#desk",
                                           base_url=server.base_url, rate_limit=1000))  # fmt: skip


def sms_channel(server: FakeTwilioServer, name: str = "sms") -> SmsNotifier:
    return SmsNotifier(name, SmsConfig.model_validate({
        "type": "sms", "account_sid": server.account_sid, "auth_token": server.auth_token,
        "from": "+15550100000", "to": ["+15550100001"], "base_url": server.origin,
        "rate_limit": 1000,
    }))  # fmt: skip


def webhook_channel(server: FakeWebhookServer, name: str = "hook") -> WebhookNotifier:
    return WebhookNotifier(
        name, WebhookConfig(type="webhook", url=server.url, secret=server.secret, timeout=5)
    )


def posts(server: FakeSlackServer) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path.endswith("chat.postMessage")]


async def queue(redis: Redis, keys: Keys, *alerts: Any) -> None:
    for a in alerts:
        await redis.xadd(keys.outbox, {"alert": a.to_json()})


# --- parsing ------------------------------------------------------------------------------------
def test_retry_after_in_seconds_or_as_an_http_date_negative_is_zero() -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after("45") == 45.0
    assert parse_retry_after(" 1 ") == 1.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:42 GMT", now=now) == 42.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:42 -0000", now=now) == 42.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0  # already past
    for bad in (None, "", "soon", "inf", "nan"):
        assert parse_retry_after(bad) is None
    assert retry_after_from({"retry-after": "7"}) == 7.0  # any letter case
    assert retry_after_from({"Retry-After": ["9"]}) == 9.0  # a client keeping every value
    assert retry_after_from({"Content-Type": "text/html"}) is None
    assert retry_after_from(None) is None


def test_give_up_after_defaults_to_an_hour_and_reads_durations() -> None:
    assert DeliveryOptions().give_up_after == GIVE_UP_AFTER == timedelta(hours=1)
    assert DeliveryOptions.model_validate({"give_up_after": "2h30m"}).give_up_after == timedelta(
        hours=2, minutes=30
    )
    assert RetryPolicy().give_up_after == 3600 and RetryPolicy().max_delay == 60
    # backoff for errors without Retry-After: doubling, jittered, capped at 60 s
    p = RetryPolicy()
    assert all(0.25 <= p.delay(1, None) <= 0.5 for _ in range(50))
    assert all(30 <= p.delay(12, None) <= 60 for _ in range(50))
    assert p.delay(99, None) <= 60
    assert p.delay(1, 3600.0) == 3600.0  # the service's word, not capped
    assert p.delay(1, -5.0) == 0.0


# --- each channel reports the wait it was asked for ----------------------------------------------
async def test_twilio_retry_after_reaches_the_worker(twilio_server: FakeTwilioServer) -> None:
    sms = sms_channel(twilio_server)
    twilio_server.rate_limit(retry_after=7)
    twilio_server.rate_limit(retry_after=formatdate(time.time() + 120, usegmt=True))
    twilio_server.server_error()  # a 500 without Retry-After: our own backoff
    n = Notification.single(make_alert(), "sms")
    try:
        with pytest.raises(DeliveryError) as first:
            await sms.deliver(n)
        with pytest.raises(DeliveryError) as second:
            await sms.deliver(n)
        with pytest.raises(DeliveryError) as third:
            await sms.deliver(n)
    finally:
        await sms.aclose()
    assert first.value.retryable and first.value.retry_after == 7.0
    assert "Twilio asks to wait 7s" in str(first.value)
    assert first.value.reason == "rate limited by Twilio"
    assert second.value.retry_after is not None and 110 < second.value.retry_after <= 120
    assert third.value.retryable and third.value.retry_after is None


async def test_slack_retry_after_as_an_http_date(slack_server: FakeSlackServer) -> None:
    slack = slack_channel(slack_server)
    slack_server.rate_limit(retry_after=formatdate(time.time() + 90, usegmt=True))
    try:
        with pytest.raises(DeliveryError) as info:
            await slack.deliver(Notification.single(make_alert(), "slack"))
    finally:
        await slack.aclose()
    assert info.value.retry_after is not None and 80 < info.value.retry_after <= 90
    assert info.value.reason == "rate limited by Slack"


# --- the worker honours it -----------------------------------------------------------------------
async def test_twilio_429_retry_after_1s_is_waited_out_in_real_time(
    redis: Redis, keys: Keys, twilio_server: FakeTwilioServer
) -> None:
    """The report of issue 12: retries came after 0.3, 0.7 and 1.3 s despite `Retry-After: 1`."""
    twilio_server.rate_limit(retry_after=1)
    nots: dict[str, Notifier] = {"sms": sms_channel(twilio_server)}
    await queue(redis, keys, alert(1, ("sms",)))
    d = Delivery(redis, keys, settings(nots), nots, policy=QUICK)
    run = Running(d)
    try:
        await wait_until(lambda: len(twilio_server.sent) == 1, 20, "the SMS after its 429")
    finally:
        await run.stop()
    rate_limited, delivered = twilio_server.requests
    assert (rate_limited.status, delivered.status) == (429, 201)
    assert delivered.at - rate_limited.at >= 0.95, delivered.at - rate_limited.at
    assert d.workers["sms"].stats.retry_after_waits == 1 and d.dead == 0


@pytest.mark.chaos
async def test_slack_429_retry_after_45s_is_honoured_then_delivered_not_dead_lettered(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, chaos: ChaosTable
) -> None:
    clock = FakeClock()
    clock.server = slack_server
    slack_server.rate_limit(retry_after=45)
    nots: dict[str, Notifier] = {"slack": slack_channel(slack_server)}
    await queue(redis, keys, alert(1, ("slack",)))
    d = Delivery(redis, keys, settings(nots), nots, policy=QUICK, clock=clock)
    run = Running(d)
    try:
        await run.settled(redis, keys)
    finally:
        await run.stop()
    assert [r.status for r in posts(slack_server)] == [429, 200]
    assert clock.sleeps == [45.0]  # the whole wait Slack asked for, above the 0.05 s backoff cap
    assert clock.seen == [1]  # slept after the 429 and before the retry
    assert d.sent == {"slack": 1} and d.dead == 0
    assert await redis.xlen(keys.deadletter) == 0
    assert not await redis.exists(keys.delivery_waits)  # the wait is over, and not shown
    chaos.record(
        "Slack 429 with Retry-After 45 s (the worker's clock simulated)",
        ["1"],
        ["1"] * d.sent.get("slack", 0),
        up=d.dead == 0,
        note="waited 45.0 s, not dead-lettered",
    )


@pytest.mark.parametrize("form", ["seconds", "http-date"])
async def test_webhook_503_retry_after_in_either_form_is_honoured(
    redis: Redis, keys: Keys, webhook_server: FakeWebhookServer, form: str
) -> None:
    clock = FakeClock()
    clock.server = webhook_server
    value = "120" if form == "seconds" else formatdate(time.time() + 120, usegmt=True)
    webhook_server.fail_with(503, retry_after=value)
    nots: dict[str, Notifier] = {"hook": webhook_channel(webhook_server)}
    await queue(redis, keys, alert(1, ("hook",)))
    d = Delivery(redis, keys, settings(nots), nots, policy=QUICK, clock=clock)
    run = Running(d)
    try:
        await run.settled(redis, keys)
    finally:
        await run.stop()
    assert [r.status for r in webhook_server.requests] == [503, 200]
    [slept] = clock.sleeps
    assert 118 < slept <= 120
    assert len(webhook_server.deliveries) == 1 and d.dead == 0


# --- the time budget -----------------------------------------------------------------------------
async def test_the_time_budget_dead_letters_an_alert_that_keeps_failing_with_500s(
    redis: Redis, keys: Keys, webhook_server: FakeWebhookServer
) -> None:
    clock = FakeClock()
    webhook_server.fail_with(500, times=10_000)
    nots: dict[str, Notifier] = {"hook": webhook_channel(webhook_server)}
    told: list[str] = []

    async def ops(failing: str, summary: str, labels: Any) -> None:
        told.append(summary)

    await queue(redis, keys, alert(1, ("hook",)))
    [(entry_id, _)] = await redis.xrange(keys.outbox)
    budget = timedelta(minutes=10)
    s = replace(settings(nots), give_up_after=budget)  # `delivery: {give_up_after: 10m}`
    d = Delivery(redis, keys, s, nots, clock=clock, ops=ops)  # the default backoff policy
    run = Running(d)
    try:
        await run.settled(redis, keys)
    finally:
        await run.stop()
    assert d.dead == 1 and d.sent == {"hook": 0}
    [(_, dead)] = await redis.xrange(keys.deadletter)
    assert "HTTP 500" in dead["reason"] and "delivery.give_up_after is 10m" in dead["reason"]
    queued_ms = int(entry_id.split("-")[0])
    # not given up early: dead-lettered only once the budget was spent
    assert int(dead["ts"]) >= queued_ms + budget.total_seconds() * 1000 - 1000
    attempts = int(dead["attempts"])
    assert attempts == len(webhook_server.requests) > 4  # far more than the old 4 quick tries
    assert max(clock.sleeps) <= 60  # backoff capped at a minute
    assert clock.sleeps[:3] == sorted(clock.sleeps[:3])  # and growing at first
    assert len(set(clock.sleeps)) > len(clock.sleeps) // 2  # jittered, not lockstep
    assert d.workers["hook"].stats.retry_after_waits == 0
    assert len(told) == 1 and "dead letters" in told[0]


async def test_a_retry_after_past_the_budget_dead_letters_at_once(
    redis: Redis, keys: Keys, webhook_server: FakeWebhookServer
) -> None:
    clock = FakeClock()
    webhook_server.fail_with(429, retry_after="7200")  # two hours, with a budget of one
    nots: dict[str, Notifier] = {"hook": webhook_channel(webhook_server)}
    await queue(redis, keys, alert(1, ("hook",)))
    d = Delivery(redis, keys, settings(nots), nots, clock=clock)
    run = Running(d)
    try:
        await run.settled(redis, keys)
    finally:
        await run.stop()
    assert clock.sleeps == [] and d.dead == 1
    [(_, dead)] = await redis.xrange(keys.deadletter)
    assert "asked to wait 2h, past the time left for it" in dead["reason"]


# --- one channel held, the others flowing; what status and /metrics say --------------------------
def metrics(d: Delivery) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    daemon: Any = SimpleNamespace(evaluator=None, delivery=d, sources=[], standby=False)
    registry.register(DaemonCollector(daemon))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_channel_held_by_a_long_retry_after_does_not_hold_the_others(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> None:
    slack_server.rate_limit(retry_after=90)  # real time: longer than this test
    nots: dict[str, Notifier] = {"slack": slack_channel(slack_server),
                                 "sms": sms_channel(twilio_server)}  # fmt: skip
    await queue(redis, keys, *(alert(i, ("slack", "sms")) for i in range(5)))
    d = Delivery(redis, keys, settings(nots), nots, policy=QUICK)
    run = Running(d)
    slack = d.workers["slack"]
    try:
        await wait_until(lambda: len(twilio_server.sent) == 5, 20, "every SMS while Slack waits")
        assert slack.waiting is not None
        assert [r.status for r in posts(slack_server)] == [429]  # no early retry
        assert 80 < slack.next_attempt_in() <= 90

        lines = await report(redis, keys, ["slack", "sms"])
        status = "\n".join(lines)
        print("\n" + status)
        [held] = [line for line in lines if line.startswith("    slack: ")]
        assert held.startswith("    slack: rate limited by Slack, next try in 9")  # 90/89 s
        assert re.search(r"\(Retry-After 90 s, attempt 1, dead-lettered if still failing in "
                         r"(1h|59m\d+s)\)$", held), held  # fmt: skip
        assert not any(line.startswith("    sms: ") for line in lines)

        m = metrics(d)
        print({k: v for k, v in m.items() if k[0].startswith("tickwatch_delivery")})
        slack_label, sms_label = (("channel", "slack"),), (("channel", "sms"),)
        assert 80 < m[("tickwatch_delivery_next_attempt_seconds", slack_label)] <= 90
        assert m[("tickwatch_delivery_next_attempt_seconds", sms_label)] == 0
        assert m[("tickwatch_delivery_retry_after_waits_total", slack_label)] == 1
        assert m[("tickwatch_delivery_retries_total", slack_label)] == 1
        assert m[("tickwatch_notifications_sent_total", sms_label)] == 5

        # stopping does not sit out the wait: the message stays queued for the next start
        loop = asyncio.get_running_loop()
        started = loop.time()
        await d.finish(timeout=10)
        assert loop.time() - started < 2
    finally:
        await run.stop()
    assert d.dead == 0 and d.sent == {"slack": 0, "sms": 5}
    assert (await redis.xpending(keys.deliver("slack"), keys.DELIVER_GROUP))["pending"] == 1
    assert not await redis.exists(keys.delivery_waits)


async def test_a_message_held_for_retry_after_is_not_taken_by_another_replica(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer
) -> None:
    """A long wait outlasts `claim_idle_ms`: the holder keeps its claim fresh, so a second replica's
    XAUTOCLAIM does not take the message and send it before Slack said to."""
    slack_server.rate_limit(retry_after=1)
    holder, other = (
        ChannelWorker(
            DeliveryStore(redis, keys, "slack", consumer=consumer),
            slack_channel(slack_server),
            policy=QUICK,
            claim_idle_ms=200,
        )
        for consumer in ("worker-1", "worker-2")
    )
    await redis.xgroup_create(keys.deliver("slack"), keys.DELIVER_GROUP, id="0", mkstream=True)
    n = Notification.single(alert(1, ("slack",)), "slack")
    await redis.xadd(keys.deliver("slack"), {"n": n.to_json()})
    task = asyncio.create_task(holder.run())
    try:
        await wait_until(lambda: holder.waiting is not None, 10, "the holder waiting")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while holder.stats.sent == 0:  # poll the other replica until the holder's retry lands
            assert loop.time() < deadline, "the held message was never delivered"
            assert await other.reclaim() == [], "another replica took the held message"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for w in (holder, other):
            await w.notifier.aclose()
    assert [r.status for r in posts(slack_server)] == [429, 200]
    assert posts(slack_server)[1].at - posts(slack_server)[0].at >= 0.95


def test_give_up_after_is_set_in_alerts_yaml(tmp_path: Path) -> None:
    import datetime as dt

    from daemon.config import ConfigError, load_config

    (tmp_path / "alerts.yaml").write_text(
        "channels: {console: {type: console}}\ndelivery: {give_up_after: 2h}\n"
    )
    assert load_config(tmp_path / "alerts.yaml", env={}).delivery.give_up_after == dt.timedelta(
        hours=2
    )
    (tmp_path / "alerts.yaml").write_text(
        "channels: {console: {type: console}}\ndelivery: {give_up: 2h}\n"
    )
    with pytest.raises(ConfigError, match="give_up"):
        load_config(tmp_path / "alerts.yaml", env={})
