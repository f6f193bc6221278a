"""The websocket feed base: pure helpers, then what every provider shares (real sockets, Redis).

The shared behaviour is driven through the Alpaca adapter and its fake (the thinnest provider
with a handshake); the per-provider files cover what differs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from daemon.sources.alpaca import AlpacaConfig, AlpacaSource
from daemon.sources.arbiter import FeedArbiter
from daemon.sources.feed import (
    RateMeter,
    RecentKeys,
    TimestampParser,
    backoff_delay,
    quote_tick,
)
from daemon.sources.polygon import PolygonConfig, PolygonSource
from daemon.store.connect import connect
from daemon.store.embedded import EmbeddedRedis
from daemon.store.keys import Keys
from tests.fakes.ws_feeds import FakeAlpacaServer, FakePolygonServer
from tests.feed_harness import FAST, FeedHarness
from tests.helpers import wait_until

# -- pure helpers ----------------------------------------------------------------------------


def test_backoff_is_fully_jittered_exponential_and_capped() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(30.0, 0.5 * 2**attempt)
        samples = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range, not a fixed step
    assert backoff_delay(10_000, 0.5, 30.0, rng) <= 30.0


def _ms(*args: int) -> int:
    return (datetime(*args, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-02-22T15:51:44.208Z", _ms(2021, 2, 22, 15, 51, 44, 208_000)),
        ("2021-02-22T15:51:45.335689322Z", _ms(2021, 2, 22, 15, 51, 45, 335_000)),
        ("2021-02-22T19:15:00Z", _ms(2021, 2, 22, 19, 15)),
        ("2021-02-22T19:15:00.5Z", _ms(2021, 2, 22, 19, 15, 0, 500_000)),
        ("2021-02-22T14:15:00.123456789-05:00", _ms(2021, 2, 22, 19, 15, 0, 123_000)),
        ("2021-02-22T19:15:00+00:00", _ms(2021, 2, 22, 19, 15)),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_rfc3339_parser_is_exact_to_the_millisecond(text: str, expected: int) -> None:
    parser = TimestampParser()
    assert parser.ms(text) == expected
    assert parser.ms(text) == expected  # second call: from the per-second cache


@pytest.mark.parametrize("bad", ["", "2021-02-22", "2021-02-22T15:51:44", "not a time",
                                 "2021-02-22T15:51:44.2x8Z", "2021-13-22T15:51:44Z"])  # fmt: skip
def test_rfc3339_parser_refuses_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        TimestampParser().ms(bad)


def test_rate_meter_counts_the_last_minute_only() -> None:
    m = RateMeter(60)
    for sec in range(100):
        m.add(10, 1000.0 + sec)
    assert m.rate(1099.5) == pytest.approx(10.0)
    assert m.rate(1130.0) == pytest.approx(10 * 29 / 60)
    assert m.rate(2000.0) == 0.0


def test_recent_keys_remember_between_size_and_twice_size() -> None:
    r = RecentKeys(size=3)
    assert [r.seen(k) for k in "abcab"] == [False, False, False, True, True]
    for k in "defghi":
        r.seen(k)
    assert not r.seen("a")  # long forgotten


def test_quote_tick_prices_at_the_mid_and_survives_a_missing_side() -> None:
    q = quote_tick("AAPL", 1, 10.0, 10.2, "s")
    assert q is not None and q.price == pytest.approx(10.1) and (q.bid, q.ask) == (10.0, 10.2)
    one = quote_tick("AAPL", 1, 0.0, 10.2, "s")
    assert one is not None and one.price == 10.2 and one.bid is None
    assert quote_tick("AAPL", 1, 0.0, 0.0, "s") is None


# -- shared behaviour over real sockets ---------------------------------------------------------


def alpaca(server: FakeAlpacaServer, h: FeedHarness, arbiter: FeedArbiter | None = None,
           in_session: Any = None, **kw: Any) -> AlpacaSource:  # fmt: skip
    fields: dict[str, Any] = {
        "type": "alpaca",
        "name": "alpaca",
        "key_id": server.key_id,
        "secret_key": server.secret_key,
        "url": server.stocks_url("iex"),
        **FAST,
        **kw,
    }
    return AlpacaSource(AlpacaConfig(**fields), h.ctx(arbiter), in_session=in_session)


async def test_a_burst_of_frames_is_written_in_order_in_few_batches(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = alpaca(alpaca_server, feed_harness)
    batches: list[int] = []
    write = src.written
    src.written = lambda recv, done: (batches.append(len(recv)), write(recv, done))  # type: ignore[method-assign]
    feed_harness.start(src)
    await alpaca_server.wait_live()
    frames = 200
    for f in range(frames):
        await alpaca_server.send(
            [alpaca_server.trade("AAPL", 100 + f * 10 + i, trade_id=f * 10 + i) for i in range(10)]
        )
    ticks = await feed_harness.wait_ticks(frames * 10)
    assert [t.price for t in ticks] == [100 + n for n in range(frames * 10)]
    assert sum(batches) == frames and len(batches) < frames  # frames coalesce under load
    assert src.status()["write_latency_ms"]["p99"] is not None


async def test_silent_feed_raises_exactly_one_ops_alert_and_reconnects(
    feed_harness: FeedHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tickwatch")
    async with FakeAlpacaServer(one_session=False) as server:
        src = alpaca(server, feed_harness, in_session=lambda ms: True,
                     silent_after=timedelta(milliseconds=150))  # fmt: skip
        feed_harness.start(src)
        await server.wait_live()
        await server.wait_live(3, timeout=5)  # silent, reconnected, still silent, again
        assert len(feed_harness.ops) == 1
        summary, labels = feed_harness.ops[0]
        assert "no data" in summary and labels == {"source": "alpaca", "problem": "silent"}
        await server.send([server.trade("AAPL", 100.0)])
        await feed_harness.wait_ticks(1)
        assert any("recovered" in r.getMessage() for r in caplog.records)
        assert src.status()["silent"] is False


async def test_no_silence_alarm_outside_the_regular_session(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    asked: list[int] = []

    def closed(ms: int) -> bool:
        asked.append(ms)
        return False

    src = alpaca(alpaca_server, feed_harness, in_session=closed,
                 silent_after=timedelta(milliseconds=50))  # fmt: skip
    feed_harness.start(src)
    await alpaca_server.wait_live()
    await wait_until(lambda: len(asked) >= 3, 5, "the silence check to ask about the session")
    assert not feed_harness.ops and len(alpaca_server.sessions) == 1 and src.reconnects == 0


async def test_oversized_frame_reconnects_and_malformed_frames_log_once(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tickwatch")
    src = alpaca(alpaca_server, feed_harness, max_frame=2048)
    feed_harness.start(src)
    await alpaca_server.wait_live()
    for _ in range(5):
        await alpaca_server.send_raw("not json")
    await wait_until(lambda: src.parse_errors["malformed JSON"] == 5, 5, "5 malformed frames")
    await alpaca_server.send_raw(json.dumps([alpaca_server.trade("AAPL", 1.0)] * 40))  # > 2 KiB
    await alpaca_server.wait_live(2)
    await alpaca_server.send([alpaca_server.trade("AAPL", 2.0)])
    ticks = await feed_harness.wait_ticks(1)
    assert [t.price for t in ticks] == [2.0]
    assert src.parse_errors == {"malformed JSON": 5, "oversized frame": 1}
    unreadable = [r for r in caplog.records if "unreadable messages" in r.getMessage()]
    assert len(unreadable) == 1  # at most one warning per 10 s
    assert src.reconnects == 1 and "max_frame" in src.last_error


async def test_status_is_written_to_redis(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = alpaca(alpaca_server, feed_harness)
    feed_harness.start(src)
    await alpaca_server.wait_live()
    await alpaca_server.send([alpaca_server.trade("AAPL", 100.0), {"T": "zz"}])
    await feed_harness.wait_ticks(1)
    redis, key = feed_harness.redis, feed_harness.keys.sources_status

    async def status() -> dict[str, Any]:
        raw = await redis.hget(key, "alpaca")
        return json.loads(raw) if raw else {}

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (st := await status()).get("accepted") != 1:
        assert loop.time() < deadline, st
        await asyncio.sleep(0.02)
    assert st["state"] == "connected" and st["parse_errors"] == 1 and st["symbols"] == 4
    assert st["last_message_age_s"] is not None and st["reconnects"] == 0
    assert st["messages_per_s"] > 0 and st["url"] == alpaca_server.stocks_url("iex")


async def test_secrets_are_never_logged_even_in_part(
    feed_harness: FeedHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, secret = "AK" + uuid.uuid4().hex.upper(), uuid.uuid4().hex + uuid.uuid4().hex
    async with FakeAlpacaServer(key, secret) as server:
        src = alpaca(server, feed_harness)
        feed_harness.start(src)
        await server.wait_live()
        await server.drop()
        await server.wait_live(2)
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("tests."))
    assert "websockets.client" in {r.name for r in caplog.records}  # debug was on
    for s in (key, secret):
        assert not any(s[i : i + 8] in ours for i in range(len(s) - 7)), s


async def test_a_preferred_feed_keeps_the_backup_on_standby_until_it_drops(
    alpaca_server: FakeAlpacaServer, polygon_server: FakePolygonServer, feed_harness: FeedHarness
) -> None:
    arbiter = FeedArbiter(standby_after=10)
    primary = alpaca(alpaca_server, feed_harness, arbiter)
    backup = PolygonSource(
        PolygonConfig(type="polygon", name="polygon", api_key=polygon_server.api_key,  # type: ignore[arg-type]
                      url=polygon_server.stocks_url, priority=1, **FAST),
        feed_harness.ctx(arbiter),
    )  # fmt: skip
    feed_harness.start(primary)
    feed_harness.start(backup)
    await alpaca_server.wait_live()
    await polygon_server.wait_live()
    await wait_until(lambda: primary.state == backup.state == "connected", 5, "both connected")
    await alpaca_server.send([alpaca_server.trade("AAPL", 100.0)])
    await feed_harness.wait_ticks(1)
    await polygon_server.send([polygon_server.trade("AAPL", 100.01, trade_id="1")])
    await wait_until(lambda: backup.standby == 1, 5, "the backup's tick held on standby")
    await alpaca_server.drop()
    await wait_until(lambda: primary.reconnects == 1, 5, "the primary to notice the drop")
    await polygon_server.send([polygon_server.trade("AAPL", 100.02, trade_id="2")])
    ticks = await feed_harness.wait_ticks(2)
    assert [(t.source, t.price) for t in ticks] == [("alpaca", 100.0), ("polygon", 100.02)]
    assert backup.standby == 1 and backup.status()["standby"] == 1


async def test_a_batch_that_meets_a_redis_outage_is_written_once_redis_is_back(
    alpaca_server: FakeAlpacaServer, tmp_path: Path
) -> None:
    """A real outage: this test's own redis-server is stopped, then started on the same port."""
    servers = [EmbeddedRedis(tmp_path, persist=False).start()]
    redis = connect(servers[0].url)
    harness = FeedHarness(redis, Keys("outage"))
    try:
        src = alpaca(alpaca_server, harness)
        harness.start(src)
        await alpaca_server.wait_live()
        await alpaca_server.send([alpaca_server.trade("AAPL", 100.0, trade_id=1)])
        await harness.wait_ticks(1)
        await asyncio.to_thread(servers[0].stop)
        await alpaca_server.send([alpaca_server.trade("AAPL", 101.0, trade_id=2)])
        await wait_until(lambda: src.state != "connected", 5, "the feed to stop on the outage")
        servers.append(EmbeddedRedis(tmp_path, port=servers[0].port, persist=False))
        await asyncio.to_thread(servers[1].start)
        ticks = await harness.wait_ticks(1, timeout=10)
        assert [t.price for t in ticks] == [101.0]  # the old server's data is gone; this is not
        assert not harness.fatal
    finally:
        await harness.stop()
        await redis.aclose()
        for server in servers:
            await asyncio.to_thread(server.stop)


async def test_aclose_says_goodbye_and_does_not_reconnect(
    alpaca_server: FakeAlpacaServer, feed_harness: FeedHarness
) -> None:
    src = alpaca(alpaca_server, feed_harness)
    task = feed_harness.start(src)
    await alpaca_server.wait_live()
    await src.aclose()
    assert task.done() and not task.cancelled()  # a finished job, not a cancelled one
    assert alpaca_server.sessions[0].ws.close_code == 1000
    assert len(alpaca_server.sessions) == 1 and src.state == "stopped" and not feed_harness.fatal


async def test_aclose_during_backoff_ends_at_once(feed_harness: FeedHarness) -> None:
    async with FakeAlpacaServer() as server:
        url = server.stocks_url()
    src = alpaca(server, feed_harness, url=url, backoff_initial=timedelta(seconds=30),
                 backoff_max=timedelta(seconds=30))  # fmt: skip
    task = feed_harness.start(src)
    await wait_until(lambda: src.state == "backoff", 5, "a refused connection")
    await src.aclose()
    assert task.done() and src.state == "stopped"
