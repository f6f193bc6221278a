"""Earnings calendars from Finnhub and Alpha Vantage: parsing, the fakes over HTTP, Redis."""

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

from daemon.events import EarningsEvent
from daemon.sources.base import FatalSourceError, Source, SourceContext
from daemon.sources.earnings import (
    EarningsCalendarConfig,
    EarningsCalendarSource,
    av_horizon,
    load_earnings,
    merge_earnings,
    parse_av_earnings_csv,
    parse_finnhub_calendar,
    write_earnings,
)
from daemon.sources.normalize import EdgeFilter
from daemon.store.calendar import CalendarStore
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.fakes.rest_providers import (
    AV_EARNINGS_HEADER,
    DEFAULT_AV_KEY,
    DEFAULT_FINNHUB_TOKEN,
    FakeAlphaVantage,
    FakeFinnhub,
    finnhub_row,
)

TODAY = dt.datetime.now(dt.UTC).date()
D = dt.date
UNIVERSE = frozenset({"AAPL", "NVDA", "MSFT"})


def soon(days: int) -> dt.date:
    return TODAY + dt.timedelta(days=days)


# --- pure parsing -----------------------------------------------------------------------------


def test_finnhub_hours_map_to_when() -> None:
    payload = {
        "earningsCalendar": [
            finnhub_row("AAPL", "2026-05-01", "amc", 1.5),
            finnhub_row("NVDA", "2026-05-27", "bmo", None),
            finnhub_row("MSFT", "2026-04-28", "dmh"),
            finnhub_row("META", "2026-04-29", ""),
            dict(finnhub_row("AMZN", "2026-04-30"), hour=None),
        ]
    }
    events, bad = parse_finnhub_calendar(payload)
    assert bad == 0
    when = {e.symbol: e.when for e in events}
    assert when == {"AAPL": "amc", "NVDA": "bmo", "MSFT": "unknown", "META": "unknown",
                    "AMZN": "unknown"}  # fmt: skip
    by = {e.symbol: e for e in events}
    assert by["AAPL"].note == "Q2 2026, EPS est. 1.5" and by["NVDA"].note == "Q2 2026"
    assert "during market hours" in by["MSFT"].note
    assert [e.date for e in events] == sorted(e.date for e in events)


def test_finnhub_malformed_rows_skipped_and_symbols_filtered() -> None:
    payload = {
        "earningsCalendar": [
            finnhub_row("AAPL", "2026-05-01"),
            finnhub_row("XOM", "2026-05-02"),
            finnhub_row("NVDA", "May 27"),
            dict(finnhub_row("MSFT", "2026-04-28"), symbol=None),
            "junk",
        ]
    }
    events, bad = parse_finnhub_calendar(payload, symbols={"AAPL", "NVDA", "MSFT"})
    assert [e.symbol for e in events] == ["AAPL"] and bad == 3
    with pytest.raises(ValueError, match="earningsCalendar"):
        parse_finnhub_calendar({"error": "x"})


def test_av_csv_six_columns() -> None:
    text = f"{AV_EARNINGS_HEADER}\nAAPL,Apple Inc,2026-05-01,2026-03-31,1.50,USD\n"
    events, bad = parse_av_earnings_csv(text)
    assert bad == 0
    assert events == [
        EarningsEvent("AAPL", D(2026, 5, 1), "unknown", "fiscal period ending 2026-03-31, "
                      "EPS est. 1.5")
    ]  # fmt: skip


def test_av_csv_seventh_column_time_of_the_day() -> None:
    text = (
        f"{AV_EARNINGS_HEADER},timeOfTheDay\r\n"
        "AAPL,Apple Inc,2026-05-01,2026-03-31,1.50,USD,post-market\r\n"
        "NVDA,NVIDIA Corp,2026-05-27,2026-04-30,,USD,pre-market\r\n"
        "MSFT,Microsoft,2026-04-28,2026-03-31,3.1,USD,\r\n"
        "IBM,IBM,2026-04-20,2026-03-31,1.2,USD,pre-market\r\n"
        "META,Meta,not-a-date,2026-03-31,4.0,USD,post-market\r\n"
    )
    events, bad = parse_av_earnings_csv(text, symbols={"AAPL", "NVDA", "MSFT", "META"})
    assert {e.symbol: e.when for e in events} == {"AAPL": "amc", "NVDA": "bmo", "MSFT": "unknown"}
    assert bad == 1
    assert next(e for e in events if e.symbol == "NVDA").note == "fiscal period ending 2026-04-30"


