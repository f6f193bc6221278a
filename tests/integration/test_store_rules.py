"""The tick side's store APIs against the suite's real Redis: the evaluator's state and commits,
its place in the streams, the earnings calendar, the feeds' status, the daemon's own keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent, Transition
from daemon.events import Tick
from daemon.store.calendar import CalendarField, CalendarStore
from daemon.store.feeds import FeedStatusStore
from daemon.store.keys import Keys
from daemon.store.ops import OpsStore, server_version
from daemon.store.state import StateStore
from daemon.store.streams import StreamStore

T0 = 1_775_000_000_000


def alert(key: str, seq: int = 1, state: Transition = "firing") -> AlertEvent:
    return AlertEvent(
        rule=key.split(":")[0], key=key, state=state, seq=seq, ts_ms=T0, severity="warning",
        summary=f"{key} {state}", channels=("console",),
    )  # fmt: skip


async def outbox(redis: Redis, keys: Keys) -> list[AlertEvent]:
    return [AlertEvent.from_json(f["alert"]) for _, f in await redis.xrange(keys.outbox)]


class Transactions:
    """Every pipeline the client executes: (MULTI/EXEC?, the commands it held)."""

    def __init__(self, redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[bool, list[str]]] = []
        real = redis.pipeline

        def pipeline(transaction: bool = True, shard_hint: Any = None) -> Any:
            pipe = real(transaction=transaction, shard_hint=shard_hint)
            execute = pipe.execute

            async def recorded(raise_on_error: bool = True) -> Any:
                names = [str(args[0]).upper() for args, _ in pipe.command_stack]
                self.seen.append((pipe.is_transaction, names))
                return await execute(raise_on_error)

            pipe.execute = recorded  # type: ignore[method-assign]
            return pipe

        monkeypatch.setattr(redis, "pipeline", pipeline)

    def __iter__(self) -> Iterator[tuple[bool, list[str]]]:
        return iter(self.seen)


# --- StateStore ---------------------------------------------------------------------------


async def test_a_commit_lands_states_checkpoint_alerts_and_acks_in_one_transaction(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    streams, state = StreamStore(redis, keys), StateStore(redis, keys)
    await streams.ensure_group(keys.ticks, keys.EVAL_GROUP)
    await streams.write([Tick("NVDA", T0, 101.0), Tick("MSFT", T0, 400.0)])
    read = await streams.read_group((keys.ticks,), keys.EVAL_GROUP, "c", count=10, block_ms=None)
    assert (await redis.xpending(keys.ticks, keys.EVAL_GROUP))["pending"] == 2
    tx = Transactions(redis, monkeypatch)
    await state.commit(
        states={"nvda-high:NVDA": '{"state": "firing"}'},
        checkpoint={"q:NVDA": f"101.0 {T0}"},
        alerts=[alert("nvda-high:NVDA")],
        acks={keys.ticks: [entry_id for _, entry_id, _ in read]},
    )
    assert list(tx) == [(True, ["HSET", "HSET", "XADD", "XACK"])]
    assert await state.states() == {"nvda-high:NVDA": '{"state": "firing"}'}
    assert await state.checkpoint() == {"q:NVDA": f"101.0 {T0}"}
    assert [a.key for a in await outbox(redis, keys)] == ["nvda-high:NVDA"]
    assert (await redis.xpending(keys.ticks, keys.EVAL_GROUP))["pending"] == 0


async def test_an_empty_commit_sends_nothing(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = StateStore(redis, keys)
    tx = Transactions(redis, monkeypatch)
    await state.commit(states={}, checkpoint={}, alerts=[], acks={})
    assert list(tx) == [(True, [])]  # redis-py sends no MULTI/EXEC for an empty pipeline
    assert await state.states() == {} and await state.checkpoint() == {}
    assert not await redis.exists(keys.outbox)


async def test_the_outbox_is_capped_at_maxlen(redis: Redis, keys: Keys) -> None:
    state = StateStore(redis, keys, maxlen=10)
    for seq in range(1, 401):
        await state.commit(states={}, checkpoint={}, alerts=[alert("a:X", seq)], acks={})
    assert await redis.xlen(keys.outbox) < 400  # approximate trimming: a few over 10 at most


async def test_retire_resets_states_clears_firing_and_tells_resolves_together(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = StateStore(redis, keys)
    await redis.hset(keys.alert_state, mapping={"old:NVDA": "firing", "kept:NVDA": "firing"})
    await redis.hset(keys.firing, mapping={"old:NVDA": "{}", "kept:NVDA": "{}"})
    tx = Transactions(redis, monkeypatch)
    await state.retire({"old:NVDA": '{"state": "inactive"}'}, [alert("old:NVDA", 2, "resolved")])
    assert list(tx) == [(True, ["HSET", "HDEL", "XADD"])]
    assert await state.states() == {"old:NVDA": '{"state": "inactive"}', "kept:NVDA": "firing"}
    assert await redis.hkeys(keys.firing) == ["kept:NVDA"]  # the router's hash, kept alerts
    assert [(a.key, a.state) for a in await outbox(redis, keys)] == [("old:NVDA", "resolved")]


# --- StreamStore: the evaluator's place, the edge's latest prices ----------------------------


async def test_first_unprocessed_follows_pending_then_delivered(redis: Redis, keys: Keys) -> None:
    streams, group = StreamStore(redis, keys), keys.EVAL_GROUP
    await streams.ensure_group(keys.ticks, group)
    assert await streams.first_unprocessed(keys.ticks, group) is None  # nothing read yet
    await streams.write([Tick("NVDA", T0 + i, 100.0 + i) for i in range(3)])
    ids = [i for i, _ in await redis.xrange(keys.ticks)]
    read = await streams.read_group((keys.ticks,), group, "c", count=2, block_ms=None)
    assert [e[1] for e in read] == ids[:2]
    assert await streams.first_unprocessed(keys.ticks, group) == ids[0]  # pending first
    await redis.xack(keys.ticks, group, *ids[:2])
    ms, seq = ids[1].split("-")
    assert await streams.first_unprocessed(keys.ticks, group) == f"{ms}-{int(seq) + 1}"


async def test_latest_times_reads_what_the_edge_wrote(redis: Redis, keys: Keys) -> None:
    streams = StreamStore(redis, keys)
    await streams.write([Tick("NVDA", T0, 100.0), Tick("NVDA", T0 + 60_000, 101.0)])
    await redis.hset(keys.latest, "BAD", "garbage")
    assert await streams.latest_times(["NVDA", "MSFT", "BAD"]) == {
        "NVDA": T0 + 60_000, "MSFT": 0, "BAD": 0,
    }  # fmt: skip


# --- CalendarStore ------------------------------------------------------------------------


async def test_calendar_replace_is_per_source_and_drops_unasked_symbols(
    redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = CalendarStore(redis, keys)
    await calendar.replace("fh", {"AAPL": "[1]", "NVDA": "[2]"})
    await calendar.replace("av", {"NVDA": "[3]"})
    tx = Transactions(redis, monkeypatch)
    await calendar.replace("fh", {"AAPL": "[4]"})  # NVDA no longer asked for, from fh only
    assert list(tx) == [(True, ["HDEL", "HSET"])]
    assert await calendar.read() == [
        CalendarField("AAPL|fh", "AAPL", "[4]"),
        CalendarField("NVDA|av", "NVDA", "[3]"),
    ]
    await calendar.replace("av", {})
    assert await calendar.read() == [CalendarField("AAPL|fh", "AAPL", "[4]")]
    assert await CalendarStore(redis, Keys(keys.prefix + "-other")).read() == []


# --- FeedStatusStore ----------------------------------------------------------------------


async def test_feed_status_is_one_json_document_per_feed(redis: Redis, keys: Keys) -> None:
    status = FeedStatusStore(redis, keys)
    await status.write("alpaca", {"state": "connected", "accepted": 3})
    await status.write("alpaca", {"state": "backoff", "accepted": 3})
    await status.write("polygon", {"state": "connecting"})
    await redis.hset(keys.sources_status, "broken", "{not json")
    assert await redis.hget(keys.sources_status, "alpaca") == json.dumps(
        {"accepted": 3, "state": "backoff"}
    )
    assert await status.read() == {
        "alpaca": {"accepted": 3, "state": "backoff"},
        "polygon": {"state": "connecting"},
    }


# --- OpsStore -----------------------------------------------------------------------------


async def test_ops_alerts_are_numbered_into_the_outbox(redis: Redis, keys: Keys) -> None:
    ops = OpsStore(redis, keys)
    first = await ops.add_ops_alert(lambda seq: alert("tickwatch-config", seq))
    second = await ops.add_ops_alert(lambda seq: alert("tickwatch-config", seq))
    assert (first.seq, second.seq) == (1, 2)
    assert [a.seq for a in await outbox(redis, keys)] == [1, 2]
    assert await redis.get(keys.ops_seq) == "2"


async def test_heartbeat_expires_and_ping_answers(redis: Redis, keys: Keys) -> None:
    ops = OpsStore(redis, keys)
    await ops.heartbeat("ticks=1", ttl_ms=5_000)
    assert await redis.get(keys.heartbeat) == "ticks=1"
    assert 0 < await redis.pttl(keys.heartbeat) <= 5_000
    assert await ops.ping() is True
    major, minor = (int(p) for p in (await server_version(redis)).split(".")[:2])
    assert (major, minor) >= (6, 2)
