"""Alpha Vantage NEWS_SENTIMENT poller against the fake over real HTTP, writing to real Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pydantic
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from daemon.events import Headline, sentiment_label
from daemon.sources.alphavantage import (
    LABEL_SCORES,
    AlphaVantageNewsConfig,
    AlphaVantageNewsSource,
    check_av_payload,
    parse_av_time,
    parse_news_feed,
    parse_news_item,
)
from daemon.sources.base import FatalSourceError, Source, SourceConfig, SourceContext
from daemon.sources.normalize import EdgeFilter
from daemon.sources.poller import Http, PollError, Throttled
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.fakes import Injection
from tests.fakes.rest_providers import DEFAULT_AV_KEY, FakeAlphaVantage, av_news_item

UNIVERSE = frozenset({"NVDA", "AAPL", "MSFT"})
NOW = datetime.now(UTC).replace(microsecond=0)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


class Recorder:
    def __init__(self) -> None:
        self.fatal: list[str] = []
        self.ops: list[str] = []

    async def on_ops(self, summary: str, labels: Mapping[str, str]) -> None:
        self.ops.append(summary)

    def on_fatal(self, source: Source, error: FatalSourceError) -> None:
        self.fatal.append(str(error))


async def _no_sleep(seconds: float) -> None:
    pass


class StubConfig(SourceConfig):
    type: Literal["stub"] = "stub"


class StubSource(Source):
    """Another provider's news source (e.g. Alpaca news): only its `emit` is used."""

    kind = "stub"
    config_model = StubConfig

    async def run(self) -> None:
        pass


MakeSource = Callable[..., AlphaVantageNewsSource]


@pytest_asyncio.fixture
async def make(
    redis: Redis, keys: Keys, alphavantage_rest: FakeAlphaVantage
) -> AsyncIterator[MakeSource]:
    made: list[AlphaVantageNewsSource] = []

    def build(
        *, edge: EdgeFilter | None = None, rec: Recorder | None = None, **cfg: Any
    ) -> AlphaVantageNewsSource:
        rec = rec or Recorder()
        ctx = SourceContext(
            StreamStore(redis, keys), edge or EdgeFilter(UNIVERSE), Path("."), symbols=UNIVERSE,
            ops=rec.on_ops, on_fatal=rec.on_fatal,
        )  # fmt: skip
        config = AlphaVantageNewsConfig.model_validate(
            {"type": "alphavantage_news", "name": "av-news", "api_key": DEFAULT_AV_KEY,
             "base_url": alphavantage_rest.base_url, **cfg}
        )  # fmt: skip
        src = AlphaVantageNewsSource(config, ctx)
        src.http.sleep = _no_sleep
        made.append(src)
        return src

    yield build
    for src in made:
        await src.aclose()


async def news(redis: Redis, keys: Keys) -> list[Headline]:
    return [Headline.from_fields(f) for _, f in await redis.xrange(keys.news)]


# --- pure parsing -----------------------------------------------------------------------------


def test_item_maps_string_scores_labels_and_time() -> None:
    item = av_news_item(
        "Nvidia raises capex guidance",
        published="20260316T153000",
        tickers={"NVDA": 0.42, "AMD": -0.2},
        overall=0.214,
        url="https://news.example.com/a",
        summary="More data centers.",
    )
    assert isinstance(item["ticker_sentiment"][0]["ticker_sentiment_score"], str)
    h = parse_news_item(item, source="av")
    assert h is not None
    assert h.ts_ms == int(datetime(2026, 3, 16, 15, 30, tzinfo=UTC).timestamp() * 1000)
    assert h.symbols == ("NVDA", "AMD") and h.source == "Benzinga"
    assert h.sentiment == 0.214 and h.ticker_sentiment == {"NVDA": 0.42, "AMD": -0.2}
    assert h.sentiment_for("NVDA") == 0.42 and h.summary == "More data centers."


def test_id_is_stable_per_url_and_differs_between_articles() -> None:
    a = av_news_item("A", published="20260316T153000", url="https://x/1")
    b = av_news_item("A, again", published="20260316T160000", url="https://x/1")
    c = av_news_item("A", published="20260316T153000", url="https://x/2")
    ha, hb, hc = (parse_news_item(i) for i in (a, b, c))
    assert ha and hb and hc
    assert ha.id == hb.id != hc.id and ha.id.startswith("av:")