@pytest.mark.parametrize("text", [AV_EARNINGS_HEADER, AV_EARNINGS_HEADER + "\n", "", "\n"])
def test_av_csv_header_only_is_no_rows(text: str) -> None:
    assert parse_av_earnings_csv(text) == ([], 0)


def test_av_csv_with_an_unexpected_header_is_refused() -> None:
    with pytest.raises(ValueError, match="header"):
        parse_av_earnings_csv("<html>oops</html>\n")


def test_av_horizon_rounds_up() -> None:
    days = dt.timedelta(days=1)
    assert [av_horizon(n * days) for n in (1, 90, 92, 93, 184, 200, 366)] == [
        "3month", "3month", "3month", "6month", "6month", "12month", "12month"
    ]  # fmt: skip


def test_merge_prefers_earlier_calendars_but_a_known_time() -> None:
    csv_ = [EarningsEvent("AAPL", D(2026, 5, 1), "unknown", "from my notes")]
    api = [
        EarningsEvent("AAPL", D(2026, 5, 1), "amc", "Q2 2026"),
        EarningsEvent("NVDA", D(2026, 4, 27), "bmo"),
        EarningsEvent("AAPL", D(2026, 5, 2), "amc"),  # providers disagree: both kept
    ]
    assert merge_earnings(csv_, api) == [
        EarningsEvent("NVDA", D(2026, 4, 27), "bmo"),
        EarningsEvent("AAPL", D(2026, 5, 1), "amc", "from my notes"),
        EarningsEvent("AAPL", D(2026, 5, 2), "amc"),
    ]


# --- sources over HTTP into Redis -------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.fatal: list[str] = []

    async def on_ops(self, summary: str, labels: Mapping[str, str]) -> None:
        pass

    def on_fatal(self, source: Source, error: FatalSourceError) -> None:
        self.fatal.append(str(error))


async def _no_sleep(seconds: float) -> None:
    pass


Make = Callable[..., EarningsCalendarSource]


@pytest_asyncio.fixture
async def make(redis: Redis, keys: Keys) -> AsyncIterator[Make]:
    made: list[EarningsCalendarSource] = []

    def build(
        name: str, provider: str, base_url: str, api_key: str, *,
        symbols: frozenset[str] = UNIVERSE, rec: Recorder | None = None, **cfg: Any,
    ) -> EarningsCalendarSource:  # fmt: skip
        rec = rec or Recorder()
        ctx = SourceContext(
            StreamStore(redis, keys), EdgeFilter(symbols), Path("."), symbols=symbols,
            ops=rec.on_ops, on_fatal=rec.on_fatal,
        )  # fmt: skip
        config = EarningsCalendarConfig.model_validate(
            {"type": "earnings_calendar", "name": name, "provider": provider,
             "api_key": api_key, "base_url": base_url, **cfg}
        )  # fmt: skip
        src = EarningsCalendarSource(config, ctx)
        src.http.sleep = _no_sleep
        made.append(src)
        return src

    yield build
    for src in made:
        await src.aclose()


