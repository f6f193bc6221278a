"""Escalation: an unacknowledged firing is sent on; an ack anywhere, a resolve or the rule's
removal ends the chain; a snooze defers it; a restart or a repeated transition sends no step twice.

Real Redis, the real escalator and stores, and (for the end-to-end cases) the real delivery
stages sending SMS through the twilio client to the loopback fake of Twilio. Steps are mostly
taken at explicit times (`take_due(now_ms=...)`), so no test waits out an escalation delay.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.notify.acks import AckBook
from daemon.notify.delivery import Delivery
from daemon.notify.desk import Desk, NoSuchAlert
from daemon.notify.escalation import Chain
from daemon.notify.escalator import Escalator
from daemon.notify.notification import Notification
from daemon.notify.silence_book import SilenceStore
from daemon.rules import Escalate
from daemon.store import EscalationStore, Keys
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.integration.test_delivery import FAST, Running, alert, real_notifiers, settings

POLICY = Escalate(after=dt.timedelta(minutes=10), to=["sms"], repeat=3)
MIN = 60_000


def escalator(redis: Redis, keys: Keys, **policies: Escalate) -> Escalator:
    return Escalator(EscalationStore(redis, keys), AckBook(redis, keys), SilenceStore(redis, keys),
                     policies or {"nvda-high": POLICY}, consumer="escalator-test")  # fmt: skip


async def feed(redis: Redis, keys: Keys, e: Escalator, alerts: list[AlertEvent], now: int) -> None:
    """The transitions into the outbox, read by the escalator at `now`."""
    for a in alerts:
        await redis.xadd(keys.outbox, {"alert": a.to_json()})
    await e.store.ensure_group()
    entries = await e.store.read(e.consumer, count=100, block_ms=None)
    await e.read(entries, now_ms=now)


async def queued(redis: Redis, keys: Keys, channel: str) -> list[Notification]:
    """What was queued on a channel's delivery stream."""
    rows = await redis.xrange(keys.deliver(channel))
    return [Notification.from_json(fields["n"]) for _, fields in rows]


async def test_unacked_firing_escalates_every_after_repeat_times_then_stops(
    redis: Redis, keys: Keys
) -> None:
    e = escalator(redis, keys)
    t0 = int(time.time() * 1000)
    nvda, msft = alert(1, ("slack",)), alert(2, ("slack",), symbol="MSFT")
    await feed(redis, keys, e, [nvda, msft], t0)
    assert await e.take_due(now_ms=t0 + 10 * MIN - 1) == 0  # not yet
    assert await e.take_due(now_ms=t0 + 10 * MIN) == 2  # both symbols, at exactly `after`
    assert await e.take_due(now_ms=t0 + 10 * MIN + 5) == 0  # a step is taken once
    assert await e.take_due(now_ms=t0 + 20 * MIN) == 2
    assert await e.take_due(now_ms=t0 + 30 * MIN) == 2
    assert await e.take_due(now_ms=t0 + 90 * MIN) == 0  # repeat: 3, and no more
    sms = await queued(redis, keys, "sms")
    assert [(n.alert.key, n.meta["escalation"]) for n in sms] == [
        (nvda.key, "1/3"), (msft.key, "1/3"), (nvda.key, "2/3"), (msft.key, "2/3"),
        (nvda.key, "3/3"), (msft.key, "3/3"),
    ]  # fmt: skip
    assert sms[0].alert.summary == "ESCALATED (unacknowledged for 10 min, 1 of 3): " + nvda.summary
    assert sms[2].alert.summary.startswith("ESCALATED (unacknowledged for 20 min, 2 of 3)")
    assert len({n.key for n in sms}) == 6  # each step its own idempotency key
    assert await queued(redis, keys, "slack") == []  # escalation is for `to` only
    assert await e.store.all() == {}


