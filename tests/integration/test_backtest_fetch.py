"""`tickwatch backtest --source`: history from Alpaca's and Polygon's REST APIs (loopback
fakes), cached as Parquet so that a second run is offline."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import pytest_asyncio
from rich.console import Console

from daemon.backtest.fetch import (
    FetchedHistory,
    FetchError,
    ProviderName,
    console_progress,
    fetch_history,
)
from daemon.events import Headline, Tick
from daemon.sources.replay import load_timeline
from tests.fakes import Injection, RecordedRequest
from tests.fakes.rest_providers import (
    DEFAULT_ALPACA_KEY_ID,
    DEFAULT_ALPACA_SECRET,
    DEFAULT_POLYGON_KEY,
    FakeAlpacaData,
    FakePolygonRest,
    alpaca_bar,
    alpaca_news_item,
    polygon_agg,
    polygon_news_item,
)

UTC = dt.UTC
MIN = dt.timedelta(minutes=1)
JAN = dt.datetime(2026, 1, 1, tzinfo=UTC)
FEB = dt.datetime(2026, 2, 1, tzinfo=UTC)
MAR = dt.datetime(2026, 3, 1, tzinfo=UTC)
#: Long after January and February: both months are complete.
LATER = dt.datetime(2026, 6, 1, tzinfo=UTC)
BAR_COLUMNS = ["ts", "symbol", "open", "high", "low", "close", "volume"]
NEWS_COLUMNS = ["ts", "id", "title", "summary", "symbols", "source", "url", "sentiment",
                "ticker_sentiment"]  # fmt: skip


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


class Sleeps:
    """Records the waits the retry loop asks for instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class World:
    """One provider's fake with a provider-neutral way to put bars and articles in it."""

    name: ProviderName
    server: FakeAlpacaData | FakePolygonRest
    env: dict[str, str]
    sleeps: Sleeps = field(default_factory=Sleeps)

    def bar(self, symbol: str, t: dt.datetime, close: float, volume: float = 100, *,
            open: float, high: float, low: float) -> None:  # fmt: skip
        if isinstance(self.server, FakeAlpacaData):
            self.server.bars.setdefault(symbol, []).append(
                alpaca_bar(t, close, int(volume), open=open, high=high, low=low)
            )
        else:
            self.server.bars.setdefault(symbol, []).append(
                polygon_agg(t, close, volume, open=open, high=high, low=low)
            )

    def article(self, n: int, title: str, t: dt.datetime, symbols: list[str]) -> str:
        """Adds an article; returns the headline id the cache should hold for it."""
        if isinstance(self.server, FakeAlpacaData):
            self.server.news.append(alpaca_news_item(n, title, t, symbols, summary="s"))
            return f"alpaca:{n}"
        self.server.news.append(polygon_news_item(f"pg{n}", title, t, symbols, description="s"))
        return f"polygon:pg{n}"

    def fail(self, symbol: str, status: int, times: int = 1, **headers: str) -> None:
        """The next `times` requests about `symbol` answer `status`."""

        def about(rec: RecordedRequest) -> bool:
            return symbol in (rec.body.get("symbols"), rec.body.get("ticker")) or (
                f"/ticker/{symbol}/" in rec.path
            )

        body: dict[str, Any] = {"message": "boom", "status": "ERROR", "error": "boom"}
        self.server.inject(Injection(status, body, times, dict(headers), match=about))

    def data_requests(self) -> list[RecordedRequest]:
        return list(self.server.requests)

    async def fetch(self, symbols: list[str], start: dt.datetime, end: dt.datetime,
                    cache: Path, **kw: Any) -> FetchedHistory:  # fmt: skip
        args: dict[str, Any] = {"base_url": self.server.base_url, "env": self.env,
                                "now": LATER, "sleep": self.sleeps, **kw}  # fmt: skip
        return await fetch_history(self.name, symbols, start, end, cache, **args)


@pytest_asyncio.fixture
async def polygon_rest() -> AsyncIterator[FakePolygonRest]:
    async with FakePolygonRest() as server:
        yield server