async def test_finnhub_calendar_lands_in_redis(
    make: Make, finnhub_rest: FakeFinnhub, redis: Redis, keys: Keys
) -> None:
    finnhub_rest.calendar = [
        finnhub_row("AAPL", soon(10), "amc"),
        finnhub_row("NVDA", soon(30), "bmo"),
        finnhub_row("NVDA", soon(400), "bmo"),  # beyond the horizon
        finnhub_row("XOM", soon(5), "bmo"),  # no rule needs it
    ]
    src = make("fh-cal", "finnhub", finnhub_rest.base_url, DEFAULT_FINNHUB_TOKEN)
    assert src.config.interval == dt.timedelta(hours=6)
    updates: list[int] = []

    async def on_update() -> None:  # the daemon reschedules reminders here
        updates.append(len(await load_earnings(CalendarStore(redis, keys))))

    src.on_update = on_update
    assert await src.poll_once() is True
    assert updates == [2]
    assert await load_earnings(CalendarStore(redis, keys)) == [
        EarningsEvent("AAPL", soon(10), "amc", "Q2 2026, EPS est. 1.5"),
        EarningsEvent("NVDA", soon(30), "bmo", "Q2 2026, EPS est. 1.5"),
    ]
    assert await redis.hget(keys.earnings_calendar, "MSFT|fh-cal") == "[]"
    # one request per symbol, the key in a header (never in the URL), the horizon as from/to
    assert sorted(r.body["symbol"] for r in finnhub_rest.requests) == ["AAPL", "MSFT", "NVDA"]
    for r in finnhub_rest.requests:
        assert r.headers["X-Finnhub-Token"] == DEFAULT_FINNHUB_TOKEN and "token" not in r.body
        assert r.body["from"] == (TODAY - dt.timedelta(days=7)).isoformat()
        assert r.body["to"] == soon(90).isoformat()


async def test_finnhub_fake_tolerates_the_double_slash(
    make: Make, finnhub_rest: FakeFinnhub, redis: Redis, keys: Keys
) -> None:
    finnhub_rest.calendar = [finnhub_row("AAPL", soon(3), "bmo")]
    async with aiohttp.ClientSession() as session:  # what finnhub-python sends
        url = f"{finnhub_rest.base_url}//calendar/earnings"
        async with session.get(url, params={"token": DEFAULT_FINNHUB_TOKEN}) as resp:
            assert resp.status == 200
            assert (await resp.json())["earningsCalendar"][0]["symbol"] == "AAPL"
    assert finnhub_rest.requests[0].path == "/api/v1//calendar/earnings"
    # and a base_url written with a trailing slash still works
    src = make("fh", "finnhub", finnhub_rest.base_url + "/", DEFAULT_FINNHUB_TOKEN,
               tickers=["AAPL"])  # fmt: skip
    assert await src.poll_once() is True
    assert [e.symbol for e in await load_earnings(CalendarStore(redis, keys))] == ["AAPL"]


async def test_finnhub_429_is_retried_and_401_is_fatal(
    make: Make, finnhub_rest: FakeFinnhub, redis: Redis, keys: Keys
) -> None:
    finnhub_rest.calendar = [finnhub_row("AAPL", soon(3), "bmo")]
    finnhub_rest.rate_limit(retry_after=1)
    ok = make("fh", "finnhub", finnhub_rest.base_url, DEFAULT_FINNHUB_TOKEN, tickers=["AAPL"])
    assert await ok.poll_once() is True
    assert [r.status for r in finnhub_rest.requests] == [429, 200]
    rec = Recorder()
    bad = make("fh2", "finnhub", finnhub_rest.base_url, "wrong-token-1234", rec=rec)
    assert await bad.poll_once() is False
    assert rec.fatal and "$FINNHUB_API_KEY" in rec.fatal[0]
    assert "wrong-token-1234" not in rec.fatal[0]


async def test_alphavantage_calendar_csv_lands_in_redis(
    make: Make, alphavantage_rest: FakeAlphaVantage, redis: Redis, keys: Keys
) -> None:
    alphavantage_rest.earnings_csv = (
        f"{AV_EARNINGS_HEADER},timeOfTheDay\n"
        f"AAPL,Apple Inc,{soon(10)},2026-03-31,1.50,USD,post-market\n"
        f"NVDA,NVIDIA,{soon(20)},2026-04-30,,USD,pre-market\n"
        f"IBM,IBM,{soon(5)},2026-03-31,1.2,USD,pre-market\n"
    )
    src = make("av-cal", "alphavantage", alphavantage_rest.base_url, DEFAULT_AV_KEY,
               horizon="120d")  # fmt: skip
    assert await src.poll_once() is True
    events = await load_earnings(CalendarStore(redis, keys))
    assert [(e.symbol, e.date, e.when) for e in events] == [
        ("AAPL", soon(10), "amc"),
        ("NVDA", soon(20), "bmo"),
    ]
    (req,) = alphavantage_rest.requests  # one call for the whole market
    assert req.body["function"] == "EARNINGS_CALENDAR" and req.body["horizon"] == "6month"
    assert "symbol" not in req.body


