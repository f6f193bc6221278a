"""Replay and synthetic sources writing into real Redis through the shared edge."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from pathlib import Path

import pandas as pd
import pytest
from redis.asyncio import Redis

from daemon.events import Headline, Tick
from daemon.sources.base import SourceContext
from daemon.sources.normalize import EdgeFilter
from daemon.sources.replay import ReplayConfig, ReplaySource, load_timeline
from daemon.sources.synthetic import SyntheticConfig, SyntheticSource
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore

BARS = """ts,symbol,open,high,low,close,volume
2026-03-16T13:30:00Z,AAA,10,10,10,10.5,100
2026-03-16T13:30:00Z,BBB,20,20,20,20.5,200
2026-03-16T13:31:00Z,AAA,10,10,10,nan,100
2026-03-16T13:31:00Z,ZZZ,1,1,1,1,1
2026-03-16T13:32:00Z,AAA,10,10,10,-3,100
not-a-time,AAA,1,1,1,1,1
2026-03-16T13:33:00Z,BBB,20,20,20,21.0,200
2099-01-01T00:00:00Z,AAA,10,10,10,11,100
"""
NEWS = """ts,id,title,summary,symbols,source,url,sentiment,ticker_sentiment
2026-03-16T13:31:30Z,n1,AAA raises capex,,AAA BBB,wire,,0.4,"{""AAA"": 0.5}"
2026-03-16T13:31:40Z,n1,AAA raises capex (dup),,AAA,wire,,0.4,{}
"""


def ctx(redis: Redis, keys: Keys, base: Path) -> SourceContext:
    return SourceContext(StreamStore(redis, keys), EdgeFilter(frozenset({"AAA", "BBB"})), base)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    with gzip.open(tmp_path / "bars.csv.gz", "wt") as f:
        f.write(BARS)
    (tmp_path / "news.csv").write_text(NEWS)
    return tmp_path


def replay(files: Path, redis: Redis, keys: Keys, **kw: object) -> ReplaySource:
    cfg = ReplayConfig(
        type="replay", name="t", ticks=Path("bars.csv.gz"), news=Path("news.csv"), **kw
    )
    return ReplaySource(cfg, ctx(redis, keys, files))


def test_timeline_merges_ticks_and_news_in_time_order(files: Path) -> None:
    tl = load_timeline(files / "bars.csv.gz", files / "news.csv", "t")
    kinds = [type(e).__name__ if e else None for e in tl.events]
    assert kinds[0] is None  # the unparseable timestamp sorts first and is refused
    assert tl.bad_rows == 1
    assert list(tl.ts_ms[1:]) == sorted(tl.ts_ms[1:])
    first_tick = next(e for e in tl.events if isinstance(e, Tick))
    # a bar is told at its end, priced at its close
    assert first_tick.ts_ms == int(pd.Timestamp("2026-03-16T13:31:00Z").timestamp() * 1000)
    assert first_tick.price == 10.5 and first_tick.kind == "bar" and first_tick.size == 100
    headline = next(e for e in tl.events if isinstance(e, Headline))
    assert headline.symbols == ("AAA", "BBB") and headline.sentiment_for("AAA") == 0.5


async def test_replay_writes_good_events_and_counts_each_refusal(
    files: Path, redis: Redis, keys: Keys
) -> None:
    src = replay(files, redis, keys)
    await src.run()
    ticks = [Tick.from_fields(f) for _, f in await redis.xrange(keys.ticks)]
    assert [(t.symbol, t.price) for t in ticks] == [("AAA", 10.5), ("BBB", 20.5), ("BBB", 21.0)]
    news = [Headline.from_fields(f) for _, f in await redis.xrange(keys.news)]
    assert [h.id for h in news] == ["n1"]
    rejects = {k: int(v) for k, v in (await redis.hgetall(keys.rejects)).items()}
    assert rejects == {
        "nan": 1, "unknown_symbol": 1, "non_positive": 1, "bad_timestamp": 1, "future": 1,
        "duplicate_headline": 1,
    }  # fmt: skip
    latest = await redis.hgetall(keys.latest)
    assert latest["BBB"].split()[0] == "21.0"


async def test_replay_before_its_start_is_history_that_never_alerts(
    files: Path, redis: Redis, keys: Keys
) -> None:
    import datetime as dt

    start = dt.datetime(2026, 3, 16, 13, 32, tzinfo=dt.UTC)
    await replay(files, redis, keys, start=start).run()
    ticks = [Tick.from_fields(f) for _, f in await redis.xrange(keys.ticks)]
    # the 13:30 bars (told at 13:31) are history; BBB's 13:33 bar (told 13:34) is live
    assert [(t.symbol, t.history) for t in ticks] == [
        ("AAA", True), ("BBB", True), ("BBB", False)]  # fmt: skip
    assert await redis.xlen(keys.news) == 0  # the 13:31:30 headline is before the start
    with pytest.raises(ValueError, match="needs a zone"):
        ReplayConfig(type="replay", name="t", start=dt.datetime(2026, 3, 16))


async def test_replay_resumes_from_its_cursor(files: Path, redis: Redis, keys: Keys) -> None:
    await replay(files, redis, keys, batch=1).run()
    n = await redis.xlen(keys.ticks)
    again = replay(files, redis, keys, batch=1)
    await again.run()
    assert await redis.xlen(keys.ticks) == n  # nothing replayed twice
    assert again.accepted == 0


async def test_replay_at_a_speed_waits_for_event_time(
    files: Path, redis: Redis, keys: Keys
) -> None:
    # 3 minutes of data at 3600x real time = 50 ms of waiting at least
    src = replay(files, redis, keys, speed=3600)
    t0 = time.monotonic()
    await src.run()
    assert time.monotonic() - t0 >= 0.04
    assert await redis.xlen(keys.ticks) == 3


async def test_replay_loop_moves_time_forward(files: Path, redis: Redis, keys: Keys) -> None:
    src = replay(files, redis, keys, loop=True)
    task = asyncio.create_task(src.run())
    try:
        deadline = time.monotonic() + 20
        while src.accepted < 8 and time.monotonic() < deadline:  # two loops of 4 events
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    ticks = [Tick.from_fields(f) for _, f in await redis.xrange(keys.ticks)]
    aaa = [t.ts_ms for t in ticks if t.symbol == "AAA"]
    assert len(aaa) >= 2 and aaa == sorted(aaa) and aaa[1] - aaa[0] >= 86_400_000
    news_ids = [f["id"] for _, f in await redis.xrange(keys.news)]
    assert news_ids[:2] == ["n1", "n1~1"]


async def test_synthetic_is_seeded_and_applies_scripted_events(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    def make() -> SyntheticSource:
        cfg = SyntheticConfig.model_validate({
            "type": "synthetic", "name": "syn", "prices": {"AAA": 100.0}, "seed": 3,
            "events": [{"after": "2s", "symbol": "AAA", "move": 10,
                        "headline": "AAA jumps", "sentiment": 0.6}],
        })  # fmt: skip
        return SyntheticSource(cfg, ctx(redis, keys, tmp_path))

    a, b = make(), make()
    t0 = 1_775_000_000_000
    for i in range(4):
        await a.step(t0 + i * 1000)
    prices = [Tick.from_fields(f).price for _, f in await redis.xrange(keys.ticks)]
    other = Keys(keys.prefix + "b")
    b.ctx = ctx(redis, other, tmp_path)
    for i in range(4):
        await b.step(t0 + i * 1000)
    prices_b = [Tick.from_fields(f).price for _, f in await redis.xrange(other.ticks)]
    assert prices == prices_b
    assert prices[2] / prices[1] > 1.09  # the +10% jump at 2 s
    news = [Headline.from_fields(f) for _, f in await redis.xrange(keys.news)]
    assert [(h.title, h.symbols, h.sentiment) for h in news] == [("AAA jumps", ("AAA",), 0.6)]
