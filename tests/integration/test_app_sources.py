"""How the daemon wires its sources: backfill before live feeds, provider calendars into rules."""

from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import load_config
from daemon.events import Tick
from daemon.store.keys import Keys
from tests.fakes.rest_providers import FakeAlpacaData, FakeFinnhub, alpaca_bar
from tests.fakes.ws_feeds import FakeAlpacaServer
from tests.helpers import wait_until

MIN = 60_000


def write(tmp: Path, redis_url: str, keys: Keys, sources: str, rules: str) -> Path:
    (tmp / "rules").mkdir()
    (tmp / "rules" / "r.yaml").write_text(rules)
    (tmp / "alerts.yaml").write_text(
        f'redis: {{url: "{redis_url}", prefix: {keys.prefix}}}\n'
        "groups: {mag7: [AAPL, MSFT, GOOGL, AMZN, META, NVDA, TSLA]}\n"
        f"sources:\n{sources}\n"
        "channels: {console: {type: console}}\ninclude: [rules/*.yaml]\n"
    )
    return tmp / "alerts.yaml"


async def test_backfill_lands_before_the_live_feed_starts(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys,
    alpaca_rest: FakeAlpacaData, alpaca_server: FakeAlpacaServer,
) -> None:  # fmt: skip
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    alpaca_rest.bars = {"NVDA": [alpaca_bar(now - dt.timedelta(minutes=m), 120.0 + m)
                                 for m in range(30, 0, -1)]}  # fmt: skip
    sources = f"""\
  - {{name: warmup, type: alpaca_backfill, key_id: {alpaca_rest.key_id},
     secret_key: {alpaca_rest.secret_key}, base_url: "{alpaca_rest.base_url}", lookback: 1h}}
  - {{name: live, type: alpaca, key_id: {alpaca_server.key_id},
     secret_key: {alpaca_server.secret_key}, url: "{alpaca_server.stocks_url()}"}}"""
    rules = "rules:\n  - {name: hi, when: {threshold: {symbols: NVDA, above: 500}}, " \
            "channels: [console]}\n"  # fmt: skip
    cfg = load_config(write(tmp_path, redis_url, keys, sources, rules), env={})
    daemon = Daemon(cfg, console=io.StringIO(), watch=False)
    await daemon.start()
    try:
        await alpaca_server.wait_live(1, 20)  # the live feed connects only after the backfill
        await alpaca_server.send([alpaca_server.trade("NVDA", 150.0, trade_id=77)])

        async def sources_in_order() -> list[str]:
            return [f["src"] for _, f in await redis.xrange(keys.ticks)]

        got: list[str] = []

        async def both() -> bool:
            got[:] = await sources_in_order()
            return "live" in got

        deadline = time.monotonic() + 20
        while not await both():
            assert time.monotonic() < deadline, got
            await alpaca_server.wait_for(lambda: True, 0.05)
    finally:
        await daemon.stop()
    assert got == ["warmup"] * 30 + ["live"]
    ticks = [Tick.from_fields(f) for _, f in await redis.xrange(keys.ticks)]
    assert [t.price for t in ticks[:2]] == [150.0, 149.0]  # oldest bar first, at its end


async def test_a_provider_calendar_reaches_the_rules_and_reminders(
    tmp_path: Path, redis_url: str, keys: Keys, finnhub_rest: FakeFinnhub
) -> None:
    report = dt.date.today() + dt.timedelta(days=10)
    row = {"date": report.isoformat(), "epsActual": None, "epsEstimate": 3.1, "hour": "amc",
           "quarter": 1, "revenueActual": None, "revenueEstimate": 1, "symbol": "MSFT",
           "year": report.year}  # fmt: skip
    finnhub_rest.calendar = [row]
    sources = f"""\
  - {{name: cal, type: earnings_calendar, provider: finnhub, api_key: {finnhub_rest.token},
     base_url: "{finnhub_rest.base_url}"}}"""
    rules = """\
rules:
  - name: eve
    when: {earnings_reminder: {symbols: mag7, remind: [{days_before: 1, at: "18:00"}]}}
    channels: [console]
  - name: around
    when: {earnings: {symbols: mag7, before: 1d, after: 1d}}
    channels: [console]
"""
    cfg = load_config(write(tmp_path, redis_url, keys, sources, rules), env={})
    assert cfg.earnings == []  # no offline calendar at all
    daemon = Daemon(cfg, console=io.StringIO(), watch=False)
    await daemon.start()
    try:
        await wait_until(lambda: any(e.symbol == "MSFT" for e in daemon.cfg.earnings), 20,
                         "the provider's report in the calendar")  # fmt: skip
        # the reminder and the earnings-window rule's measure know the report, from the
        # evaluator's next batch on
        evaluator = daemon.evaluator
        assert evaluator is not None
        await wait_until(lambda: evaluator.driver.upcoming(), 20, "the reminder to come")
        timers = evaluator.driver.upcoming()
        assert len(timers) == 1 and timers[0].event.symbol == "MSFT"
        due = dt.datetime.fromtimestamp(timers[0].fire_ms / 1000, ZoneInfo("America/New_York"))
        assert (due.date(), due.hour) == (report - dt.timedelta(days=1), 18)

        def known() -> list[dt.date]:
            conds = [i.cond for i in evaluator.plan.instances if i.key == "around{symbol=MSFT}"]
            return [e.date for c in conds for e in getattr(c, "events", [])]

        await wait_until(lambda: known() == [report], 20, "the window rule on the new calendar")
    finally:
        await daemon.stop()