@pytest_asyncio.fixture(params=["alpaca", "polygon"])
async def world(
    request: pytest.FixtureRequest, alpaca_rest: FakeAlpacaData, polygon_rest: FakePolygonRest
) -> World:
    if request.param == "alpaca":
        env = {
            "APCA_API_KEY_ID": DEFAULT_ALPACA_KEY_ID,
            "APCA_API_SECRET_KEY": DEFAULT_ALPACA_SECRET,
        }
        return World("alpaca", alpaca_rest, env)
    return World("polygon", polygon_rest, {"POLYGON_API_KEY": DEFAULT_POLYGON_KEY})


#: (symbol, bar start, open, high, low, close, volume): January's last minute and February's
#: first sit on the month boundary, and must land in their own month's file.
BARS = [
    ("AAPL", JAN + dt.timedelta(days=14, hours=14, minutes=30), 190.0, 191.5, 189.5, 191.0, 1200),
    ("AAPL", JAN + dt.timedelta(days=14, hours=14, minutes=31), 191.0, 192.0, 190.8, 191.8, 900),
    ("AAPL", FEB - MIN, 185.0, 185.4, 184.9, 185.2, 50),
    ("AAPL", FEB, 185.2, 185.3, 185.0, 185.1, 60),
    ("AAPL", FEB + dt.timedelta(days=2, hours=15), 180.0, 181.0, 179.0, 180.5, 700),
    ("NVDA", JAN + dt.timedelta(days=5, hours=15), 120.0, 121.0, 119.5, 120.5, 3000),
    ("NVDA", JAN + dt.timedelta(days=6, hours=15), 122.0, 123.0, 121.0, 122.5, 2500),
    ("NVDA", FEB + dt.timedelta(days=9, hours=15), 130.0, 131.0, 129.0, 130.5, 4000),
    ("NVDA", FEB + dt.timedelta(days=9, hours=15, minutes=1), 130.5, 131.2, 130.1, 131.0, 3500),
    ("NVDA", MAR + dt.timedelta(hours=15), 140.0, 140.0, 140.0, 140.0, 10),  # not asked for
]


def fill(w: World) -> dict[str, str]:
    """BARS and four articles (one tagged with both symbols); returns title → headline id."""
    for sym, t, o, h, lo, c, v in BARS:
        w.bar(sym, t, c, v, open=o, high=h, low=lo)
    return {
        "Apple unveils": w.article(1, "Apple unveils", JAN + dt.timedelta(days=9, hours=16),
                                   ["AAPL"]),
        "Chips and phones": w.article(2, "Chips and phones", FEB + dt.timedelta(days=3, hours=13),
                                      ["AAPL", "NVDA"]),
        "Nvidia guides up": w.article(3, "Nvidia guides up", FEB + dt.timedelta(days=20),
                                      ["NVDA"]),
        "March story": w.article(4, "March story", MAR + dt.timedelta(days=2), ["NVDA"]),
    }  # fmt: skip


def expected_bars(symbol: str, start: dt.datetime, end: dt.datetime) -> list[tuple[Any, ...]]:
    return [
        (t, sym, o, h, lo, c, float(v))
        for sym, t, o, h, lo, c, v in BARS
        if sym == symbol and start <= t < end
    ]


def rows(path: Path) -> list[tuple[Any, ...]]:
    df = pd.read_parquet(path)
    stamps = [pd.Timestamp(t).to_pydatetime() for t in df["ts"]]
    values = zip(*(df[c].tolist() for c in BAR_COLUMNS[1:]), strict=True)
    return [(t, *v) for t, v in zip(stamps, values, strict=True)]


# --- the fetch and the cache -------------------------------------------------------------------


