"""Alpaca REST bars: pagination, bar-end ticks, errors, YTD closes, and the start-up backfill."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from daemon.events import Tick
from daemon.sources.alpaca_rest import (
    AlpacaBackfillConfig,
    AlpacaBackfillSource,
    fetch_bars,
    fetch_daily_closes,
    parse_bars_page,
    run_backfills,
    timeframe_ms,
)
from daemon.sources.base import FatalSourceError, Source, SourceContext
from daemon.sources.normalize import EdgeFilter
from daemon.sources.poller import Http, PollError
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.fakes.rest_providers import (
    DEFAULT_ALPACA_KEY_ID,
    DEFAULT_ALPACA_SECRET,
    FakeAlpacaData,
    alpaca_bar,
)

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 16, 13, 30, tzinfo=UTC)
MIN = dt.timedelta(minutes=1)


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def alpaca_http(sleeps: Sleeps) -> Http:
    return Http(
        "Alpaca", "the Alpaca keys", (DEFAULT_ALPACA_KEY_ID, DEFAULT_ALPACA_SECRET), sleep=sleeps
    )


async def bars(server: FakeAlpacaData, http: Http | None = None, **kw: Any) -> list[Tick]:
    args: dict[str, Any] = {
        "base_url": server.base_url, "key_id": DEFAULT_ALPACA_KEY_ID,
        "secret_key": DEFAULT_ALPACA_SECRET, "symbols": ["NVDA", "AAPL"],
        "start": T0, "end": T0 + 10 * MIN, "http": http or alpaca_http(Sleeps()), **kw,
    }  # fmt: skip
    async with aiohttp.ClientSession() as session:
        return await fetch_bars(session, **args)


# --- pure pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tf", "expected"),
    [("1Min", 60_000), ("5Min", 300_000), ("T", 60_000), ("15T", 900_000),
     ("1Hour", 3_600_000), ("2H", 7_200_000), ("1Day", 86_400_000), ("1Week", 604_800_000)],
)  # fmt: skip
def test_timeframe_lengths(tf: str, expected: int) -> None:
    assert timeframe_ms(tf) == expected


def test_months_are_refused() -> None:
    with pytest.raises(ValueError, match="timeframe"):
        timeframe_ms("1Month")


def test_page_parsing_skips_malformed_bars() -> None:
    payload = {
        "bars": {
            "AAPL": [
                alpaca_bar(T0, 190.5),
                {"t": "yesterday", "c": 1},
                {"t": "2026-03-16T13:31:00Z"},
            ],
            "NVDA": [alpaca_bar(T0, 120.0), dict(alpaca_bar(T0 + MIN, 1.0), c="121.0")],
        },
        "next_page_token": "abc",
    }
    got, bad, token = parse_bars_page(payload)
    assert [(b.symbol, b.close) for b in got] == [("AAPL", 190.5), ("NVDA", 120.0)]
    assert bad == 3 and token == "abc"
    assert parse_bars_page({"bars": None, "next_page_token": None}) == ([], 0, None)


# --- fetch_bars over HTTP ---------------------------------------------------------------------


async def test_pages_across_symbols_in_time_order_at_bar_end(alpaca_rest: FakeAlpacaData) -> None:
    alpaca_rest.bars = {
        "AAPL": [alpaca_bar(T0 + i * MIN, 190 + i, 100 + i) for i in range(4)],
        "NVDA": [alpaca_bar(T0 + i * MIN, 120 + i) for i in range(3)],
        "MSFT": [alpaca_bar(T0, 400)],  # not asked for
    }
    ticks = await bars(alpaca_rest, limit=3)
    # limit counts across symbols: [AAPL x3] [AAPL, NVDA x2] [NVDA]
    pages = alpaca_rest.requests
    assert len(pages) == 3 and "page_token" not in pages[0].body
    assert all(p.body["page_token"] for p in pages[1:])
    assert pages[0].body["symbols"] == "AAPL,NVDA" and pages[0].body["timeframe"] == "1Min"
    assert pages[0].body["feed"] == "iex" and pages[0].body["start"] == "2026-03-16T13:30:00Z"
    assert pages[0].headers["APCA-API-KEY-ID"] == DEFAULT_ALPACA_KEY_ID
    assert [(t.symbol, t.ts_ms) for t in ticks] == [
        ("AAPL", ms(T0 + MIN)), ("NVDA", ms(T0 + MIN)),
        ("AAPL", ms(T0 + 2 * MIN)), ("NVDA", ms(T0 + 2 * MIN)),
        ("AAPL", ms(T0 + 3 * MIN)), ("NVDA", ms(T0 + 3 * MIN)),
        ("AAPL", ms(T0 + 4 * MIN)),
    ]  # fmt: skip
    first = ticks[0]
    assert first.kind == "bar" and first.price == 190 and first.size == 100
    assert first.history  # warms the rules, never judged
    assert first.source == "alpaca"


async def test_no_symbols_no_request(alpaca_rest: FakeAlpacaData) -> None:
    assert await bars(alpaca_rest, symbols=[]) == []
    assert not alpaca_rest.requests


async def test_429_honours_retry_after_and_500_is_retried(alpaca_rest: FakeAlpacaData) -> None:
    alpaca_rest.bars = {"AAPL": [alpaca_bar(T0, 190)]}
    alpaca_rest.rate_limit(retry_after=3)
    alpaca_rest.server_error()
    sleeps = Sleeps()
    ticks = await bars(alpaca_rest, alpaca_http(sleeps))
    assert [t.price for t in ticks] == [190]
    assert [r.status for r in alpaca_rest.requests] == [429, 500, 200]
    assert sleeps.waits[0] == 3.0 and 1.0 <= sleeps.waits[1] <= 2.0


async def test_persistent_5xx_gives_up_with_a_poll_error(alpaca_rest: FakeAlpacaData) -> None:
    alpaca_rest.server_error(times=10)
    with pytest.raises(PollError, match="HTTP 500"):
        await bars(alpaca_rest)
    assert len(alpaca_rest.requests) == 3


@pytest.mark.parametrize(
    ("key_id", "secret", "status"),
    [("", "", 401), (DEFAULT_ALPACA_KEY_ID, "wrong-secret-xyz", 403)],
)
async def test_bad_keys_are_fatal(
    alpaca_rest: FakeAlpacaData, key_id: str, secret: str, status: int
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FatalSourceError) as err:
            await fetch_bars(
                session, base_url=alpaca_rest.base_url, key_id=key_id, secret_key=secret,
                symbols=["AAPL"], start=T0, end=T0 + MIN,
            )  # fmt: skip
    assert f"HTTP {status}" in str(err.value) and "APCA_API_KEY_ID" in str(err.value)
    assert "wrong-secret-xyz" not in str(err.value)


async def test_daily_closes_for_a_ytd_anchor(alpaca_rest: FakeAlpacaData) -> None:
    def day(d: int, month: int = 12, year: int = 2025) -> str:
        return f"{year}-{month:02d}-{d:02d}T05:00:00Z"  # midnight New York, in UTC

    alpaca_rest.bars = {
        "XMAG": [alpaca_bar(day(29), 10.0), alpaca_bar(day(30), 10.5), alpaca_bar(day(31), 11.0),
                 alpaca_bar(day(2, 1, 2026), 12.0)],
        "MAGS": [alpaca_bar(day(26), 50.0), alpaca_bar(day(29), 51.0)],
    }  # fmt: skip
    async with aiohttp.ClientSession() as session:
        args: dict[str, Any] = {
            "base_url": alpaca_rest.base_url, "key_id": DEFAULT_ALPACA_KEY_ID,
            "secret_key": DEFAULT_ALPACA_SECRET, "symbols": ["XMAG", "MAGS"],
        }  # fmt: skip
        new_year = await fetch_daily_closes(session, day=dt.date(2026, 1, 1), **args)
        boxing = await fetch_daily_closes(session, day=dt.date(2025, 12, 27), **args)
    assert new_year == {
        "XMAG": (dt.date(2025, 12, 31), 11.0),
        "MAGS": (dt.date(2025, 12, 29), 51.0),
    }
    assert boxing == {"MAGS": (dt.date(2025, 12, 26), 50.0)}
    req = alpaca_rest.requests[0].body
    assert (
        req["timeframe"] == "1Day" and req["start"] == "2025-12-18" and req["end"] == "2026-01-01"
    )


# --- the alpaca_backfill source ---------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.fatal: list[str] = []

    async def on_ops(self, summary: str, labels: Mapping[str, str]) -> None:
        pass

    def on_fatal(self, source: Source, error: FatalSourceError) -> None:
        self.fatal.append(str(error))


MakeBackfill = Callable[..., AlpacaBackfillSource]
UNIVERSE = frozenset({"AAPL", "NVDA"})


@pytest_asyncio.fixture
async def make(
    redis: Redis, keys: Keys, alpaca_rest: FakeAlpacaData
) -> AsyncIterator[MakeBackfill]:
    made: list[AlpacaBackfillSource] = []

    def build(rec: Recorder | None = None, **cfg: Any) -> AlpacaBackfillSource:
        rec = rec or Recorder()
        ctx = SourceContext(
            StreamStore(redis, keys), EdgeFilter(UNIVERSE), Path("."), symbols=UNIVERSE,
            ops=rec.on_ops, on_fatal=rec.on_fatal,
        )  # fmt: skip
        config = AlpacaBackfillConfig.model_validate(
            {"type": "alpaca_backfill", "name": "warmup", "key_id": DEFAULT_ALPACA_KEY_ID,
             "secret_key": DEFAULT_ALPACA_SECRET, "base_url": alpaca_rest.base_url, **cfg}
        )  # fmt: skip
        src = AlpacaBackfillSource(config, ctx)
        src.http.sleep = Sleeps()
        made.append(src)
        return src

    yield build
    for src in made:
        await src.aclose()


def minute_bars(now: dt.datetime, minutes: int, base: float) -> list[dict[str, Any]]:
    start = now.replace(second=0, microsecond=0) - minutes * MIN
    return [alpaca_bar(start + i * MIN, base + i) for i in range(minutes)]


async def stream_ticks(redis: Redis, keys: Keys) -> list[Tick]:
    return [Tick.from_fields(f) for _, f in await redis.xrange(keys.ticks)]


async def test_backfill_writes_recent_bars_in_time_order(
    make: MakeBackfill, alpaca_rest: FakeAlpacaData, redis: Redis, keys: Keys
) -> None:
    now = dt.datetime.now(UTC)
    alpaca_rest.bars = {
        "AAPL": minute_bars(now, 180, 190.0),  # 3 h, of which the last 2 h are wanted
        "NVDA": minute_bars(now, 120, 120.0),
        "MSFT": minute_bars(now, 120, 400.0),
    }
    src = make(batch=50)
    assert src.config.lookback == dt.timedelta(hours=2)
    await src._run_guarded()  # what the scheduler runs, once
    assert src.done.is_set()
    ticks = await stream_ticks(redis, keys)
    assert {t.symbol for t in ticks} == {"AAPL", "NVDA"}
    assert [t.ts_ms for t in ticks] == sorted(t.ts_ms for t in ticks)
    cutoff = ms(now - dt.timedelta(hours=2))
    assert all(
        t.ts_ms > cutoff and t.kind == "bar" and t.source == "warmup" and t.history for t in ticks
    )
    assert 235 <= len(ticks) <= 240
    assert ticks[-1].ts_ms == ms(now.replace(second=0, microsecond=0))  # last bar's end
    assert (await src.ctx.store.cursor("warmup"))["until"]
    assert not await redis.hgetall(keys.rejects)


async def test_a_restart_backfills_only_what_redis_lacks(
    make: MakeBackfill, alpaca_rest: FakeAlpacaData, redis: Redis, keys: Keys
) -> None:
    now = dt.datetime.now(UTC)
    alpaca_rest.bars = {"AAPL": minute_bars(now, 30, 190.0), "NVDA": minute_bars(now, 30, 120.0)}
    last = now.replace(second=0, microsecond=0) - 10 * MIN  # Redis already has up to here
    await StreamStore(redis, keys).write(
        [Tick("AAPL", ms(last), 199.0, kind="bar"), Tick("NVDA", ms(last), 129.0, kind="bar")]
    )
    n = await make().backfill()
    ticks = (await stream_ticks(redis, keys))[2:]
    assert n == len(ticks) == 20 and min(t.ts_ms for t in ticks) == ms(last + MIN)
    start = alpaca_rest.requests[0].body["start"]
    assert start == (last).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_bad_keys_stop_the_daemon(make: MakeBackfill, alpaca_rest: FakeAlpacaData) -> None:
    rec = Recorder()
    src = make(rec=rec, secret_key="not-the-secret-42")
    await src._run_guarded()
    assert src.done.is_set() and len(rec.fatal) == 1
    assert "HTTP 403" in rec.fatal[0] and "not-the-secret-42" not in rec.fatal[0]


async def test_alpaca_down_skips_the_backfill_without_failing(
    make: MakeBackfill,
    alpaca_rest: FakeAlpacaData,
    redis: Redis,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alpaca_rest.server_error(times=10)
    rec = Recorder()
    src = make(rec=rec)
    with caplog.at_level(logging.WARNING):
        await src._run_guarded()
    assert src.done.is_set() and not rec.fatal and not await stream_ticks(redis, keys)
    assert "backfill skipped" in caplog.text
    assert DEFAULT_ALPACA_SECRET not in caplog.text


def test_lookback_is_bounded() -> None:
    base = {"type": "alpaca_backfill", "name": "w", "key_id": "k", "secret_key": "s"}
    with pytest.raises(ValueError, match="lookback"):
        AlpacaBackfillConfig.model_validate({**base, "lookback": "30d"})


async def test_run_backfills_before_live_feeds_runs_each_once(
    make: MakeBackfill, alpaca_rest: FakeAlpacaData, redis: Redis, keys: Keys
) -> None:
    alpaca_rest.bars = {"AAPL": minute_bars(dt.datetime.now(UTC), 5, 190.0)}
    src = make()
    assert await run_backfills([src, object()], timeout=10) == 5  # type: ignore[list-item]
    assert src.done.is_set()
    await src._run_guarded()  # also scheduled as usual: the second run does nothing
    assert len(alpaca_rest.requests) == 1 and len(await stream_ticks(redis, keys)) == 5
