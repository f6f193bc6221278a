"""The store's one write: a batch, the latest prices, reject counts and the cursor, in one call."""

from __future__ import annotations

from redis.asyncio import Redis

from daemon.events import Headline, Tick
from daemon.store.connect import dedicated
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore

T0 = 1_775_000_000_000


async def test_a_batch_lands_with_latest_prices_rejects_and_cursor(
    redis: Redis, keys: Keys
) -> None:
    store = StreamStore(redis, keys)
    ticks = [
        Tick("NVDA", T0, 101.0, 5.0),
        Tick("MSFT", T0 + 1, 400.5),
        Tick("NVDA", T0 + 2, 102.25),
    ]
    news = [Headline("h1", T0, "Nvidia raises AI capex", symbols=("NVDA",), sentiment=0.4)]
    await store.write(ticks, news, rejects={"stale": 2, "unknown": 0}, cursor=("rp", {"row": "7"}))
    await store.write([Tick("MSFT", T0 + 3, 401.0)], rejects={"stale": 1})

    rows = await redis.xrange(keys.ticks)
    assert [(f["s"], f["p"], f["t"]) for _, f in rows] == [
        ("NVDA", "101.0", str(T0)),
        ("MSFT", "400.5", str(T0 + 1)),
        ("NVDA", "102.25", str(T0 + 2)),
        ("MSFT", "401.0", str(T0 + 3)),
    ]
    assert rows[0][1] == ticks[0].to_fields()
    [(_, h)] = await redis.xrange(keys.news)
    assert h == news[0].to_fields()
    assert await redis.hgetall(keys.latest) == {
        "NVDA": f"102.25 {T0 + 2}",
        "MSFT": f"401.0 {T0 + 3}",
    }
    assert await redis.hgetall(keys.rejects) == {"stale": "3"}  # zero counts are not written
    assert await store.cursor("rp") == {"row": "7"}


async def test_a_batch_bigger_than_luas_unpack_limit_is_written_whole(
    redis: Redis, keys: Keys
) -> None:
    """6,000 symbols make 12,000 `latest` values: more than one `unpack` can take."""
    store = StreamStore(redis, keys)
    ticks = [Tick(f"S{i:05d}", T0 + i, 1.0 + i) for i in range(6_000)]
    await store.write(ticks)
    assert await redis.xlen(keys.ticks) == 6_000
    latest = await redis.hgetall(keys.latest)
    assert len(latest) == 6_000
    assert latest["S05999"] == f"6000.0 {T0 + 5_999}"


async def test_an_empty_batch_with_only_rejects_counts_them(redis: Redis, keys: Keys) -> None:
    await StreamStore(redis, keys).write(rejects={"future": 4})
    assert await redis.exists(keys.ticks, keys.news, keys.latest) == 0
    assert await redis.hgetall(keys.rejects) == {"future": "4"}


async def test_the_script_is_loaded_again_after_redis_forgets_it(redis: Redis, keys: Keys) -> None:
    """A restarted Redis (or SCRIPT FLUSH) has no cached script: the write must still land."""
    store = StreamStore(redis, keys)
    await store.write([Tick("NVDA", T0, 101.0)])
    await redis.script_flush()
    await store.write([Tick("NVDA", T0 + 1, 102.0)])
    assert await redis.xlen(keys.ticks) == 2


async def test_a_dedicated_writer_holds_one_connection_and_gives_it_back(
    redis: Redis, keys: Keys
) -> None:
    """The sources' writer (`dedicated`) keeps one pooled connection for itself until closed."""
    pool = redis.connection_pool
    writes = dedicated(redis)
    await StreamStore(writes, keys).write([Tick("NVDA", T0, 101.0)])
    held = writes.connection
    assert held is not None and held in pool._in_use_connections
    await StreamStore(writes, keys).write([Tick("NVDA", T0 + 1, 102.0)])
    assert writes.connection is held  # no checkout per write
    await writes.aclose()
    assert held not in pool._in_use_connections
    assert await redis.xlen(keys.ticks) == 2