async def test_two_symbols_two_months_then_offline(world: World, tmp_path: Path) -> None:
    world.server.page_size = 1  # one bar or article a page: every page link must be followed
    ids = fill(world)
    got = await world.fetch(["nvda", "AAPL"], JAN, MAR, tmp_path)

    root = tmp_path / world.name
    assert got.bars == [
        root / "bars" / "AAPL" / "2026-01.parquet",
        root / "bars" / "AAPL" / "2026-02.parquet",
        root / "bars" / "NVDA" / "2026-01.parquet",
        root / "bars" / "NVDA" / "2026-02.parquet",
    ]
    for path in got.bars:
        sym, month = path.parent.name, path.stem
        lo = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        hi = FEB if lo == JAN else MAR
        assert rows(path) == expected_bars(sym, lo, hi), path  # each bar in its month, in order
        df = pd.read_parquet(path)
        assert list(df.columns) == BAR_COLUMNS
        assert str(df["ts"].dtype) == "datetime64[ms, UTC]"
        assert pd.api.types.is_string_dtype(df["symbol"])
        assert all(str(df[c].dtype) == "float64" for c in BAR_COLUMNS[2:])
    assert got.fetched == 9 and got.cached == 0 and got.symbols_without_data == []
    pages = len(world.data_requests())
    assert pages >= 9 + 4  # a page per bar, a page per article at least
    assert not list(tmp_path.rglob("*.tmp"))  # written through temp files, none left over

    # the news: one file, each article once, even the one both symbols are tagged with
    assert len(got.news) == 1
    news = pd.read_parquet(got.news[0])
    assert list(news.columns) == NEWS_COLUMNS
    assert str(news["ts"].dtype) == "datetime64[ms, UTC]"
    assert news["id"].tolist() == [ids["Apple unveils"], ids["Chips and phones"],
                                   ids["Nvidia guides up"]]  # fmt: skip
    both = news.iloc[1]
    assert both["symbols"] == "AAPL NVDA" and both["summary"] == "s"
    assert both["ts"] == pd.Timestamp(FEB + dt.timedelta(days=3, hours=13))
    assert news["sentiment"].isna().all() and set(news["ticker_sentiment"]) == {"{}"}

    # second run: not one request, the same files, the same rows
    before = {p: rows(p) for p in got.bars}
    again = await world.fetch(["AAPL", "NVDA"], JAN, MAR, tmp_path)
    assert len(world.data_requests()) == pages
    assert again.bars == got.bars and again.news == got.news
    assert {p: rows(p) for p in again.bars} == before
    assert again.fetched == 0 and again.cached == 9
    pd.testing.assert_frame_equal(pd.read_parquet(again.news[0]), news)


async def test_a_range_inside_a_month_is_served_by_the_cached_month(
    world: World, tmp_path: Path
) -> None:
    fill(world)
    await world.fetch(["AAPL"], JAN, MAR, tmp_path)
    n = len(world.data_requests())
    one_day = await world.fetch(["AAPL"], FEB + dt.timedelta(days=2), FEB + dt.timedelta(days=3),
                                tmp_path)  # fmt: skip
    assert len(world.data_requests()) == n
    assert one_day.bars == [tmp_path / world.name / "bars" / "AAPL" / "2026-02.parquet"]
    assert one_day.symbols_without_data == []


async def test_files_load_through_the_replay_reader(world: World, tmp_path: Path) -> None:
    ids = fill(world)
    got = await world.fetch(["AAPL", "NVDA"], JAN, MAR, tmp_path)
    aapl_feb = tmp_path / world.name / "bars" / "AAPL" / "2026-02.parquet"
    tl = load_timeline(aapl_feb, got.news[0], "backtest")
    ticks = [e for e in tl.events if isinstance(e, Tick)]
    heads = [e for e in tl.events if isinstance(e, Headline)]
    # a bar is told at its end, priced at its close, sized by its volume
    feb = [b for b in BARS if b[0] == "AAPL" and FEB <= b[1] < MAR]
    assert [(t.symbol, t.ts_ms, t.price, t.size, t.kind) for t in ticks] == [
        ("AAPL", ms(start) + 60_000, c, float(v), "bar") for _, start, _, _, _, c, v in feb
    ]
    assert tl.bad_rows == 0 and list(tl.ts_ms) == sorted(tl.ts_ms)
    assert [h.id for h in heads] == [ids["Apple unveils"], ids["Chips and phones"],
                                     ids["Nvidia guides up"]]  # fmt: skip
    chips = heads[1]
    assert chips.symbols == ("AAPL", "NVDA") and chips.title == "Chips and phones"
    assert chips.sentiment is None and chips.ticker_sentiment == {}
    assert chips.ts_ms == ms(FEB + dt.timedelta(days=3, hours=13))


