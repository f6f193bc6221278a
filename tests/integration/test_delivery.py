"""Delivery end to end on real Redis: router → per-channel streams → workers → real clients.

Slack and Twilio go through their real clients against the loopback fakes; `Recorder` is a
channel of our own for what no real service exposes (holding a send mid-flight, counting).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from daemon.alerts import AlertEvent
from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.channel_worker import ChannelWorker
from daemon.notify.delivery import Delivery
from daemon.notify.delivery_settings import DeliverySettings
from daemon.notify.failure import DeliveryError
from daemon.notify.inhibit import InhibitRule
from daemon.notify.notification import Notification, Receipt
from daemon.notify.retry import RetryPolicy
from daemon.notify.route_tree import RouteConfig
from daemon.notify.silence_book import SilenceStore
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.notify.sms import SmsConfig, SmsNotifier
from daemon.store.delivery import DeliveryStore
from daemon.store.keys import Keys
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)


def alert(
    n: int = 1,
    channels: tuple[str, ...] = ("slack", "sms"),
    *,
    state: str = "firing",
    severity: str = "warning",
    seq: int = 1,
    ts_ms: int | None = None,
    symbol: str = "NVDA",
    rule: str = "nvda-high",
) -> AlertEvent:
    return AlertEvent(
        rule=rule,
        key=f"{rule}{{n={n},symbol={symbol}}}",
        state=state,  # type: ignore[arg-type]
        seq=seq,
        ts_ms=int(time.time() * 1000) if ts_ms is None else ts_ms,
        severity=severity,  # type: ignore[arg-type]
        summary=f"{symbol} above 100 (#{n})",
        channels=channels,
        labels={"symbol": symbol, "n": str(n)},
        value=101.0,
        threshold=100.0,
        comparison="above",
    )


class Recorder(Notifier):
    """A channel that records what it is asked to send; it can hold or fail sends on demand."""

    kind = "recorder"
    config_model = ChannelConfig

    def __init__(self, name: str = "rec") -> None:
        super().__init__(name, ChannelConfig(type="recorder"))
        self.got: list[Notification] = []
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.fail: DeliveryError | None = None

    async def send(self, n: Notification) -> Receipt | None:
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.got.append(n)
        return {"ts": str(len(self.got))}


def real_notifiers(slack: FakeSlackServer, twilio: FakeTwilioServer) -> dict[str, Notifier]:
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


def settings(
    notifiers: Mapping[str, Notifier],
    route: dict[str, Any] | None = None,
    inhibit: list[dict[str, Any]] | None = None,
    max_age_ms: int = 15 * 60_000,
) -> DeliverySettings:
    return DeliverySettings(
        route=RouteConfig.model_validate(route) if route is not None else None,
        inhibit_rules=[InhibitRule.model_validate(r) for r in inhibit or []],
        max_alert_age_ms=max_age_ms,
        channels={name: n.config for name, n in notifiers.items()},
    )


class Running:
    """Delivery's stages as tasks, like the daemon runs them; `settled` waits for quiet."""

    def __init__(self, d: Delivery):
        self.d = d
        self.tasks = [asyncio.create_task(loop(), name=name) for name, loop in d.stages()]

    async def settled(self, redis: Redis, keys: Keys, timeout: float = 20) -> None:
        async def drained() -> bool:
            try:
                out = await redis.xinfo_groups(keys.outbox)
            except ResponseError:
                return False  # the router has not created its group yet
            router = next((g for g in out if g["name"] == keys.NOTIFY_GROUP), None)
            last_in = (await redis.xinfo_stream(keys.outbox))["last-generated-id"]
            if router is None or router["pending"] or router["last-delivered-id"] != last_in:
                return False
            for ch in self.d.workers:
                stream = keys.deliver(ch)
                if not await redis.exists(stream):
                    continue
                info = await redis.xinfo_groups(stream)
                group = next((g for g in info if g["name"] == keys.DELIVER_GROUP), None)
                last = (await redis.xinfo_stream(stream))["last-generated-id"]
                if group is None or group["pending"] or group["last-delivered-id"] != last:
                    return False
            return self.d.router.idle.is_set() and not self.d.router.next_due_ms()

        deadline = time.monotonic() + timeout
        while not await drained():
            assert time.monotonic() < deadline, "delivery did not settle"
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for w in self.d.workers.values():
            await w.notifier.aclose()


