"""Alpaca stocks and news streams against the loopback fake, writing into the real Redis."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from daemon.sources.alpaca import AlpacaConfig, AlpacaNewsConfig, AlpacaNewsSource, AlpacaSource
from daemon.sources.base import FatalSourceError
from tests.fakes.ws_feeds import FakeAlpacaServer, now_ms
from tests.feed_harness import FAST, FeedHarness
from tests.helpers import wait_until


def stocks(server: FakeAlpacaServer, h: FeedHarness, **kw: Any) -> AlpacaSource:
    fields: dict[str, Any] = {
        "type": "alpaca",
        "name": "alpaca",
        "key_id": server.key_id,
        "secret_key": server.secret_key,
        "url": server.stocks_url("iex"),
        **FAST,
        **kw,
    }
    return AlpacaSource(AlpacaConfig(**fields), h.ctx())


def news(server: FakeAlpacaServer, h: FeedHarness, **kw: Any) -> AlpacaNewsSource:
    fields: dict[str, Any] = {
        "type": "alpaca_news",
        "name": "news",
        "key_id": server.key_id,
        "secret_key": server.secret_key,
        "url": server.news_url,
        **FAST,
        **kw,
    }
    return AlpacaNewsSource(AlpacaNewsConfig(**fields), h.ctx())


def subscribes(server: FakeAlpacaServer, session: int) -> list[dict[str, Any]]:
    return [m for m in server.sessions[session].messages if m.get("action") == "subscribe"]


async def test_handshake_subscribe_and_every_channel_mapped(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = stocks(alpaca_server, feed_harness, channels=["trades", "quotes", "bars"])
    feed_harness.start(src)
    await alpaca_server.wait_live()
    s = alpaca_server.sessions[0]
    assert s.messages[0] == {
        "action": "auth",
        "key": alpaca_server.key_id,
        "secret": alpaca_server.secret_key,
    }
    assert "content-type" not in {k.lower() for k in s.headers}  # JSON mode, never msgpack
    await alpaca_server.wait_for(lambda: bool(subscribes(alpaca_server, 0)))
    sub = subscribes(alpaca_server, 0)[0]
    symbols = ["AAPL", "MSFT", "NVDA", "TSLA"]
    assert sub == {"action": "subscribe", "trades": symbols, "quotes": symbols,
                   "bars": symbols, "updatedBars": symbols}  # fmt: skip
    t0 = now_ms()
    bar_start = (t0 // 60_000 - 1) * 60_000
    await alpaca_server.send(
        [
            alpaca_server.trade("AAPL", 190.5, 10, ms=t0, nanos=208_123_456),
            alpaca_server.quote("MSFT", 400.0, 400.2, ms=t0),
            alpaca_server.quote("NVDA", 0, 900.0, ms=t0),  # no bid: the ask is the price
            alpaca_server.bar("TSLA", 250.0, 5000, start_ms=bar_start),
            alpaca_server.bar("TSLA", 251.0, 5200, start_ms=bar_start, updated=True),
            {
                "T": "s",
                "S": "AAPL",
                "sc": "H",
                "sm": "Trading Halt",
                "rc": "T12",
                "rm": "x",
                "t": "2021-02-22T19:15:00Z",
                "z": "C",
            },
        ]
    )
    ticks = await feed_harness.wait_ticks(5)
    by_kind = {(t.symbol, t.kind, t.price) for t in ticks}
    assert ("AAPL", "trade", 190.5) in by_kind
    q = next(t for t in ticks if t.symbol == "MSFT")
    assert (q.kind, q.bid, q.ask, q.price) == ("quote", 400.0, 400.2, pytest.approx(400.1))
    n = next(t for t in ticks if t.symbol == "NVDA")
    assert (n.bid, n.ask, n.price) == (None, 900.0, 900.0)
    bars = [t for t in ticks if t.kind == "bar"]
    assert [(b.price, b.size, b.ts_ms) for b in bars] == [
        (250.0, 5000.0, bar_start + 60_000),  # a bar is told at its end
        (251.0, 5200.0, bar_start + 60_000),
    ]
    trade = next(t for t in ticks if t.kind == "trade")
    assert (
        trade.ts_ms == (t0 // 1000) * 1000 + 208 and trade.size == 10 and trade.source == "alpaca"
    )
    assert src.parse_errors == {}


async def test_bad_key_is_fatal_at_once_and_never_logged(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    src = stocks(alpaca_server, feed_harness, secret_key="wrong-secret-9999")
    task = feed_harness.start(src)
    error = await feed_harness.wait_fatal()
    await task
    assert "402" in str(error) and "APCA_API_KEY_ID" in str(error)
    assert src.state == "failed" and src.done.is_set()
    assert len(alpaca_server.sessions) == 1  # no reconnect loop
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("tests."))
    assert "wrong-secret-9999" not in logged and alpaca_server.key_id not in logged
    assert "wrong-secret-9999" not in str(error)


async def test_feed_outside_the_plan_is_fatal(
    feed_harness: FeedHarness,
) -> None:
    async with FakeAlpacaServer(plan_feeds=["iex"]) as server:
        src = stocks(server, feed_harness, url=server.stocks_url("sip"))
        feed_harness.start(src)
        error = await feed_harness.wait_fatal()
    assert "409 insufficient subscription" in str(error)


async def test_connection_limit_gives_up_after_a_few_tries_with_a_clear_reason(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    first = stocks(alpaca_server, feed_harness)
    feed_harness.start(first)
    await alpaca_server.wait_live()
    second = stocks(alpaca_server, feed_harness)
    second.name = "alpaca2"
    feed_harness.start(second)
    error = await feed_harness.wait_fatal()
    assert "another session is using this key" in str(error)
    assert sum(s.authed for s in alpaca_server.sessions) == 1
    assert len(alpaca_server.sessions) == 1 + 3
    assert first.state == "connected"


async def test_dropped_connection_reconnects_reauths_and_resubscribes(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = stocks(alpaca_server, feed_harness)
    feed_harness.start(src)
    await alpaca_server.wait_live()
    await alpaca_server.send([alpaca_server.trade("AAPL", 100.0, trade_id=1)])
    await feed_harness.wait_ticks(1)
    await alpaca_server.drop()
    await alpaca_server.wait_live(2)
    second = alpaca_server.sessions[1]
    assert second.messages[0]["action"] == "auth"
    await alpaca_server.wait_for(lambda: bool(subscribes(alpaca_server, 1)))
    assert subscribes(alpaca_server, 1)[0]["trades"] == ["AAPL", "MSFT", "NVDA", "TSLA"]
    await alpaca_server.send([alpaca_server.trade("AAPL", 101.0, trade_id=2)])
    ticks = await feed_harness.wait_ticks(2)
    assert [t.price for t in ticks] == [100.0, 101.0]
    assert src.reconnects == 1


async def test_malformed_unknown_and_duplicate_messages_do_not_stop_the_feed(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = stocks(alpaca_server, feed_harness)
    feed_harness.start(src)
    await alpaca_server.wait_live()
    await alpaca_server.send_raw('[{"T":"t","S":"AAPL"')  # cut short
    await alpaca_server.send([{"T": "zz", "S": "AAPL"}, {"T": "t", "S": "AAPL", "p": "x"}])
    trade = alpaca_server.trade("AAPL", 100.0, trade_id=7)
    await alpaca_server.send([trade])
    await alpaca_server.send([trade])  # the very same trade again
    await alpaca_server.send([alpaca_server.trade("AAPL", 100.5, trade_id=8)])
    ticks = await feed_harness.wait_ticks(2)
    assert [t.price for t in ticks] == [100.0, 100.5]
    assert src.duplicates == 1
    assert src.parse_errors == {
        "malformed JSON": 1,
        "unknown type 'zz'": 1,
        "malformed message": 1,
    }
    assert len(alpaca_server.sessions) == 1 and src.state == "connected"


async def test_resubscribe_sends_only_the_difference(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = stocks(alpaca_server, feed_harness, channels=["trades", "bars"])
    feed_harness.start(src)
    await alpaca_server.wait_live()
    await alpaca_server.wait_for(lambda: bool(subscribes(alpaca_server, 0)))
    await src.resubscribe(frozenset({"AAPL", "MSFT", "AMD"}))
    s = alpaca_server.sessions[0]
    await alpaca_server.wait_for(lambda: len(s.messages) >= 4)
    assert s.messages[2] == {"action": "subscribe", "trades": ["AMD"], "bars": ["AMD"],
                             "updatedBars": ["AMD"]}  # fmt: skip
    assert s.messages[3] == {"action": "unsubscribe", "trades": ["NVDA", "TSLA"],
                             "bars": ["NVDA", "TSLA"], "updatedBars": ["NVDA", "TSLA"]}  # fmt: skip
    await wait_until(lambda: s.subs["trades"] == {"AAPL", "MSFT", "AMD"}, 5, "server-side set")
    await src.resubscribe(frozenset({"AAPL", "MSFT", "AMD"}))  # nothing changed: nothing sent
    await alpaca_server.drop()
    await alpaca_server.wait_live(2)
    await alpaca_server.wait_for(lambda: bool(subscribes(alpaca_server, 1)))
    assert subscribes(alpaca_server, 1)[0]["trades"] == ["AAPL", "AMD", "MSFT"]
    assert len(s.messages) == 4


async def test_symbols_option_narrows_the_subscription(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = stocks(alpaca_server, feed_harness, symbols=["AAPL", "XMAG"])
    feed_harness.start(src)
    await alpaca_server.wait_for(lambda: bool(alpaca_server.sessions)
                                 and bool(subscribes(alpaca_server, 0)))  # fmt: skip
    assert subscribes(alpaca_server, 0)[0]["trades"] == ["AAPL"]  # XMAG: no rule needs it


async def test_symbol_limit_mid_stream_raises_one_ops_alert_and_keeps_going(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = stocks(alpaca_server, feed_harness)
    feed_harness.start(src)
    await alpaca_server.wait_live()
    for _ in range(2):
        await alpaca_server.send([{"T": "error", "code": 405, "msg": "symbol limit exceeded"}])
    await alpaca_server.send([alpaca_server.trade("AAPL", 100.0)])
    await feed_harness.wait_ticks(1)
    assert len(feed_harness.ops) == 1 and "symbol limit exceeded" in feed_harness.ops[0][0]
    assert src.state == "connected"


async def test_news_headlines_once_per_article(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = news(alpaca_server, feed_harness)
    feed_harness.start(src)
    await alpaca_server.wait_live()
    await alpaca_server.wait_for(lambda: len(alpaca_server.sessions[0].messages) >= 2)
    assert alpaca_server.sessions[0].messages[1] == {
        "action": "subscribe",
        "news": ["AAPL", "MSFT", "NVDA", "TSLA"],
    }
    created = now_ms() - 5_000
    item = alpaca_server.news(24918784, "NVDA raises AI capex guidance", ["NVDA"],
                              created_ms=created)  # fmt: skip
    await alpaca_server.send([item])
    updated = {**item, "updated_at": "2099-01-01T00:00:00Z", "headline": "NVDA raises (upd)"}
    await alpaca_server.send([updated])
    await alpaca_server.send([alpaca_server.news(2, "MSFT cloud demand digestion", [])])
    await wait_until(lambda: src.accepted >= 2, 5, "two headlines")
    heads = await feed_harness.headlines()
    assert [h.id for h in heads] == ["alpaca:24918784", "alpaca:2"]
    first = heads[0]
    assert first.title == "NVDA raises AI capex guidance" and first.symbols == ("NVDA",)
    assert first.source == "benzinga" and first.url.endswith("/24918784")
    assert first.ts_ms == created // 1000 * 1000
    assert src.duplicates == 1 and heads[1].symbols == ()


async def test_news_wildcard_subscribes_to_everything(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = news(alpaca_server, feed_harness, symbols=["*"])
    feed_harness.start(src)
    await alpaca_server.wait_live()
    await alpaca_server.wait_for(lambda: len(alpaca_server.sessions[0].messages) >= 2)
    assert alpaca_server.sessions[0].messages[1] == {"action": "subscribe", "news": ["*"]}


async def test_empty_key_is_refused_before_connecting(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    feed_harness.start(stocks(alpaca_server, feed_harness, key_id=""))
    error = await feed_harness.wait_fatal()
    assert isinstance(error, FatalSourceError) and "key_id is empty" in str(error)
    assert "APCA_API_KEY_ID" in str(error) and not alpaca_server.sessions