async def test_a_symbol_without_data_is_named_and_cached_too(world: World, tmp_path: Path) -> None:
    fill(world)
    got = await world.fetch(["AAPL", "ZZZZ"], JAN, MAR, tmp_path, news=False)
    assert got.symbols_without_data == ["ZZZZ"]
    assert all("ZZZZ" not in p.parts for p in got.bars) and got.news == []
    empty = tmp_path / world.name / "bars" / "ZZZZ" / "2026-01.parquet"
    assert pq.read_metadata(empty).num_rows == 0  # remembered as empty: not asked again
    n = len(world.data_requests())
    again = await world.fetch(["AAPL", "ZZZZ"], JAN, MAR, tmp_path, news=False)
    assert len(world.data_requests()) == n and again.symbols_without_data == ["ZZZZ"]


async def test_data_outside_the_range_does_not_count_as_data(world: World, tmp_path: Path) -> None:
    fill(world)  # NVDA trades on Jan 6-7 and Feb 10, not on Jan 20-25
    got = await world.fetch(["NVDA"], JAN + dt.timedelta(days=19), JAN + dt.timedelta(days=24),
                            tmp_path, news=False)  # fmt: skip
    assert got.symbols_without_data == ["NVDA"]
    assert got.bars == [tmp_path / world.name / "bars" / "NVDA" / "2026-01.parquet"]


async def test_the_current_month_is_fetched_again_from_its_last_bar(
    world: World, tmp_path: Path
) -> None:
    t0 = MAR + dt.timedelta(days=2, hours=14, minutes=30)
    for i in range(3):
        world.bar("AAPL", t0 + i * MIN, 100.0 + i, open=100, high=103, low=99)
    midday = MAR + dt.timedelta(days=2, hours=20)
    first = await world.fetch(["AAPL"], MAR, midday, tmp_path, news=False, now=midday)
    path = tmp_path / world.name / "bars" / "AAPL" / "2026-03.parquet"
    assert first.bars == [path] and first.fetched == 3
    meta = json.loads(pq.read_schema(path).metadata[b"tickwatch.history"])
    assert meta["complete"] is False and meta["until_ms"] == ms(midday)

    # the next day: the last cached bar came again (corrected), and two new ones
    world.server.bars["AAPL"].pop()
    world.bar("AAPL", t0 + 2 * MIN, 102.5, open=100, high=103, low=99)
    world.bar("AAPL", t0 + dt.timedelta(days=1), 110.0, open=110, high=110, low=110)
    world.bar("AAPL", t0 + dt.timedelta(days=1, minutes=1), 111.0, open=111, high=111, low=111)
    n = len(world.data_requests())
    next_day = midday + dt.timedelta(days=1)
    second = await world.fetch(["AAPL"], MAR, next_day, tmp_path, news=False, now=next_day)
    asked = world.data_requests()[n:]
    assert len(asked) == 1
    if world.name == "alpaca":
        assert asked[0].body["start"] == "2026-03-03T14:32:00Z"  # the last cached bar, on
    else:
        assert f"/range/1/minute/{ms(t0 + 2 * MIN)}/" in asked[0].path
    assert second.fetched == 3 and second.cached == 2
    assert [r[5] for r in rows(path)] == [100.0, 101.0, 102.5, 110.0, 111.0]


async def test_a_month_just_ended_is_completed_on_the_next_run(
    world: World, tmp_path: Path
) -> None:
    world.bar("AAPL", FEB + dt.timedelta(days=27, hours=20), 50.0, open=50, high=50, low=50)
    just_after = MAR + dt.timedelta(hours=1)  # February ended, but only an hour ago
    await world.fetch(["AAPL"], FEB, MAR, tmp_path, news=False, now=just_after)
    world.bar("AAPL", FEB + dt.timedelta(days=27, hours=23), 51.0, open=51, high=51, low=51)
    n = len(world.data_requests())
    got = await world.fetch(["AAPL"], FEB, MAR, tmp_path, news=False, now=LATER)
    assert len(world.data_requests()) == n + 1 and got.fetched == 2  # the last bar, on
    assert [r[5] for r in rows(got.bars[0])] == [50.0, 51.0]
    await world.fetch(["AAPL"], FEB, MAR, tmp_path, news=False, now=LATER)
    assert len(world.data_requests()) == n + 1  # complete now: never asked again