def test_label_used_when_score_missing_or_out_of_range() -> None:
    item = av_news_item("X", published="20260316T153000", tickers={"NVDA": 0.5}, overall=None)
    item["overall_sentiment_label"] = "Somewhat_Bullish"  # the definition text's spelling
    item["ticker_sentiment"][0]["ticker_sentiment_score"] = "n/a"
    item["ticker_sentiment"][0]["ticker_sentiment_label"] = "Bearish"
    h = parse_news_item(item)
    assert h is not None and h.sentiment == 0.25 and h.ticker_sentiment == {"NVDA": -0.35}
    item["overall_sentiment_score"] = 7.5  # out of the -1..1 range, no label: no score
    del item["overall_sentiment_label"]
    assert parse_news_item(item).sentiment is None  # type: ignore[union-attr]


def test_label_scores_fall_in_their_own_band() -> None:
    assert {sentiment_label(v): k for k, v in LABEL_SCORES.items()} == {k: k for k in LABEL_SCORES}


def test_min_relevance_drops_passing_mentions() -> None:
    item = av_news_item("X", published="20260316T153000", tickers={"NVDA": 0.1})
    item["ticker_sentiment"].append(
        {"ticker": "AAPL", "relevance_score": "0.05", "ticker_sentiment_score": "0.1",
         "ticker_sentiment_label": "Neutral"}
    )  # fmt: skip
    h = parse_news_item(item, min_relevance=0.3)
    assert h is not None and h.symbols == ("NVDA",) and "AAPL" not in h.ticker_sentiment


@pytest.mark.parametrize(
    "bad",
    [
        "not an object",
        None,
        {"title": "no time"},
        {"title": "bad time", "time_published": "2026-03-16 15:30"},
        {"title": "bad time", "time_published": 20260316},
    ],
)
def test_malformed_items_are_none(bad: Any) -> None:
    assert parse_news_item(bad) is None


def test_feed_counts_malformed_and_requires_a_feed() -> None:
    good = av_news_item("ok", published="20260316T153000")
    heads, bad = parse_news_feed({"feed": [good, "junk", {"time_published": "x"}]})
    assert len(heads) == 1 and bad == 2
    with pytest.raises(ValueError, match="feed"):
        parse_news_feed({"items": "0"})


def test_time_parsing() -> None:
    assert parse_av_time("20240102T153000") == parse_av_time("20240102T1530")
    assert parse_av_time("20241302T153000") is None and parse_av_time(None) is None


def test_throttle_and_error_answers() -> None:
    h = Http("Alpha Vantage", "api_key (usually $ALPHAVANTAGE_API_KEY)", ("KEY123456",))
    with pytest.raises(Throttled, match="Note"):
        check_av_payload({"Note": "Thank you for using Alpha Vantage! 5 calls per minute"}, h)
    with pytest.raises(Throttled) as info:
        check_av_payload({"Information": "We have detected your API key as KEY123456 and"}, h)
    assert "KEY123456" not in str(info.value)
    with pytest.raises(FatalSourceError, match=r"\$ALPHAVANTAGE_API_KEY"):
        check_av_payload({"Error Message": "the parameter apikey is invalid or missing."}, h)
    with pytest.raises(PollError, match="Invalid API call"):
        check_av_payload({"Error Message": "Invalid API call. Please retry"}, h)
    check_av_payload({"feed": []}, h)


def test_config_validates_topics_and_tickers() -> None:
    base = {"type": "alphavantage_news", "name": "n", "api_key": "k"}
    cfg = AlphaVantageNewsConfig.model_validate({**base, "tickers": [" nvda"], "topics": ["ipo"]})
    assert cfg.tickers == ["NVDA"] and cfg.interval == timedelta(minutes=15)
    with pytest.raises(pydantic.ValidationError, match="topics"):
        AlphaVantageNewsConfig.model_validate({**base, "topics": ["gossip"]})
    with pytest.raises(pydantic.ValidationError, match="apikey"):
        AlphaVantageNewsConfig.model_validate({**base, "apikey": "k"})
    assert "**" in repr(cfg.api_key) and "k" not in str(cfg.api_key).strip("*")


# --- polling over HTTP into Redis -------------------------------------------------------------


