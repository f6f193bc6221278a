"""The notify side's store modules against the suite's real Redis: same keys, same commands,
and each multi-key commit one MULTI/EXEC."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.notify.dispatch import Routed
from daemon.notify.grouping import Group
from daemon.notify.notification import Notification
from daemon.notify.pipeline import Decision
from daemon.notify.route_tree import GroupOpts
from daemon.notify.silence_book import SilenceStore
from daemon.notify.silences import KEEP_EXPIRED_MS
from daemon.store.deadletters import DeadLetterStore
from daemon.store.delivery import MARKER_TTL_S, DeliveryStore
from daemon.store.inspect import InspectStore
from daemon.store.keys import Keys
from daemon.store.outbox import OutboxStore
from daemon.store.silences import SilenceRecords

REPO = Path(__file__).resolve().parents[2]
DAY = "2026-03-02"


def alert(n: int = 1, *, state: str = "firing", seq: int = 1, repeat: int = 0) -> AlertEvent:
    return AlertEvent(
        rule="nvda-high",
        key=f"nvda-high{{n={n}}}",
        state=state,  # type: ignore[arg-type]
        seq=seq,
        ts_ms=int(time.time() * 1000),
        severity="warning",
        summary="NVDA above 100",
        channels=("slack",),
        labels={"symbol": "NVDA"},
        repeat=repeat,
    )


@pytest.fixture
def transactions(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """The `transaction` flag of every pipeline the stores open, in order."""
    opened: list[bool] = []
    real = redis.pipeline

    def pipeline(transaction: bool = True, shard_hint: Any = None) -> Any:
        opened.append(transaction)
        return real(transaction=transaction, shard_hint=shard_hint)

    monkeypatch.setattr(redis, "pipeline", pipeline)
    yield opened


def test_the_cap_notice_key_is_the_one_the_worker_used_to_spell() -> None:
    k = Keys("tw")
    assert k.cap_notice("slack", DAY) == f"{k.sent_today('slack', DAY)}:told"
    assert k.cap_notice("slack", DAY) == "{tw}:notify:sent:slack:2026-03-02:told"


def test_the_pure_notify_modules_import_no_redis() -> None:
    code = (
        "import sys, daemon.notify.pipeline, daemon.notify.route_tree, daemon.notify.silences, "
        "daemon.notify.dispatch; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- outbox (the router) ------------------------------------------------------------------
async def test_outbox_reads_new_then_pending_entries(redis: Redis, keys: Keys) -> None:
    store = OutboxStore(redis, keys)
    await store.ensure_group()
    await store.ensure_group()  # idempotent
    eid = await redis.xadd(keys.outbox, {"alert": alert().to_json()})
    got = await store.read("router-1", count=10, block_ms=None)
    assert [(s, i) for s, i, _ in got] == [(keys.outbox, eid)]
    again = await store.read("router-1", count=10, block_ms=None, pending=True)
    assert [i for _, i, _ in again] == [eid]  # read, not acked: pending after a crash


async def test_outbox_commit_writes_everything_and_acks_in_one_transaction(
    redis: Redis, keys: Keys, transactions: list[bool]
) -> None:
    store = OutboxStore(redis, keys, maxlen=1000)
    await store.ensure_group()
    a = alert()
    eid = await redis.xadd(keys.outbox, {"alert": a.to_json()})
    await store.read("router-1", count=10, block_ms=None)
    group = Group("slack|root|x", "slack", GroupOpts(group_by=("symbol",)))
    group.add(a, 0)
    r = Routed(
        a,
        decisions=[],
        singles=[Notification.single(a, "slack")],
        touched=[group],
        held=[Decision("sms", "silenced", "silenced by abc")],
        firing_set={"symbol": "NVDA", "rule": "nvda-high"},
        told_key=f"{a.key}#{a.seq}",
        told_set=["slack", "desk"],
    )
    transactions.clear()
    await store.commit(eid, r)
    assert transactions == [True]  # one MULTI/EXEC
    assert await store.firing() == {a.key: {"rule": "nvda-high", "symbol": "NVDA"}}
    assert json.loads(await redis.hget(keys.firing, a.key)) == r.firing_set  # type: ignore[misc]
    assert await store.told(f"{a.key}#{a.seq}") == ["slack", "desk"]
    assert await store.told("nothing#1") == []
    assert await redis.hgetall(keys.suppressed) == {"silenced:sms": "1"}  # type: ignore[misc]
    assert (await store.groups()).keys() == {group.key}
    [(_, fields)] = await redis.xrange(keys.deliver("slack"))
    assert Notification.from_json(fields["n"]).key == f"{a.id}@slack"
    assert (await redis.xpending(keys.outbox, keys.NOTIFY_GROUP))["pending"] == 0
    # its resolve drops the firing set entry and the told record
    done = Routed(a, decisions=[], firing_cleared=True, told_cleared=True, told_key=r.told_key)
    eid2 = await redis.xadd(keys.outbox, {"alert": a.to_json()})
    await store.read("router-1", count=10, block_ms=None)
    await store.commit(eid2, done)
    assert await store.firing() == {} and await store.told(r.told_key) == []


async def test_outbox_dead_letters_flushes_and_notices(
    redis: Redis, keys: Keys, transactions: list[bool]
) -> None:
    store = OutboxStore(redis, keys)
    await store.ensure_group()
    eid = await redis.xadd(keys.outbox, {"alert": "not json"})
    await store.read("router-1", count=10, block_ms=None)
    await store.dead_letter(eid, {"alert": "not json", "channel": "-", "reason": "malformed"})
    [(_, dead)] = await redis.xrange(keys.deadletter)
    assert dead["reason"] == "malformed"
    assert (await redis.xpending(keys.outbox, keys.NOTIFY_GROUP))["pending"] == 0
    a = alert()
    group = Group("slack|root|x", "slack", GroupOpts(group_by=("symbol",)))
    group.add(a, 0)
    await redis.hset(keys.groups, group.key, group.to_json())  # type: ignore[misc]
    n = group.flush(10**13)
    assert n is not None and not group.empty  # still firing: kept, with its new state
    await store.flushed(group, n)
    assert (await store.groups())[group.key] == group.to_json()
    group.firing.clear()
    await store.flushed(group, n)
    assert await store.groups() == {}  # empty: forgotten
    notices = [Notification(channel=c, key="catchup:1", kind="notice", text="hi") for c in "ab"]
    transactions.clear()
    await store.append(notices)
    assert transactions == [True]
    assert await redis.xlen(keys.deliver("a")) == await redis.xlen(keys.deliver("b")) == 1
    assert await redis.xlen(keys.deliver("slack")) == 2


# --- delivery (one channel's worker) ------------------------------------------------------
async def _taken(redis: Redis, keys: Keys, store: DeliveryStore, n: Notification) -> str:
    await store.ensure_group()
    eid: str = await redis.xadd(store.stream, {"n": n.to_json()})
    [(_, got, _)] = await store.read(count=10, block_ms=None)
    assert got == eid
    return eid


async def test_delivery_claim_record_and_dedup(
    redis: Redis, keys: Keys, transactions: list[bool]
) -> None:
    store = DeliveryStore(redis, keys, "slack", consumer="worker-1")
    a = alert()
    n = Notification.single(a, "slack")
    eid = await _taken(redis, keys, store, n)
    assert await store.claim(n.key, DAY, cap=None, thread=None) == ("go", {})
    marker = keys.delivered(n.key, "slack")
    assert await redis.get(marker) == "sending"
    assert 0 < await redis.ttl(marker) <= MARKER_TTL_S
    transactions.clear()
    await store.record(eid, n.key, count_day=DAY, receipt=(a.key, a.seq, {"ts": "1.5"}))
    assert transactions == [True]
    assert await redis.get(marker) == "done"
    assert await redis.get(keys.sent_today("slack", DAY)) == "1"
    assert await redis.ttl(keys.sent_today("slack", DAY)) > 86400
    assert await redis.hgetall(keys.receipt("slack", a.key, a.seq)) == {"ts": "1.5"}  # type: ignore[misc]
    assert (await redis.xpending(store.stream, keys.DELIVER_GROUP))["pending"] == 0
    # the resolve threads under the firing's receipt; a redelivery of a done one is a duplicate
    resolve = Notification.single(alert(state="resolved"), "slack")
    got = await store.claim(resolve.key, DAY, cap=None, thread=(a.key, a.seq))
    assert got == ("go", {"ts": "1.5"})
    assert await store.claim(n.key, DAY, cap=None, thread=None) == ("done", {})


async def test_delivery_cap_says_so_once_a_day(redis: Redis, keys: Keys) -> None:
    store = DeliveryStore(redis, keys, "sms")
    n = Notification.single(alert(), "sms")
    await redis.set(keys.sent_today("sms", DAY), 2)
    assert (await store.claim(n.key, DAY, cap=2, thread=None))[0] == "capped"
    assert await redis.get(keys.delivered(n.key, "sms")) is None  # not marked "sending"
    eid = await _taken(redis, keys, store, n)
    assert await store.capped(eid, DAY) is True
    assert await store.capped(eid, DAY) is False
    assert await redis.get(keys.cap_notice("sms", DAY)) == "1"
    assert await redis.hgetall(keys.suppressed) == {"cap:sms": "2"}  # type: ignore[misc]
    assert (await redis.xpending(store.stream, keys.DELIVER_GROUP))["pending"] == 0


async def test_delivery_waits_are_shown_then_cleared_with_the_outcome(
    redis: Redis, keys: Keys
) -> None:
    store = DeliveryStore(redis, keys, "slack", consumer="worker-2")
    n = Notification.single(alert(), "slack")
    eid = await _taken(redis, keys, store, n)
    look = InspectStore(redis, keys)
    await store.set_wait('{"reason":"rate limited"}')
    assert await look.delivery_waits() == {"slack|worker-2": '{"reason":"rate limited"}'}
    await store.dead(eid, {"n": n.to_json(), "channel": "slack", "reason": "gone"})
    assert await look.delivery_waits() == {}  # dropped in the same commit
    [(_, dead)] = await DeadLetterStore(redis, keys).all()
    assert dead["reason"] == "gone" and dead["channel"] == "slack"
    assert (await redis.xpending(store.stream, keys.DELIVER_GROUP))["pending"] == 0
    await store.set_wait("{}")
    await store.clear_wait()
    assert await look.delivery_waits() == {}
    await store.clear_wait()  # nothing written: nothing sent
    await redis.hset(keys.delivery_waits, "slack|worker-2", "{}")  # type: ignore[misc]
    await store.drop_stale_wait()  # a previous run's, left by a kill
    assert await look.delivery_waits() == {}


async def test_delivery_reclaims_what_a_dead_consumer_left(redis: Redis, keys: Keys) -> None:
    gone = DeliveryStore(redis, keys, "slack", consumer="worker-gone")
    n = Notification.single(alert(), "slack")
    eid = await _taken(redis, keys, gone, n)
    me = DeliveryStore(redis, keys, "slack", consumer="worker-1")
    assert await me.reclaim(60_000) == []  # not idle long enough
    await asyncio.sleep(0.02)
    await gone.keep_claimed(eid)  # the holder refreshes its claim: still not idle
    assert await me.reclaim(15) == []
    await asyncio.sleep(0.02)
    [(got, fields)] = await me.reclaim(15)
    assert got == eid and fields == {"n": n.to_json()}
    await me.ack(eid)
    assert (await redis.xpending(me.stream, keys.DELIVER_GROUP))["pending"] == 0


# --- silences, dead letters, status -------------------------------------------------------
async def test_silence_records_are_raw_ids_and_json(redis: Redis, keys: Keys) -> None:
    """The store keeps ids and text only: what a silence means is the notify stage's."""
    records = SilenceRecords(redis, keys)
    await records.put("a1", '{"x": 1}')
    await records.put("b2", "not json, kept as written")
    assert await records.get("a1") == '{"x": 1}' and await records.get("zz") is None
    assert await records.all() == {"a1": '{"x": 1}', "b2": "not json, kept as written"}
    await records.drop("a1")
    await records.drop()  # nothing to drop: no command, no error
    assert await redis.hkeys(keys.silences) == ["b2"]  # type: ignore[misc]