async def test_news_of_the_current_month_is_fetched_again_and_merged(
    world: World, tmp_path: Path
) -> None:
    world.bar("NVDA", MAR + dt.timedelta(days=1), 1.0, open=1, high=1, low=1)
    first_id = world.article(1, "Early", MAR + dt.timedelta(days=1), ["NVDA"])
    day3 = MAR + dt.timedelta(days=3)
    await world.fetch(["NVDA"], MAR, day3, tmp_path, now=day3)
    later_id = world.article(2, "Later", MAR + dt.timedelta(days=4), ["NVDA"])
    day5 = MAR + dt.timedelta(days=5)
    got = await world.fetch(["NVDA"], MAR, day5, tmp_path, now=day5)
    assert pd.read_parquet(got.news[0])["id"].tolist() == [first_id, later_id]


# --- credentials and HTTP errors ------------------------------------------------------------


async def test_a_missing_key_names_the_variable(world: World, tmp_path: Path) -> None:
    fill(world)
    missing = "APCA_API_SECRET_KEY" if world.name == "alpaca" else "POLYGON_API_KEY"
    env = {k: v for k, v in world.env.items() if k != missing}
    with pytest.raises(FetchError, match=missing) as err:
        await world.fetch(["AAPL"], JAN, FEB, tmp_path, env=env)
    assert "export" in str(err.value)
    assert world.data_requests() == []


async def test_a_full_cache_needs_no_key(world: World, tmp_path: Path) -> None:
    fill(world)
    await world.fetch(["AAPL"], JAN, MAR, tmp_path)
    got = await world.fetch(["AAPL"], JAN, MAR, tmp_path, env={})
    assert got.cached == 5 and got.fetched == 0


async def test_a_refused_key_says_check_the_key(world: World, tmp_path: Path) -> None:
    fill(world)
    wrong = "wrong-secret-4242"
    env = {k: wrong for k in world.env} if world.name == "polygon" else {
        **world.env, "APCA_API_SECRET_KEY": wrong}  # fmt: skip
    with pytest.raises(FetchError, match="check the key") as err:
        await world.fetch(["AAPL"], JAN, FEB, tmp_path, env=env)
    status = 401 if world.name == "polygon" else 403  # Alpaca: 401 only without the headers
    assert f"HTTP {status}" in str(err.value) and wrong not in str(err.value)
    assert [r.status for r in world.data_requests()] == [status]  # never retried


async def test_rate_limit_waits_what_retry_after_asks(world: World, tmp_path: Path) -> None:
    fill(world)
    world.fail("AAPL", 429, times=1, **{"Retry-After": "1"})
    got = await world.fetch(["AAPL"], JAN, FEB, tmp_path, news=False)
    assert [r.status for r in world.data_requests()] == [429, 200]
    assert world.sleeps.waits == [1.0]
    assert rows(got.bars[0]) == expected_bars("AAPL", JAN, FEB)


async def test_a_failure_names_symbol_and_month_and_keeps_what_was_fetched(
    world: World, tmp_path: Path
) -> None:
    fill(world)
    world.fail("NVDA", 500, times=100)
    with pytest.raises(FetchError) as err:
        await world.fetch(["AAPL", "NVDA"], JAN, MAR, tmp_path, news=False, concurrency=1,
                          retries=1)  # fmt: skip
    message = str(err.value)
    assert "bars of NVDA for 2026-01" in message and "HTTP 500" in message
    assert "run again" in message
    root = tmp_path / world.name / "bars"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet")) == [
        "AAPL/2026-01.parquet", "AAPL/2026-02.parquet",
    ]  # fmt: skip
    world.server._injections.clear()
    n = len(world.data_requests())
    got = await world.fetch(["AAPL", "NVDA"], JAN, MAR, tmp_path, news=False)
    resumed = world.data_requests()[n:]
    assert len(resumed) == 2 and all("AAPL" not in r.path + str(r.body) for r in resumed)
    assert got.cached == 5 and got.fetched == 4


