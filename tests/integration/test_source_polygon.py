"""Polygon stocks websocket against the loopback fake, writing into the real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.sources.polygon import PolygonConfig, PolygonSource
from tests.fakes.ws_feeds import FakePolygonServer, now_ms
from tests.feed_harness import FAST, FeedHarness


def polygon(server: FakePolygonServer, h: FeedHarness, **kw: Any) -> PolygonSource:
    fields: dict[str, Any] = {
        "type": "polygon",
        "name": "polygon",
        "api_key": server.api_key,
        "url": server.stocks_url,
        **FAST,
        **kw,
    }
    return PolygonSource(PolygonConfig(**fields), h.ctx())


def actions(server: FakePolygonServer, session: int) -> list[dict[str, Any]]:
    return [m for m in server.sessions[session].messages if m["action"] != "auth"]


async def test_auth_prefixed_subscribe_and_every_event_mapped(
    polygon_server: FakePolygonServer, feed_harness: FeedHarness
) -> None:
    src = polygon(polygon_server, feed_harness, channels=["trades", "quotes", "minute_aggs"])
    feed_harness.start(src)
    await polygon_server.wait_live()
    await polygon_server.wait_for(lambda: bool(actions(polygon_server, 0)))
    s = polygon_server.sessions[0]
    assert s.messages[0] == {"action": "auth", "params": polygon_server.api_key}
    assert actions(polygon_server, 0)[0] == {
        "action": "subscribe",
        "params": "T.AAPL,T.MSFT,T.NVDA,T.TSLA,Q.AAPL,Q.MSFT,Q.NVDA,Q.TSLA,"
        "AM.AAPL,AM.MSFT,AM.NVDA,AM.TSLA",
    }
    t0 = now_ms()
    end = (t0 // 60_000) * 60_000
    await polygon_server.send(
        [
            polygon_server.trade("AAPL", 190.25, 3, ms=t0, trade_id="8310"),
            polygon_server.trade("AAPL", 190.5, 4, ms=t0, trade_id=8311),  # int id too
            polygon_server.quote("MSFT", 400.0, 400.5, ms=t0),
            polygon_server.agg("NVDA", 900.0, 4110, end_ms=end),
            polygon_server.agg("TSLA", 250.0, 10, end_ms=end, minute=False),
            {"ev": "LULD", "T": "AAPL", "h": 1.0, "l": 0.5, "i": [], "z": 3, "t": t0, "q": 1},
        ]
    )
    ticks = await feed_harness.wait_ticks(5)
    assert [(t.symbol, t.kind, t.price, t.size) for t in ticks] == [
        ("AAPL", "trade", 190.25, 3.0),
        ("AAPL", "trade", 190.5, 4.0),
        ("MSFT", "quote", pytest.approx(400.25), 0.0),
        ("NVDA", "bar", 900.0, 4110.0),
        ("TSLA", "bar", 250.0, 10.0),
    ]
    assert ticks[0].ts_ms == t0 and ticks[3].ts_ms == end  # aggregates: at the window's end
    assert (ticks[2].bid, ticks[2].ask) == (400.0, 400.5)
    assert src.parse_errors == {}


async def test_bad_key_is_fatal_without_a_reconnect_loop(
    polygon_server: FakePolygonServer, feed_harness: FeedHarness
) -> None:
    src = polygon(polygon_server, feed_harness, api_key="not-the-key-123")
    task = feed_harness.start(src)
    error = await feed_harness.wait_fatal()
    await task
    assert "auth_failed" in str(error) and "POLYGON_API_KEY" in str(error)
    assert "not-the-key-123" not in str(error)
    assert len(polygon_server.sessions) == 1 and src.state == "failed"


async def test_max_connections_gives_up_with_a_clear_reason(
    polygon_server: FakePolygonServer, feed_harness: FeedHarness
) -> None:
    feed_harness.start(polygon(polygon_server, feed_harness))
    await polygon_server.wait_live()
    feed_harness.start(polygon(polygon_server, feed_harness, name="polygon2"))
    error = await feed_harness.wait_fatal()
    assert "another session is using this key" in str(error)
    assert feed_harness.fatal[0][0] == "polygon2"


async def test_dropped_connection_reauths_and_resubscribes(
    polygon_server: FakePolygonServer, feed_harness: FeedHarness
) -> None:
    src = polygon(polygon_server, feed_harness)
    feed_harness.start(src)
    await polygon_server.wait_live()
    await polygon_server.send([polygon_server.trade("AAPL", 100.0, trade_id="1")])
    await feed_harness.wait_ticks(1)
    await polygon_server.drop()
    await polygon_server.wait_live(2)
    await polygon_server.wait_for(lambda: bool(actions(polygon_server, 1)))
    assert polygon_server.sessions[1].messages[0]["action"] == "auth"
    assert actions(polygon_server, 1)[0]["params"] == "T.AAPL,T.MSFT,T.NVDA,T.TSLA"
    await polygon_server.send([polygon_server.trade("AAPL", 101.0, trade_id="2")])
    assert [t.price for t in await feed_harness.wait_ticks(2)] == [100.0, 101.0]


async def test_malformed_unknown_and_duplicate_events(
    polygon_server: FakePolygonServer, feed_harness: FeedHarness
) -> None:
    src = polygon(polygon_server, feed_harness)
    feed_harness.start(src)
    await polygon_server.wait_live()
    await polygon_server.send_raw("[{]")
    await polygon_server.send([{"ev": "XYZ"}, {"ev": "T", "sym": "AAPL"}])
    trade = polygon_server.trade("AAPL", 100.0, trade_id="77")
    await polygon_server.send([trade, trade])
    await polygon_server.send([polygon_server.trade("AAPL", 100.5, trade_id="78")])
    ticks = await feed_harness.wait_ticks(2)
    assert [t.price for t in ticks] == [100.0, 100.5]
    assert src.duplicates == 1
    assert src.parse_errors == {
        "malformed JSON": 1,
        "unknown type 'XYZ'": 1,
        "malformed message": 1,
    }


async def test_resubscribe_diff_keeps_a_prefix_on_every_item(
    polygon_server: FakePolygonServer, feed_harness: FeedHarness
) -> None:
    src = polygon(polygon_server, feed_harness, channels=["trades", "minute_aggs"])
    feed_harness.start(src)
    await polygon_server.wait_live()
    await polygon_server.wait_for(lambda: len(actions(polygon_server, 0)) == 1)
    await src.resubscribe(frozenset({"AAPL", "MSFT", "NVDA", "AMD"}))
    await polygon_server.wait_for(lambda: len(actions(polygon_server, 0)) == 3)
    assert actions(polygon_server, 0)[1:] == [
        {"action": "subscribe", "params": "T.AMD,AM.AMD"},
        {"action": "unsubscribe", "params": "T.TSLA,AM.TSLA"},
    ]
    s = polygon_server.sessions[0]
    await polygon_server.wait_for(lambda: s.subs["AM"] == {"AAPL", "MSFT", "NVDA", "AMD"})
