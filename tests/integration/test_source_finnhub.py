"""Finnhub trades websocket against the loopback fake, writing into the real Redis."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from daemon.sources.finnhub import FinnhubConfig, FinnhubSource
from tests.fakes.ws_feeds import FakeFinnhubServer
from tests.feed_harness import FAST, FeedHarness
from tests.helpers import wait_until


def finnhub(server: FakeFinnhubServer, h: FeedHarness, **kw: Any) -> FinnhubSource:
    fields: dict[str, Any] = {
        "type": "finnhub",
        "name": "finnhub",
        "token": server.token,
        "url": server.url("/"),
        **FAST,
        **kw,
    }
    return FinnhubSource(FinnhubConfig(**fields), h.ctx())


def subscribed(server: FakeFinnhubServer, session: int) -> list[str]:
    return [m["symbol"] for m in server.sessions[session].messages if m["type"] == "subscribe"]


async def test_token_in_query_one_subscribe_per_symbol_trades_and_pings(
    finnhub_server: FakeFinnhubServer, feed_harness: FeedHarness
) -> None:
    src = finnhub(finnhub_server, feed_harness)
    feed_harness.start(src)
    await finnhub_server.wait_live()
    await finnhub_server.wait_for(lambda: len(subscribed(finnhub_server, 0)) == 4)
    assert subscribed(finnhub_server, 0) == ["AAPL", "MSFT", "NVDA", "TSLA"]
    await finnhub_server.ping()
    await finnhub_server.send(finnhub_server.trades(("AAPL", 190.5, 10), ("MSFT", 400.0, 0)))
    ticks = await feed_harness.wait_ticks(2)
    assert [(t.symbol, t.price, t.size, t.kind) for t in ticks] == [
        ("AAPL", 190.5, 10.0, "trade"),
        ("MSFT", 400.0, 0.0, "trade"),  # v=0: a price update, still a price
    ]
    assert src.parse_errors == {}
    assert src.status()["url"].endswith("token=***")


async def test_bad_token_is_fatal_and_never_logged(
    finnhub_server: FakeFinnhubServer, feed_harness: FeedHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = "wrong-token-abcdef123456"
    src = finnhub(finnhub_server, feed_harness, token=bad)
    feed_harness.start(src)
    error = await feed_harness.wait_fatal()
    assert "HTTP 401" in str(error) and "FINNHUB_API_KEY" in str(error)
    assert finnhub_server.refused == 1 and not finnhub_server.sessions
    ours = [r for r in caplog.records if not r.name.startswith("tests.")]
    assert ours, "expected the client's debug log"
    for r in ours:
        assert bad[:8] not in r.getMessage() and bad[-8:] not in r.getMessage()
    assert bad not in str(error) and bad not in str(src.status())


async def test_dropped_connection_resubscribes_every_symbol(
    finnhub_server: FakeFinnhubServer, feed_harness: FeedHarness
) -> None:
    src = finnhub(finnhub_server, feed_harness)
    feed_harness.start(src)
    await finnhub_server.wait_live()
    await finnhub_server.send(finnhub_server.trades(("AAPL", 100.0, 1)))
    await feed_harness.wait_ticks(1)
    await finnhub_server.drop()
    await finnhub_server.wait_live(2)
    await finnhub_server.wait_for(lambda: len(subscribed(finnhub_server, 1)) == 4)
    await finnhub_server.send(finnhub_server.trades(("AAPL", 101.0, 1)))
    ticks = await feed_harness.wait_ticks(2)
    assert [t.price for t in ticks] == [100.0, 101.0] and src.reconnects == 1


async def test_malformed_unknown_and_repeated_frames(
    finnhub_server: FakeFinnhubServer, feed_harness: FeedHarness
) -> None:
    src = finnhub(finnhub_server, feed_harness)
    feed_harness.start(src)
    await finnhub_server.wait_live()
    await finnhub_server.send_raw("{oops")
    await finnhub_server.send({"type": "mystery"})
    await finnhub_server.send({"type": "trade", "data": [{"s": "AAPL", "p": "x", "t": 1}]})
    frame = finnhub_server.trades(("AAPL", 100.0, 5))
    await finnhub_server.send(frame)
    await finnhub_server.send(frame)  # no trade id: two identical prints are both real
    ticks = await feed_harness.wait_ticks(2)
    assert [t.price for t in ticks] == [100.0, 100.0]
    assert src.parse_errors == {
        "malformed JSON": 1,
        "unknown type 'mystery'": 1,
        "malformed message": 1,
    }
    assert len(finnhub_server.sessions) == 1


async def test_resubscribe_diff_and_server_errors(
    finnhub_server: FakeFinnhubServer, feed_harness: FeedHarness
) -> None:
    src = finnhub(finnhub_server, feed_harness)
    feed_harness.start(src)
    await finnhub_server.wait_live()
    s = finnhub_server.sessions[0]
    await finnhub_server.wait_for(lambda: len(s.messages) == 4)
    await src.resubscribe(frozenset({"AAPL", "BINANCE:BTCUSDT"}))
    await finnhub_server.wait_for(lambda: len(s.messages) == 8)
    assert s.messages[4:] == [
        {"type": "subscribe", "symbol": "BINANCE:BTCUSDT"},
        {"type": "unsubscribe", "symbol": "MSFT"},
        {"type": "unsubscribe", "symbol": "NVDA"},
        {"type": "unsubscribe", "symbol": "TSLA"},
    ]
    await finnhub_server.wait_for(lambda: s.subs["trades"] == {"AAPL", "BINANCE:BTCUSDT"})
    for _ in range(2):
        await finnhub_server.send({"type": "error", "msg": "Subscribing to too many symbols"})
    await wait_until(lambda: bool(feed_harness.ops), 5, "an ops alert")
    await finnhub_server.send(finnhub_server.trades(("AAPL", 1.5, 1)))
    await feed_harness.wait_ticks(1)
    assert len(feed_harness.ops) == 1 and "too many symbols" in feed_harness.ops[0][0]


def test_wildcard_is_refused_in_config() -> None:
    with pytest.raises(ValueError, match="'\\*' is not offered"):
        FinnhubConfig(type="finnhub", name="f", token="t", symbols=["*"])  # type: ignore[arg-type]