async def test_polygon_sends_the_key_in_a_header_only(
    polygon_rest: FakePolygonRest, tmp_path: Path
) -> None:
    polygon_rest.page_size = 1
    polygon_rest.bars["AAPL"] = [polygon_agg(JAN + dt.timedelta(days=3, hours=15 + i), 10.0 + i)
                                 for i in range(3)]  # fmt: skip
    env = {"POLYGON_API_KEY": DEFAULT_POLYGON_KEY}
    await fetch_history("polygon", ["AAPL"], JAN, FEB, tmp_path, base_url=polygon_rest.base_url,
                        env=env, news=False, now=LATER)  # fmt: skip
    assert len(polygon_rest.requests) == 3  # the next_url of each page followed
    for r in polygon_rest.requests:
        assert r.headers["Authorization"] == f"Bearer {DEFAULT_POLYGON_KEY}"
        assert "apiKey" not in r.body and DEFAULT_POLYGON_KEY not in r.path
    assert polygon_rest.requests[0].body == {"adjusted": "false", "sort": "asc", "limit": "50000"}
    assert "cursor" in polygon_rest.requests[1].body


@pytest.mark.parametrize(
    ("symbols", "start", "end", "match"),
    [
        (["AAPL"], FEB, FEB, "empty range"),
        (["AAPL"], MAR, FEB, "empty range"),
        (["../etc"], JAN, FEB, "not a ticker symbol"),
        ([], JAN, FEB, "no symbols"),
    ],
)
async def test_bad_requests_are_refused_before_any_request(
    alpaca_rest: FakeAlpacaData, tmp_path: Path, symbols: list[str], start: dt.datetime,
    end: dt.datetime, match: str,
) -> None:  # fmt: skip
    with pytest.raises(FetchError, match=match):
        await fetch_history("alpaca", symbols, start, end, tmp_path, base_url=alpaca_rest.base_url,
                            env={}, now=LATER)  # fmt: skip
    assert alpaca_rest.requests == [] and not any(tmp_path.iterdir())


# --- progress --------------------------------------------------------------------------------


@dataclass
class Recorder:
    tasks: dict[int, tuple[str, float | None]] = field(default_factory=dict)
    done: dict[int, float] = field(default_factory=dict)

    def add_task(self, description: str, *, total: float | None = None) -> int:
        self.tasks[len(self.tasks)] = (description, total)
        self.done[len(self.done)] = 0
        return len(self.tasks) - 1

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.done[task_id] += advance

    def update(self, task_id: int, **kw: Any) -> None:
        raise AssertionError("not used")


async def test_progress_counts_symbol_months(alpaca_rest: FakeAlpacaData, tmp_path: Path) -> None:
    w = World("alpaca", alpaca_rest, {"APCA_API_KEY_ID": DEFAULT_ALPACA_KEY_ID,
                                      "APCA_API_SECRET_KEY": DEFAULT_ALPACA_SECRET})  # fmt: skip
    fill(w)
    rec = Recorder()
    await w.fetch(["AAPL", "NVDA"], JAN, MAR, tmp_path, progress=rec)
    assert rec.tasks == {0: ("fetching bars", 4), 1: ("fetching news", 4)}
    assert rec.done == {0: 4, 1: 4}
    again = Recorder()
    await w.fetch(["AAPL", "NVDA"], JAN, MAR, tmp_path, progress=again)
    assert again.tasks == {}  # nothing to fetch: no bar at all


