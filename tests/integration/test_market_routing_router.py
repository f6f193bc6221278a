"""Market-aware routing through the real router on real Redis: three route lines ("SMS during
the session, Slack after hours, on-call around a report") and a session quiet window, with the
config's earnings merged with what a calendar source wrote to Redis."""

from __future__ import annotations

import datetime as dt
import json

from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.events import NEW_YORK, EarningsEvent, dt_to_ms
from daemon.notify.base import ChannelConfig
from daemon.notify.inhibit import Inhibitor
from daemon.notify.notification import Notification
from daemon.notify.route_tree import RouteConfig, compile_routes
from daemon.notify.router import Router
from daemon.notify.silence_book import SilenceStore
from daemon.store.calendar import CalendarStore
from daemon.store.keys import Keys
from daemon.store.outbox import OutboxStore

ROUTE = {
    "routes": [
        {"match": {"severity": "critical"}, "earnings": "within 1d", "channels": ["oncall"],
         "continue": True},
        {"session": ["regular"], "channels": ["sms"]},
        {"session": ["pre", "post", "closed", "holiday"], "channels": ["slack"]},
    ]
}  # fmt: skip
CHANNELS = {
    "oncall": ChannelConfig(type="x"),
    "sms": ChannelConfig(type="x"),
    "slack": ChannelConfig.model_validate({"type": "x", "quiet_hours": {"sessions": ["holiday"]}}),
}


def ny(*a: int) -> int:
    return dt_to_ms(dt.datetime(*a, tzinfo=NEW_YORK))  # type: ignore[misc]


def alert(n: int, symbol: str, severity: str, ts_ms: int) -> AlertEvent:
    return AlertEvent(
        rule="move", key=f"move{{n={n},symbol={symbol}}}", state="firing", seq=1, ts_ms=ts_ms,
        severity=severity, summary=f"#{n} {symbol}", channels=("desk",),  # type: ignore[arg-type]
        labels={"symbol": symbol, "n": str(n)},
    )  # fmt: skip


async def got(redis: Redis, keys: Keys, channel: str) -> list[str]:
    out = []
    for _id, fields in await redis.xrange(keys.deliver(channel)):
        n = Notification.from_json(fields["n"])
        out += [a.summary for a in n.alerts]
    return out


async def test_three_route_lines_on_the_real_router(redis: Redis, keys: Keys) -> None:
    # NVDA's report is in the config's CSV; AAPL's only in Redis, where a calendar source put it
    await CalendarStore(redis, keys).replace(
        "finnhub", {"AAPL": json.dumps([{"date": "2026-01-29", "when": "amc", "note": ""}])}
    )
    outbox = OutboxStore(redis, keys)
    router = Router(
        outbox,
        SilenceStore(redis, keys),
        root=compile_routes(RouteConfig.model_validate(ROUTE)),
        inhibitor=Inhibitor([]),
        channels=CHANNELS,
        earnings=[EarningsEvent("NVDA", dt.date(2026, 2, 25), "amc")],
    )
    await router.restore()
    feed = [
        alert(1, "NVDA", "critical", ny(2026, 2, 25, 11)),  # in the session, 5 h before NVDA
        alert(2, "AAPL", "critical", ny(2026, 1, 29, 18)),  # after hours, 2 h after AAPL
        alert(3, "NVDA", "warning", ny(2026, 3, 16, 10)),  # a plain session day
        alert(4, "AAPL", "critical", ny(2026, 3, 16, 21)),  # night, no report near
        alert(5, "AAPL", "warning", ny(2026, 2, 25, 8)),  # pre-market: NVDA reports, not AAPL
        alert(6, "NVDA", "warning", ny(2026, 7, 3, 11)),  # a holiday: Slack is quiet then
        alert(7, "NVDA", "critical", ny(2026, 11, 27, 14)),  # after the early close
    ]
    outcomes = []
    for a in feed:
        await redis.xadd(keys.outbox, {"alert": a.to_json()})
    entries = await outbox.read(router.consumer, count=100, block_ms=None)
    assert len(entries) == len(feed)
    for (_stream, entry_id, fields), a in zip(entries, feed, strict=True):
        decisions = await router.route_entry(entry_id, fields, now_ms=a.ts_ms)
        outcomes.append(sorted((d.channel, d.outcome) for d in decisions))
    assert await got(redis, keys, "oncall") == ["#1 NVDA", "#2 AAPL"]
    assert await got(redis, keys, "sms") == ["#1 NVDA", "#3 NVDA"]
    assert await got(redis, keys, "slack") == ["#2 AAPL", "#4 AAPL", "#5 AAPL", "#7 NVDA"]
    assert outcomes[5] == [("slack", "quiet")]
    assert await redis.hget(keys.suppressed, "quiet:slack") == "1"
    # the firing set keeps the alert's own labels, not the moment's
    firing = await outbox.firing()
    assert "session" not in firing[feed[0].key]

    # a calendar source finds MSFT's date: routing sees it on the next read (at most a minute)
    await CalendarStore(redis, keys).replace(
        "finnhub", {"MSFT": json.dumps([{"date": "2026-04-28", "when": "amc", "note": ""}])}
    )
    late = alert(8, "MSFT", "critical", ny(2026, 4, 28, 12))
    await router.refresh_earnings()  # read a moment ago: not again yet
    assert not router.dispatch.market.at(late.ts_ms).earnings_within("MSFT", 86_400_000)
    await router.refresh_earnings(force=True)
    await redis.xadd(keys.outbox, {"alert": late.to_json()})
    ((_s, entry_id, fields),) = await outbox.read(router.consumer, count=10, block_ms=None)
    await router.route_entry(entry_id, fields, now_ms=late.ts_ms)
    assert (await got(redis, keys, "oncall"))[-1] == "#8 MSFT"
    # the config's NVDA is still there (merged, not replaced); AAPL left Redis
    m = router.dispatch.market.at(ny(2026, 2, 25, 11))
    assert m.earnings_within("NVDA", 86_400_000)
    assert not router.dispatch.market.at(ny(2026, 1, 29, 18)).earnings_within("AAPL", 86_400_000)