async def test_poll_writes_headlines_with_sentiment_in_time_order(
    make: MakeSource, alphavantage_rest: FakeAlphaVantage, redis: Redis, keys: Keys
) -> None:
    alphavantage_rest.news = [
        av_news_item("Nvidia raises capex guidance", published=ago(5),
                     tickers={"NVDA": 0.45}, overall=0.3),
        av_news_item("Apple opens developer beta", published=ago(20),
                     tickers={"AAPL": 0.12, "MSFT": -0.05}, overall=0.1),
        av_news_item("Old news", published=ago(180), tickers={"NVDA": 0.1}),
        av_news_item("Not ours", published=ago(3), tickers={"XOM": 0.5}),
    ]  # fmt: skip
    src = make()
    assert await src.poll_once() is True
    got = await news(redis, keys)
    assert [h.title for h in got] == ["Apple opens developer beta", "Nvidia raises capex guidance"]
    nvda = got[1]
    assert nvda.sentiment == 0.3 and nvda.ticker_sentiment == {"NVDA": 0.45}
    assert nvda.source == "Benzinga" and nvda.id.startswith("av:")
    # one request per ticker (Alpha Vantage ANDs a comma list), newest first, since an hour ago
    reqs = [r.body for r in alphavantage_rest.requests]
    assert sorted(r["tickers"] for r in reqs) == ["AAPL", "MSFT", "NVDA"]
    assert all(r["sort"] == "LATEST" and r["limit"] == "1000" for r in reqs)
    asked_from = datetime.strptime(reqs[0]["time_from"], "%Y%m%dT%H%M").replace(tzinfo=UTC)
    # the lookback counts from the poll's own clock (NOW is fixed at import, minutes earlier
    # when the whole suite runs)
    assert abs(asked_from - (datetime.now(UTC) - timedelta(hours=1))) <= timedelta(minutes=2)
    cursor = await src.ctx.store.cursor("av-news")
    assert cursor["time_published"] == ago(5).strftime("%Y%m%dT%H%M%S")


async def test_overlapping_polls_and_a_restart_write_no_duplicates(
    make: MakeSource, alphavantage_rest: FakeAlphaVantage, redis: Redis, keys: Keys
) -> None:
    first = av_news_item("Nvidia raises capex guidance", published=ago(30), tickers={"NVDA": 0.4})
    alphavantage_rest.news = [first]
    src = make(overlap="1h")
    await src.poll_once()
    alphavantage_rest.news = [
        first,
        av_news_item("Nvidia wins a data center deal", published=ago(2), tickers={"NVDA": 0.3}),
    ]
    await src.poll_once()
    # a restart: a new source and a new edge (nothing in memory), the same Redis cursor
    restarted = make(overlap="1h")
    await restarted.poll_once()
    assert [h.title for h in await news(redis, keys)] == [
        "Nvidia raises capex guidance",
        "Nvidia wins a data center deal",
    ]
    assert not await redis.hgetall(keys.rejects)  # known overlap is not counted as refused
    # the second poll asked from the cursor minus the overlap
    second = alphavantage_rest.requests[3].body
    assert second["time_from"] == (ago(30) - timedelta(hours=1)).strftime("%Y%m%dT%H%M")


async def test_the_same_story_from_two_providers_is_one_headline(
    make: MakeSource, alphavantage_rest: FakeAlphaVantage, redis: Redis, keys: Keys
) -> None:
    edge = EdgeFilter(UNIVERSE)

    ctx = SourceContext(StreamStore(redis, keys), edge, Path("."), symbols=UNIVERSE)
    alpaca_news = StubSource(StubConfig(name="alpaca-news"), ctx)
    await alpaca_news.emit(
        headlines=[Headline("24918784", int(ago(4).timestamp() * 1000),
                            "NVIDIA Raises Capex Guidance!", symbols=("NVDA",), source="benzinga")]
    )  # fmt: skip
    alphavantage_rest.news = [
        av_news_item("Nvidia raises capex guidance", published=ago(5), tickers={"NVDA": 0.4})
    ]
    src = make(edge=edge)
    await src.poll_once()
    got = await news(redis, keys)
    assert [h.id for h in got] == ["24918784"]
    assert await redis.hgetall(keys.rejects) == {"duplicate_headline": "1"}