async def test_console_progress_draws_a_rich_bar(
    alpaca_rest: FakeAlpacaData, tmp_path: Path
) -> None:
    w = World("alpaca", alpaca_rest, {"APCA_API_KEY_ID": DEFAULT_ALPACA_KEY_ID,
                                      "APCA_API_SECRET_KEY": DEFAULT_ALPACA_SECRET})  # fmt: skip
    fill(w)
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system=None)
    with console_progress(console) as progress:
        await w.fetch(["AAPL", "NVDA"], JAN, MAR, tmp_path, progress=progress)
        assert progress.live.transient is False
        tasks = {t.description: (t.completed, t.total) for t in progress.tasks}
    assert tasks == {"fetching bars": (4, 4), "fetching news": (4, 4)}
    text = out.getvalue()
    assert "fetching bars" in text and "4/4" in text


def test_progress_protocol_accepts_rich(tmp_path: Path) -> None:
    """A rich Progress works where a ProgressLike is asked for (mypy --strict also accepts
    the assignment; the project's mypy run covers daemon/ only)."""
    from rich.progress import Progress

    from daemon.backtest.fetch import ProgressLike

    p: ProgressLike = Progress(disable=True)
    task = p.add_task("x", total=2)
    p.advance(task, 1)
    p.update(task, completed=2)


# --- through the command -----------------------------------------------------------------------

CLI_RULES = """\
rules:
  - name: nvda-high
    when: {threshold: {symbols: NVDA, above: 125}}
    channels: [desk]
"""


async def test_the_command_fetches_with_a_progress_bar_and_then_runs_offline(
    alpaca_rest: FakeAlpacaData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """`tickwatch backtest --source alpaca` as a user runs it: keys from the environment, a
    progress bar per kind, the months cached under the config's var/history/, the rules run
    on what was fetched; the second run asks the provider nothing and needs no key."""
    from daemon.cli import main

    w = World("alpaca", alpaca_rest, {})
    fill(w)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(CLI_RULES)
    config = tmp_path / "alerts.yaml"
    config.write_text("channels:\n  desk: {type: console}\ninclude: [rules/*.yaml]\n")
    monkeypatch.setenv("APCA_API_KEY_ID", DEFAULT_ALPACA_KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", DEFAULT_ALPACA_SECRET)
    out = tmp_path / "out"
    argv = ["backtest", "--config", str(config), "--source", "alpaca", "--source-url",
            alpaca_rest.base_url, "--from", "2026-01-01", "--to", "2026-03-01", "--out",
            str(out), "--no-charts"]  # fmt: skip
    capsys.readouterr()
    rc = await asyncio.to_thread(main, argv)  # the command runs its own event loop
    text = capsys.readouterr().out
    assert rc == 0, text
    # NVDA, the rules' one symbol, for the UTC months that New York's Jan 1 - Mar 1 touches
    assert "fetching bars" in text and "fetching news" in text and "3/3 symbol-months" in text
    assert (tmp_path / "var/history/alpaca/bars/NVDA/2026-02.parquet").exists()
    asked = len(alpaca_rest.requests)
    assert asked >= 6  # 3 months x (bars, news)
    first = json.loads((out / "alerts.json").read_text())
    # NVDA's bar of Feb 10 15:00 closes at 130.5 (above 125): told at the bar's end
    assert [(a["rule"], a["state"], a["time"]) for a in first] == [
        ("nvda-high", "firing", "2026-02-10T15:01:00.000Z")
    ]
    monkeypatch.delenv("APCA_API_KEY_ID")
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    rc = await asyncio.to_thread(main, argv)
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "fetching" not in text and len(alpaca_rest.requests) == asked  # offline
    assert json.loads((out / "alerts.json").read_text()) == first


async def test_the_command_without_keys_names_the_variables(
    alpaca_rest: FakeAlpacaData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from daemon.cli import main

    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(CLI_RULES)
    config = tmp_path / "alerts.yaml"
    config.write_text("channels:\n  desk: {type: console}\ninclude: [rules/*.yaml]\n")
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    rc = await asyncio.to_thread(main, ["backtest", "--config", str(config), "--source", "alpaca",
                                        "--source-url", alpaca_rest.base_url, "--from",
                                        "2026-01-01", "--to", "2026-02-01"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert "APCA_API_KEY_ID" in err and "Traceback" not in err
    assert alpaca_rest.requests == []