async def test_an_ack_ends_the_chain_of_that_alert_only_and_a_resolve_ends_its_own(
    redis: Redis, keys: Keys
) -> None:
    e = escalator(redis, keys)
    t0 = int(time.time() * 1000)
    nvda, msft, amd = (alert(1, ("slack",)), alert(2, ("slack",), symbol="MSFT"),
                       alert(3, ("slack",), symbol="AMD"))  # fmt: skip
    await feed(redis, keys, e, [nvda, msft, amd], t0)
    desk = Desk(redis, keys)
    with_parts = {f.key for f in await desk.firing()}
    assert with_parts == {nvda.key, msft.key, amd.key}
    ack = await desk.ack("MSFT", by="ann@desk", via="cli", now_ms=t0 + MIN)  # part of a key
    assert ack.alert_key == msft.key
    await feed(redis, keys, e, [replace(amd, state="resolved")], t0 + 2 * MIN)
    assert await e.take_due(now_ms=t0 + 10 * MIN) == 1
    assert [n.alert.key for n in await queued(redis, keys, "sms")] == [nvda.key]
    # NVDA acked after its first step: no second one
    await desk.ack(nvda.key, by="bob@desk", via="slack", now_ms=t0 + 15 * MIN)
    assert await e.take_due(now_ms=t0 + 60 * MIN) == 0
    assert len(await queued(redis, keys, "sms")) == 1
    assert await e.store.all() == {}
    # the next firing of MSFT starts unacknowledged once the first resolved (the ack went)
    await feed(redis, keys, e, [replace(msft, state="resolved")], t0 + 61 * MIN)
    assert await desk.acks.get(msft.key) is None
    t1 = int(time.time() * 1000)  # (a firing is read when it is queued: now)
    await feed(redis, keys, e, [replace(msft, seq=2)], t1)
    assert await e.take_due(now_ms=t1 + 10 * MIN) == 1


async def test_an_ack_given_between_the_read_and_the_step_still_wins(
    redis: Redis, keys: Keys
) -> None:
    e = escalator(redis, keys)
    t0 = int(time.time() * 1000)
    a = alert(1, ("slack",))
    await feed(redis, keys, e, [a], t0)
    [(member, due, text)] = await e.store.due(t0 + 10 * MIN)
    await AckBook(redis, keys).ack(a.key, by="ann", via="sms", now_ms=t0 + 10 * MIN)
    chain = Chain.from_json(text)
    done = await e.store.step(member, due, due + 10 * MIN, text, [("sms", "{}")],
                              alert_key=a.key, started_ms=chain.started_ms)  # fmt: skip
    assert done == "acked"
    assert await queued(redis, keys, "sms") == [] and await e.store.all() == {}


async def test_a_repeated_transition_and_a_restart_send_no_step_twice(
    redis: Redis, keys: Keys
) -> None:
    t0 = int(time.time() * 1000)
    a = alert(1, ("slack",))
    first = escalator(redis, keys)
    await feed(redis, keys, first, [a, a], t0)  # the feed repeated itself
    await feed(redis, keys, first, [a], t0 + 3 * MIN)  # and again later: the due stays
    [(_, due, _)] = await first.store.due(t0 + 60 * MIN)
    assert due == t0 + 10 * MIN
    # a restart: a new escalator (same group) takes the step once, on time
    second = escalator(redis, keys)
    assert await second.take_due(now_ms=t0 + 10 * MIN) == 1
    assert await first.take_due(now_ms=t0 + 10 * MIN) == 0  # the old one finds it taken
    assert len(await queued(redis, keys, "sms")) == 1


async def test_a_snooze_defers_the_escalation_to_its_end(redis: Redis, keys: Keys) -> None:
    e = escalator(redis, keys)
    t0 = int(time.time() * 1000)
    a = alert(1, ("slack",))
    await feed(redis, keys, e, [a], t0)
    desk = Desk(redis, keys)
    s = await desk.snooze("nvda-high", for_ms=30 * MIN, by="ann", via="cli", now_ms=t0 + MIN)
    assert sorted(s.matchers) == ["n=1", "rule=nvda-high", "symbol=NVDA"]
    assert await e.take_due(now_ms=t0 + 10 * MIN) == 0  # deferred, not dropped
    [(_, due, _)] = await e.store.due(t0 + 10 * 60 * MIN)
    assert due == t0 + 31 * MIN
    assert await e.take_due(now_ms=t0 + 31 * MIN) == 1


async def test_a_rule_that_stops_escalating_ends_its_chains_and_old_firings_start_none(
    redis: Redis, keys: Keys
) -> None:
    e = escalator(redis, keys)
    t0 = int(time.time() * 1000)
    await feed(redis, keys, e, [alert(1, ("slack",))], t0)
    e.configure({}, max_age_ms=15 * MIN)  # a reload removed `escalate:`
    assert await e.take_due(now_ms=t0 + 10 * MIN) == 0
    assert await e.store.all() == {}
    # a backlog (an outbox entry queued 20 min before it is read) starts no chain
    e.configure({"nvda-high": POLICY}, max_age_ms=15 * MIN)
    await feed(redis, keys, e, [alert(2, ("slack",))], int(time.time() * 1000) + 20 * MIN)
    assert await e.store.all() == {}


