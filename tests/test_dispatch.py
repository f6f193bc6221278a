"""Delivery from the outbox to real notifier clients against the fakes, with real Redis."""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.notify.base import ChannelConfig, Notification, Notifier, Receipt
from daemon.notify.dispatch import Dispatcher, RetryPolicy
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.notify.sms import SmsConfig, SmsNotifier
from daemon.store.keys import Keys
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import run_until_idle as run_stage


def one(alert: AlertEvent) -> Notification:
    """One alert transition as the notification a channel is asked to send."""
    return Notification.single(alert, "test")


FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def alert(n: int = 1, channels: tuple[str, ...] = ("slack", "sms")) -> AlertEvent:
    return AlertEvent(
        rule="nvda-high",
        key=f"nvda-high{{n={n}}}",
        state="firing",
        seq=1,
        ts_ms=1_775_000_000_000,
        severity="warning",
        summary=f"NVDA above 100 (#{n})",
        channels=channels,
        labels={"symbol": "NVDA"},
        value=101.0,
        threshold=100.0,
        comparison="above",
    )


def notifiers(slack: FakeSlackServer, twilio: FakeTwilioServer) -> dict:  # type: ignore[type-arg]
    return {
        "slack": SlackNotifier(
            "slack",
            SlackConfig(type="slack", token=slack.token, channel="#desk", base_url=slack.base_url),
        ),
        "sms": SmsNotifier(
            "sms",
            SmsConfig.model_validate({
                "type": "sms", "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token, "from": "+15550100000",
                "to": ["+15550100001"], "base_url": twilio.origin,
            }),
        ),
    }  # fmt: skip


async def run_until_idle(d: Dispatcher) -> None:
    try:
        await run_stage(d.run, d.idle)
    finally:
        for n in d.notifiers.values():
            await n.aclose()


async def test_each_alert_reaches_each_channel_once(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> None:
    for n in (1, 2):
        await redis.xadd(keys.outbox, {"alert": alert(n).to_json()})
    d = Dispatcher(redis, keys, notifiers(slack_server, twilio_server), policy=FAST)
    await run_until_idle(d)
    assert len(slack_server.messages) == 2
    assert [m["to"] for m in twilio_server.sent] == ["+15550100001"] * 2
    assert (await redis.xpending(keys.outbox, keys.NOTIFY_GROUP))["pending"] == 0

    # the same transitions arriving again (a redelivery) are recognised and not re-sent
    for n in (1, 2):
        await redis.xadd(keys.outbox, {"alert": alert(n).to_json()})
    d2 = Dispatcher(redis, keys, notifiers(slack_server, twilio_server), policy=FAST)
    await run_until_idle(d2)
    assert len(slack_server.messages) == 2 and len(twilio_server.sent) == 2
    assert d2.stats.skipped_duplicate == 4


async def test_unacked_entry_after_crash_skips_channels_already_done(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> None:
    a = alert(7)
    await redis.xadd(keys.outbox, {"alert": a.to_json()})
    d = Dispatcher(redis, keys, notifiers(slack_server, twilio_server), policy=FAST)
    await d.store.ensure_group(keys.outbox, keys.NOTIFY_GROUP)
    # simulate: read (pending), Slack sent and marked, then the process died before SMS + ack
    entries = await d.store.read_group(
        (keys.outbox,), keys.NOTIFY_GROUP, d.consumer, count=10, block_ms=100
    )
    await d.notifiers["slack"].send(one(a))
    await redis.set(keys.delivered(a.id, "slack"), "done")
    assert len(entries) == 1 and len(twilio_server.sent) == 0

    restarted = Dispatcher(redis, keys, notifiers(slack_server, twilio_server), policy=FAST)
    await run_until_idle(restarted)
    assert len(slack_server.messages) == 1  # not sent again
    assert len(twilio_server.sent) == 1  # the missing channel was completed
    assert (await redis.xpending(keys.outbox, keys.NOTIFY_GROUP))["pending"] == 0


async def test_retryable_errors_are_retried_and_permanent_ones_dead_lettered(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> None:
    slack_server.server_error(status=500, times=1)
    slack_server.rate_limit(retry_after=0, times=1)
    twilio_server.unsubscribe("+15550100001")  # 21610: never retry
    await redis.xadd(keys.outbox, {"alert": alert(3).to_json()})
    d = Dispatcher(redis, keys, notifiers(slack_server, twilio_server), policy=FAST)
    await run_until_idle(d)
    slack_posts = [r for r in slack_server.requests if r.path.endswith("chat.postMessage")]
    assert [r.status for r in slack_posts] == [500, 429, 200]
    assert d.stats.sent == {"slack": 1}
    dead = await redis.xrange(keys.deadletter)
    assert len(dead) == 1
    assert dead[0][1]["channel"] == "sms" and "21610" in dead[0][1]["reason"]
    twilio_posts = [r for r in twilio_server.requests if r.method == "POST"]
    assert len(twilio_posts) == 1  # a permanent error is not retried


async def test_malformed_outbox_entry_is_dead_lettered_and_acked(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> None:
    await redis.xadd(keys.outbox, {"alert": "{not json"})
    await redis.xadd(keys.outbox, {"alert": alert(4).to_json()})
    d = Dispatcher(redis, keys, notifiers(slack_server, twilio_server), policy=FAST)
    await run_until_idle(d)
    assert len(slack_server.messages) == 1
    dead = await redis.xrange(keys.deadletter)
    assert len(dead) == 1 and dead[0][1]["reason"].startswith("malformed")
    assert (await redis.xpending(keys.outbox, keys.NOTIFY_GROUP))["pending"] == 0


class GateNotifier(Notifier):
    """A channel whose sends wait for the test to open a gate: a delivery held mid-flight."""

    kind = "gate"
    config_model = ChannelConfig

    def __init__(self) -> None:
        super().__init__("gate", ChannelConfig(type="gate"))
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, n: Notification) -> Receipt | None:
        self.started.set()
        await self.gate.wait()
        self.sent.append(n.alert.id)
        return None


async def test_graceful_stop_finishes_the_delivery_under_way(redis: Redis, keys: Keys) -> None:
    gate = GateNotifier()
    a, b = alert(1, channels=("gate",)), alert(2, channels=("gate",))
    await redis.xadd(keys.outbox, {"alert": a.to_json()})
    await redis.xadd(keys.outbox, {"alert": b.to_json()})
    d = Dispatcher(redis, keys, {"gate": gate}, policy=FAST)
    task = asyncio.create_task(d.run())
    await asyncio.wait_for(gate.started.wait(), 10)
    finishing = asyncio.create_task(d.finish(timeout=10))
    await asyncio.sleep(0.05)  # give finish() the chance to (wrongly) return early
    assert not finishing.done() and d.in_flight == 1
    gate.gate.set()
    await asyncio.wait_for(finishing, 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert gate.sent == [a.id]  # the first completed; the second was not started
    assert await redis.get(keys.delivered(a.id, "gate")) == "done"
    assert await redis.get(keys.delivered(b.id, "gate")) is None
    pending = await redis.xpending(keys.outbox, keys.NOTIFY_GROUP)
    assert pending["pending"] == 1  # b waits for the next start