@pytest.mark.parametrize("answer", ["note", "information"])
async def test_throttling_backs_off_writes_nothing_and_never_logs_the_key(
    make: MakeSource,
    alphavantage_rest: FakeAlphaVantage,
    redis: Redis,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
    answer: str,
) -> None:
    alphavantage_rest.news = [av_news_item("Nvidia news", published=ago(5), tickers={"NVDA": 0.4})]
    getattr(alphavantage_rest, answer)(times=10)
    src = make(tickers=["NVDA"])
    with caplog.at_level(logging.DEBUG):
        assert await src.poll_once() is False
        assert await src.poll_once() is False
    assert not await redis.xrange(keys.news)
    assert "time_published" not in await src.ctx.store.cursor("av-news")
    assert src.pause_s is not None and src.pause_s >= 15 and src.failures == 2
    assert DEFAULT_AV_KEY not in caplog.text
    assert "throttled" in caplog.text
    if answer == "information":
        assert "API key as ***" in caplog.text
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # logged once per episode


async def test_wrong_key_is_fatal_and_names_the_variable(
    make: MakeSource, alphavantage_rest: FakeAlphaVantage, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    src = make(rec=rec, api_key="WRONGKEY999")
    with caplog.at_level(logging.DEBUG):
        assert await src.poll_once() is False
    assert len(rec.fatal) == 1
    assert "$ALPHAVANTAGE_API_KEY" in rec.fatal[0] and "WRONGKEY999" not in rec.fatal[0]
    assert "WRONGKEY999" not in caplog.text
    assert len(alphavantage_rest.requests) == 1  # stopped at the first refusal


async def test_malformed_items_are_skipped_and_counted(
    make: MakeSource, alphavantage_rest: FakeAlphaVantage, redis: Redis, keys: Keys
) -> None:
    bad_time = av_news_item("Broken time", published="2026-03-16 15:30", tickers={"NVDA": 0.1})
    alphavantage_rest.news = [
        av_news_item("Good one", published=ago(5), tickers={"NVDA": 0.4}),
        bad_time,
        "junk",
    ]
    src = make(tickers=["NVDA"])
    assert await src.poll_once() is True
    assert [h.title for h in await news(redis, keys)] == ["Good one"]
    assert src.malformed == 2
    assert await redis.hgetall(keys.rejects) == {"malformed": "2"}


async def test_market_scope_is_one_request_filtered_to_the_rules_symbols(
    make: MakeSource, alphavantage_rest: FakeAlphaVantage, redis: Redis, keys: Keys
) -> None:
    alphavantage_rest.news = [
        av_news_item("About Nvidia and AMD", published=ago(5), tickers={"NVDA": 0.4, "AMD": 0.1}),
        av_news_item("About Exxon", published=ago(6), tickers={"XOM": 0.2}),
    ]
    src = make(scope="market", topics=["earnings"], limit=200)
    await src.poll_once()
    assert [h.title for h in await news(redis, keys)] == ["About Nvidia and AMD"]
    (req,) = alphavantage_rest.requests
    assert "tickers" not in req.body and req.body["topics"] == "earnings"
    assert req.body["limit"] == "200"
    cursor = await src.ctx.store.cursor("av-news")
    assert cursor["time_published"] == ago(5).strftime("%Y%m%dT%H%M%S")  # all items move it


async def test_partial_failure_keeps_what_arrived_and_the_cursor_in_place(
    make: MakeSource, alphavantage_rest: FakeAlphaVantage, redis: Redis, keys: Keys
) -> None:
    alphavantage_rest.news = [
        av_news_item("Apple news", published=ago(5), tickers={"AAPL": 0.2}),
        av_news_item("Nvidia news", published=ago(6), tickers={"NVDA": 0.2}),
    ]
    src = make(tickers=["AAPL", "NVDA"])  # AAPL is asked first, then NVDA is throttled
    throttle_nvda = Injection(
        200, {"Note": "5 calls per minute"}, match=lambda r: r.body.get("tickers") == "NVDA"
    )
    alphavantage_rest.inject(throttle_nvda)
    assert await src.poll_once() is False
    assert [h.title for h in await news(redis, keys)] == ["Apple news"]
    cursor = await src.ctx.store.cursor("av-news")
    assert "time_published" not in cursor and cursor["seen"]
    assert cursor["next"] == "NVDA"
    assert await src.poll_once() is True
    assert [h.title for h in await news(redis, keys)] == ["Apple news", "Nvidia news"]
    # the next poll started with the ticker that was throttled, so none starves
    assert [r.body["tickers"] for r in alphavantage_rest.requests] == [
        "AAPL",
        "NVDA",
        "NVDA",
        "AAPL",
    ]
    assert not await redis.hgetall(keys.rejects)  # Apple was not written (nor refused) twice