async def deliver(
    redis: Redis, keys: Keys, notifiers: Mapping[str, Notifier], alerts: list[AlertEvent], **kw: Any
) -> Delivery:
    for a in alerts:
        await redis.xadd(keys.outbox, {"alert": a.to_json()})
    d = Delivery(redis, keys, settings(notifiers, **kw), notifiers, policy=FAST)
    run = Running(d)
    try:
        await run.settled(redis, keys)
    finally:
        await run.stop()
    return d


# --- the guarantees of the old dispatcher, kept ---------------------------------------------------
async def test_each_alert_reaches_each_channel_once(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> None:
    alerts = [alert(1), alert(2)]
    d = await deliver(redis, keys, real_notifiers(slack_server, twilio_server), alerts)
    assert len(slack_server.messages) == 2
    assert [m["to"] for m in twilio_server.sent] == ["+15550100001"] * 2
    assert d.sent == {"slack": 2, "sms": 2}
    # the same transitions arriving again (a redelivery) are recognised and not re-sent
    d2 = await deliver(redis, keys, real_notifiers(slack_server, twilio_server), alerts)
    assert len(slack_server.messages) == 2 and len(twilio_server.sent) == 2
    assert d2.skipped_duplicate == 4


async def test_retryable_errors_retried_permanent_ones_dead_lettered_with_an_ops_alert(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> None:
    slack_server.server_error(status=500, times=1)
    slack_server.rate_limit(retry_after=0, times=1)
    twilio_server.unsubscribe("+15550100001")  # 21610: never retry
    told: list[tuple[str, str]] = []

    async def ops(failing: str, summary: str, labels: Mapping[str, str]) -> None:
        told.append((failing, summary))

    notifiers = real_notifiers(slack_server, twilio_server)
    await redis.xadd(keys.outbox, {"alert": alert(3).to_json()})
    d = Delivery(redis, keys, settings(notifiers), notifiers, policy=FAST, ops=ops)
    run = Running(d)
    try:
        await run.settled(redis, keys)
    finally:
        await run.stop()
    posts = [r for r in slack_server.requests if r.path.endswith("chat.postMessage")]
    assert [r.status for r in posts] == [500, 429, 200]
    assert d.sent == {"slack": 1, "sms": 0}
    dead = await redis.xrange(keys.deadletter)
    assert len(dead) == 1 and dead[0][1]["channel"] == "sms" and "21610" in dead[0][1]["reason"]
    assert len([r for r in twilio_server.requests if r.method == "POST"]) == 1
    assert len(told) == 1 and told[0][0] == "sms" and "deadletter" in told[0][1]


async def test_malformed_entries_are_dead_lettered_and_acked(redis: Redis, keys: Keys) -> None:
    rec = Recorder()
    await redis.xadd(keys.outbox, {"alert": "{not json"})
    await redis.xadd(keys.deliver("rec"), {"n": "{nor this"})
    d = await deliver(redis, keys, {"rec": rec}, [alert(4, ("rec",))])
    assert [n.alert.key for n in rec.got] == [alert(4).key]
    reasons = [f["reason"] for _, f in await redis.xrange(keys.deadletter)]
    assert len(reasons) == 2 and all(r.startswith("malformed") for r in reasons)
    assert d.dead == 1  # the worker's; the router's own is counted in the stream only


# --- one stream per channel ---------------------------------------------------------------------
async def test_a_stalled_channel_does_not_delay_the_other(redis: Redis, keys: Keys) -> None:
    slow, fast = Recorder("slow"), Recorder("fast")
    slow.gate = asyncio.Event()
    notifiers = {"slow": slow, "fast": fast}
    for i in range(20):
        await redis.xadd(keys.outbox, {"alert": alert(i, ("slow", "fast")).to_json()})
    d = Delivery(redis, keys, settings(notifiers), notifiers, policy=FAST)
    run = Running(d)
    try:
        await wait_until(lambda: len(fast.got) == 20, 20, "the fast channel delivers everything")
        assert slow.got == [] and d.in_flight == 1  # one send held on the slow channel
        slow.gate.set()
        await run.settled(redis, keys)
    finally:
        await run.stop()
    assert len(slow.got) == 20


async def test_a_dead_workers_messages_are_reclaimed(redis: Redis, keys: Keys) -> None:
    rec = Recorder()
    n = Notification.single(alert(5, ("rec",)), "rec")
    stream = keys.deliver("rec")
    await redis.xgroup_create(stream, keys.DELIVER_GROUP, id="0", mkstream=True)
    await redis.xadd(stream, {"n": n.to_json()})
    # another replica took it and died before acknowledging
    got = await redis.xreadgroup(keys.DELIVER_GROUP, "worker-gone", {stream: ">"}, count=1)
    assert got and got[0][1]
    w = ChannelWorker(
        DeliveryStore(redis, keys, "rec", consumer="worker-2"), rec, policy=FAST, claim_idle_ms=50
    )
    task = asyncio.create_task(w.run())
    try:
        await wait_until(lambda: len(rec.got) == 1, 20, "the orphaned message is delivered")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert w.stats.reclaimed == 1
    assert (await redis.xpending(stream, keys.DELIVER_GROUP))["pending"] == 0


async def test_a_crash_after_sending_and_before_acking_does_not_send_twice(
    redis: Redis, keys: Keys
) -> None:
    rec = Recorder()
    n = Notification.single(alert(6, ("rec",)), "rec")
    stream = keys.deliver("rec")
    await redis.xgroup_create(stream, keys.DELIVER_GROUP, id="0", mkstream=True)
    await redis.xadd(stream, {"n": n.to_json()})
    await redis.xreadgroup(keys.DELIVER_GROUP, "worker-1", {stream: ">"}, count=1)
    await redis.set(keys.delivered(n.key, "rec"), "done")  # sent and marked, then killed
    w = ChannelWorker(DeliveryStore(redis, keys, "rec", consumer="worker-1"), rec, policy=FAST)
    task = asyncio.create_task(w.run())
    try:
        await wait_until(lambda: w.stats.skipped_duplicate == 1, 20, "recognised as sent")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert rec.got == []


async def test_graceful_stop_finishes_the_send_under_way(redis: Redis, keys: Keys) -> None:
    rec = Recorder()
    rec.gate = asyncio.Event()
    a, b = alert(1, ("rec",)), alert(2, ("rec",))
    for x in (a, b):
        await redis.xadd(keys.outbox, {"alert": x.to_json()})
    d = Delivery(redis, keys, settings({"rec": rec}), {"rec": rec}, policy=FAST)
    run = Running(d)
    try:
        await asyncio.wait_for(rec.started.wait(), 10)
        finishing = asyncio.create_task(d.finish(timeout=10))
        await asyncio.sleep(0.05)  # give finish() the chance to (wrongly) return early
        assert not finishing.done() and d.in_flight == 1
        rec.gate.set()
        await asyncio.wait_for(finishing, 10)
    finally:
        await run.stop()
    assert [n.alert.key for n in rec.got] == [a.key]
    assert await redis.get(keys.delivered(f"{a.id}@rec", "rec")) == "done"
    assert await redis.get(keys.delivered(f"{b.id}@rec", "rec")) is None


# --- routing stages against Redis ----------------------------------------------------------------
async def test_resolve_goes_only_where_the_firing_went_and_threads_under_it(
    redis: Redis, keys: Keys
) -> None:
    desk, phone = Recorder("desk"), Recorder("phone")
    notifiers = {"desk": desk, "phone": phone}
    route = {"routes": [{"match": {"severity": "critical"}, "channels": ["phone", "desk"]}]}
    fire = alert(1, ("desk",), severity="critical")
    resolve = alert(1, ("desk",), severity="critical", state="resolved")
    await deliver(redis, keys, notifiers, [fire, resolve], route=route)
    assert [n.alert.state for n in phone.got] == ["firing", "resolved"]
    assert phone.got[1].thread == {"ts": "1"}  # the receipt of the firing message
    # a firing that was silenced is not followed by a lone resolve
    store = SilenceStore(redis, keys)
    await store.add(["symbol=MSFT"], author="ann", reason="known", ends_ms=fire.ts_ms + 60_000)
    quiet = [
        alert(2, ("desk",), symbol="MSFT"),
        alert(2, ("desk",), symbol="MSFT", state="resolved"),
    ]
    await deliver(redis, keys, notifiers, quiet)
    assert all(n.alert.labels["symbol"] == "NVDA" for n in desk.got)
    assert await redis.hget(keys.suppressed, "silenced:desk") == "1"


async def test_inhibition_and_grouping(redis: Redis, keys: Keys) -> None:
    rec = Recorder()
    inhibit = [
        {"source": ["severity=critical"], "target": ["severity=warning"], "equal": ["symbol"]}
    ]
    crit = alert(1, ("rec",), severity="critical", rule="down-8")
    warn = alert(2, ("rec",), rule="down-3")
    other = alert(3, ("rec",), rule="down-3", symbol="MSFT")
    await deliver(redis, keys, {"rec": rec}, [crit, warn, other], inhibit=inhibit)
    assert sorted(n.alert.key for n in rec.got) == sorted([crit.key, other.key])
    # grouping: three alerts, one message
    rec2 = Recorder()
    grouped = [alert(i, ("rec",), symbol="AMZN") for i in range(3)]
    await deliver(redis, keys, {"rec": rec2}, grouped,
                  route={"group_by": ["symbol"], "group_wait": "50ms"})  # fmt: skip
    assert len(rec2.got) == 1 and rec2.got[0].kind == "group" and len(rec2.got[0].alerts) == 3


async def test_catch_up_records_old_alerts_and_says_so_once(redis: Redis, keys: Keys) -> None:
    rec = Recorder()
    old = int(time.time() * 1000) - 3600_000
    backlog = [alert(i, ("rec",), ts_ms=old + i) for i in range(30)]
    fresh = alert(99, ("rec",))
    await deliver(redis, keys, {"rec": rec}, [*backlog, fresh])
    notices = [n for n in rec.got if n.kind == "notice"]
    alerts = [n for n in rec.got if n.kind == "alert"]
    assert [n.alert.key for n in alerts] == [fresh.key]  # no flood: only the fresh one
    assert len(notices) == 1 and "30 alert(s)" in notices[0].text
    assert await redis.hget(keys.suppressed, "stale:rec") == "30"


async def test_daily_cap_sends_one_notice_then_records(redis: Redis, keys: Keys) -> None:
    rec = Recorder()
    rec.config = ChannelConfig.model_validate({"type": "recorder", "daily_cap": 2})
    await deliver(redis, keys, {"rec": rec}, [alert(i, ("rec",)) for i in range(5)])
    kinds = [n.kind for n in rec.got]
    assert kinds == ["alert", "alert", "notice"]
    assert "daily cap of 2" in rec.got[2].text
    assert await redis.hget(keys.suppressed, "cap:rec") == "3"


@pytest.mark.parametrize("bad", [{"n": "x"}])
async def test_worker_survives_bad_entries(redis: Redis, keys: Keys, bad: dict[str, str]) -> None:
    rec = Recorder()
    await redis.xadd(keys.deliver("rec"), bad)
    d = await deliver(redis, keys, {"rec": rec}, [alert(8, ("rec",))])
    assert len(rec.got) == 1 and d.dead == 1


# --- transport failures through the real clients ------------------------------------------------
@pytest.mark.parametrize("failure", ["dropped connection", "timeout"])
async def test_dropped_connections_and_timeouts_are_retried(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer,
    failure: str,
) -> None:  # fmt: skip
    nots = real_notifiers(slack_server, twilio_server)
    slack = nots["slack"]
    assert isinstance(slack, SlackNotifier)
    slack.config.timeout = 0.3
    if failure == "dropped connection":
        slack_server.drop_next = twilio_server.drop_next = 1
    else:
        slack_server.hold = asyncio.Event()  # Slack answers nothing until released
    await redis.xadd(keys.outbox, {"alert": alert(9).to_json()})
    d = Delivery(redis, keys, settings(nots), nots, policy=FAST)
    run = Running(d)
    try:
        if failure == "timeout":
            # the first request times out on the client; its retry arrives while still stalled
            await wait_until(lambda: len(slack_server.requests) >= 2, 10, "a retry after a timeout")
            slack_server.hold.set()
        await run.settled(redis, keys)
    finally:
        await run.stop()
    assert d.sent == {"slack": 1, "sms": 1} and d.dead == 0
    posts = [r for r in slack_server.requests if r.path.endswith("chat.postMessage")]
    assert len(posts) == 2  # the failed attempt, then the retry
    assert d.workers["slack"].stats.sent == 1
    if failure == "dropped connection":
        assert posts[0].status == -1 and len(twilio_server.sent) == 1


async def test_one_shot_alerts_neither_inhibit_nor_linger(redis: Redis, keys: Keys) -> None:
    """A crossing or a headline never resolves: it must not count as firing afterwards."""
    rec = Recorder()
    inhibit = [
        {"source": ["severity=critical"], "target": ["severity=warning"], "equal": ["symbol"]}
    ]
    crossing = replace(alert(1, ("rec",), severity="critical", rule="nvda-cross"), resolves=False)
    warn = alert(2, ("rec",), rule="nvda-down")
    await deliver(redis, keys, {"rec": rec}, [crossing, warn], inhibit=inhibit)
    assert sorted(n.alert.key for n in rec.got) == sorted([crossing.key, warn.key])
    assert await redis.hlen(keys.firing) == 1 and await redis.hexists(keys.firing, warn.key)
    assert not await redis.hexists(keys.told, f"{crossing.key}#1")