async def test_alphavantage_header_only_clears_the_symbols(
    make: Make, alphavantage_rest: FakeAlphaVantage, redis: Redis, keys: Keys
) -> None:
    alphavantage_rest.earnings_csv = f"{AV_EARNINGS_HEADER}\nAAPL,Apple,{soon(3)},x,1,USD\n"
    src = make("av-cal", "alphavantage", alphavantage_rest.base_url, DEFAULT_AV_KEY)
    await src.poll_once()
    assert len(await load_earnings(CalendarStore(redis, keys))) == 1
    alphavantage_rest.earnings_csv = AV_EARNINGS_HEADER + "\n"
    assert await src.poll_once() is True
    assert await load_earnings(CalendarStore(redis, keys)) == []


@pytest.mark.parametrize("answer", ["information", "note", "error_message"])
async def test_alphavantage_json_answers_write_nothing_and_hide_the_key(
    make: Make,
    alphavantage_rest: FakeAlphaVantage,
    redis: Redis,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
    answer: str,
) -> None:
    alphavantage_rest.earnings_csv = f"{AV_EARNINGS_HEADER}\nAAPL,Apple,{soon(3)},x,1,USD\n"
    getattr(alphavantage_rest, answer)()
    src = make("av-cal", "alphavantage", alphavantage_rest.base_url, DEFAULT_AV_KEY)
    with caplog.at_level(logging.DEBUG):
        assert await src.poll_once() is False
    assert not await redis.exists(keys.earnings_calendar)
    assert DEFAULT_AV_KEY not in caplog.text and src.pause_s is not None
    assert await src.poll_once() is True  # the next poll works again


async def test_two_providers_merge_and_dropped_symbols_are_removed(
    make: Make,
    finnhub_rest: FakeFinnhub,
    alphavantage_rest: FakeAlphaVantage,
    redis: Redis,
    keys: Keys,
) -> None:
    finnhub_rest.calendar = [finnhub_row("AAPL", soon(10), ""), finnhub_row("NVDA", soon(9))]
    alphavantage_rest.earnings_csv = (
        f"{AV_EARNINGS_HEADER},timeOfTheDay\nAAPL,Apple,{soon(10)},x,1,USD,post-market\n"
    )
    fh = make("fh", "finnhub", finnhub_rest.base_url, DEFAULT_FINNHUB_TOKEN)
    av = make("av", "alphavantage", alphavantage_rest.base_url, DEFAULT_AV_KEY)
    await fh.poll_once()
    await av.poll_once()
    events = await load_earnings(CalendarStore(redis, keys))
    assert [(e.symbol, e.when) for e in events] == [("NVDA", "amc"), ("AAPL", "amc")]
    # the rules no longer need NVDA: the next poll removes it (from this source only)
    fh.ctx.symbols = frozenset({"AAPL"})
    await fh.poll_once()
    assert [e.symbol for e in await load_earnings(CalendarStore(redis, keys))] == ["AAPL"]
    assert "NVDA|fh" not in await redis.hkeys(keys.earnings_calendar)


async def test_load_skips_unreadable_fields(redis: Redis, keys: Keys) -> None:
    await write_earnings(
        CalendarStore(redis, keys), "x", ["AAPL"], [EarningsEvent("AAPL", D(2026, 5, 1), "bmo")]
    )
    await redis.hset(keys.earnings_calendar, "NVDA|y", "{not json")
    assert await load_earnings(CalendarStore(redis, keys)) == [
        EarningsEvent("AAPL", D(2026, 5, 1), "bmo")
    ]