async def test_silences_add_expire_and_drop_old(redis: Redis, keys: Keys) -> None:
    store = SilenceStore(redis, keys)
    now = int(time.time() * 1000)
    # starting at `now` (not at add's own clock, a millisecond later or not): judged at `now`
    s = await store.add(["symbol=NVDA"], author="ann", reason="earnings", ends_ms=now + 60_000,
                        starts_ms=now)  # fmt: skip
    assert [x.id for x in await store.active(now)] == [s.id]
    with pytest.raises(ValueError):
        await store.add(["NVDA"], author="ann", reason="bad", ends_ms=now + 60_000)
    ended = await store.expire(s.id, now_ms=now + 1)
    assert ended is not None and ended.ends_ms == now + 1
    assert await store.active(now + 2) == []
    assert await store.expire("nope") is None
    await redis.hset(keys.silences, "junk", "not json")  # type: ignore[misc]
    assert [x.id for x in await store.all()] == [s.id]  # an unreadable one never blocks
    await store.active(now + KEEP_EXPIRED_MS + 10)  # expired over a week ago: removed
    assert await redis.hkeys(keys.silences) == ["junk"]  # type: ignore[misc]


async def test_dead_letters_listed_and_requeued(
    redis: Redis, keys: Keys, transactions: list[bool]
) -> None:
    dead = DeadLetterStore(redis, keys)
    n = Notification.single(alert(), "slack")
    ids = [await redis.xadd(keys.deadletter, {"n": n.to_json(), "channel": "slack", "i": str(i)})
           for i in range(3)]  # fmt: skip
    assert [i for i, _ in await dead.newest(2)] == ids[:0:-1]
    assert [i for i, _ in await dead.all()] == ids
    await redis.set(keys.delivered(n.key, "slack"), "done")
    transactions.clear()
    await dead.requeue(ids[0], "slack", n.key, n.to_json())
    assert transactions == [True]
    assert await redis.get(keys.delivered(n.key, "slack")) is None  # a fresh attempt
    assert [f["n"] for _, f in await redis.xrange(keys.deliver("slack"))] == [n.to_json()]
    assert [i for i, _ in await dead.all()] == ids[1:]


async def test_inspect_reads_heartbeat_held_back_and_queues(redis: Redis, keys: Keys) -> None:
    look = InspectStore(redis, keys)
    assert await look.heartbeat() is None
    assert await look.channel_queue("slack") == (0, 0)  # no stream yet
    await redis.set(keys.heartbeat, "up 5s")
    await redis.hset(keys.suppressed, "quiet:sms", 3)  # type: ignore[misc]
    assert await look.heartbeat() == "up 5s"
    assert await look.suppressed() == {"quiet:sms": "3"}
    store = DeliveryStore(redis, keys, "slack")
    await _taken(redis, keys, store, Notification.single(alert(1), "slack"))
    for i in (2, 3):
        await redis.xadd(store.stream, {"n": Notification.single(alert(i), "slack").to_json()})
    assert await look.channel_queue("slack") == (2, 1)  # two not read yet, one in flight