async def test_desk_refuses_what_names_no_single_firing_alert(redis: Redis, keys: Keys) -> None:
    e = escalator(redis, keys)
    t0 = int(time.time() * 1000)
    await feed(redis, keys, e, [alert(1, ("slack",)), alert(2, ("slack",), symbol="MSFT")], t0)
    desk = Desk(redis, keys)
    for ref, said in (("TSLA", "no firing alert matches 'TSLA'"), ("nvda-high", "matches 2")):
        try:
            await desk.ack(ref, by="ann", via="cli")
        except NoSuchAlert as err:
            assert said in str(err)
        else:
            raise AssertionError(f"{ref!r} was accepted")


async def test_an_unacked_critical_reaches_the_oncall_phone_through_delivery(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, twilio_server: FakeTwilioServer
) -> None:
    """End to end on real time: firing to Slack, then after 1 s (unacked) to SMS via Twilio."""
    notifiers = real_notifiers(slack_server, twilio_server)
    policy = Escalate(after=dt.timedelta(seconds=1), to=["sms"], repeat=1)
    s = replace(settings(notifiers), escalations={"nvda-high": policy})
    d = Delivery(redis, keys, s, notifiers, policy=FAST)
    run = Running(d)
    try:
        fired = time.time()
        await redis.xadd(
            keys.outbox, {"alert": alert(1, ("slack",), severity="critical").to_json()}
        )
        await slack_server.wait_for(lambda reqs: len(slack_server.messages) == 1)
        assert twilio_server.sent == []  # not before `after`
        await twilio_server.wait_for(lambda reqs: len(twilio_server.sent) == 1, timeout=10)
        took = twilio_server.requests[-1].at - fired
        assert 1.0 <= took < 4.0, took
        assert "ESCALATED (unacknowledged for 1 min)" in twilio_server.sent[0]["body"]
        assert d.escalator.sent == 1
    finally:
        await run.stop()


async def test_a_route_escalates_what_it_handles_and_a_rules_own_wins(
    redis: Redis, keys: Keys
) -> None:
    """`escalate:` on a route (inherited below it) covers alerts whose rule says nothing."""
    from daemon.notify.route_tree import RouteConfig, compile_routes

    tree = RouteConfig.model_validate({
        "escalate": {"after": "5m", "to": ["pager"]},  # the root's, for everything below
        "routes": [
            {"match": {"severity": "critical"}, "escalate": {"after": "2m", "to": ["sms"]}},
            {"match": {"symbol": "AMD"}},  # inherits the root's
        ],
    })  # fmt: skip
    e = Escalator(EscalationStore(redis, keys), AckBook(redis, keys), SilenceStore(redis, keys),
                  {"own-rule": Escalate(after=dt.timedelta(minutes=9), to=["slack"])},
                  root=compile_routes(tree), consumer="escalator-test")  # fmt: skip
    t0 = int(time.time() * 1000)
    crit = alert(1, ("desk",), severity="critical", rule="crit-rule")
    amd = alert(2, ("desk",), symbol="AMD", rule="amd-rule")
    own = alert(3, ("desk",), severity="critical", rule="own-rule")
    await feed(redis, keys, e, [crit, amd, own], t0)
    due = {Chain.from_json(text).alert.rule: (d, Chain.from_json(text).source)
           for d, text in (await e.store.all()).values()}  # fmt: skip
    assert due == {"crit-rule": (t0 + 2 * MIN, "root.0"), "amd-rule": (t0 + 5 * MIN, "root.1"),
                   "own-rule": (t0 + 9 * MIN, "rule")}  # fmt: skip
    assert await e.take_due(now_ms=t0 + 5 * MIN) == 2
    assert [n.alert.rule for n in await queued(redis, keys, "sms")] == ["crit-rule"]
    assert [n.alert.rule for n in await queued(redis, keys, "pager")] == ["amd-rule"]
    # a reload that drops the routes' escalate: ends their chains; the rule's goes on
    e.configure({"own-rule": Escalate(after=dt.timedelta(minutes=9), to=["slack"])},
                15 * MIN, compile_routes(None))  # fmt: skip
    assert await e.take_due(now_ms=t0 + 9 * MIN) == 1
    assert [n.alert.rule for n in await queued(redis, keys, "slack")] == ["own-rule"]
