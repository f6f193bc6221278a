"""The earnings calendar, its window condition, and reminders scheduled with APScheduler."""

from __future__ import annotations

import datetime as dt
import io
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import ConfigError, load_config
from daemon.events import EarningsEvent
from daemon.rules.schema import Reminder
from daemon.rules.timers import due_at
from daemon.sources.dated_csv import load_earnings_csv
from daemon.store.keys import Keys
from tests.helpers import wait_until

NY = ZoneInfo("America/New_York")


def ny_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=NY).timestamp() * 1000)  # type: ignore[misc]


def test_calendar_csv_reads_rows_and_locates_bad_ones(tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text(
        "# comment\nsymbol,date,when,note\nnvda,2026-05-27,amc,\nAAPL,2026-07-30,BMO,est\n"
        "MSFT,2026-13-01,amc,\nMETA,2026-07-29,lunch,\n"
    )
    events, problems = load_earnings_csv(f, "e.csv")
    assert events == [
        EarningsEvent("NVDA", dt.date(2026, 5, 27), "amc"),
        EarningsEvent("AAPL", dt.date(2026, 7, 30), "bmo", "est"),
    ]
    assert [str(p) for p in problems] == [
        "e.csv:5: date: '2026-13-01' is not a date; write YYYY-MM-DD",
        "e.csv:6: when: 'lunch' is not one of bmo, amc, unknown",
    ]


def test_bad_calendar_row_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cal.csv").write_text("symbol,date,when\nNVDA,May 27,amc\n")
    (tmp_path / "alerts.yaml").write_text(
        "calendar: {earnings: cal.csv}\nchannels: {console: {type: console}}\n"
    )
    with pytest.raises(ConfigError, match=r"cal.csv:2: date: 'May 27' is not a date"):
        load_config(tmp_path / "alerts.yaml", env={})


def test_report_meets_the_market_at_the_open_or_the_close() -> None:
    amc = EarningsEvent("NVDA", dt.date(2026, 11, 18), "amc")
    bmo = EarningsEvent("NVDA", dt.date(2026, 3, 9), "bmo")  # the Monday after DST starts
    assert amc.market_ms == ny_ms(2026, 11, 18, 16, 0)
    assert bmo.market_ms == ny_ms(2026, 3, 9, 9, 30)
    eve = Reminder(days_before=1, at="18:00")
    assert due_at(eve, bmo) == ny_ms(2026, 3, 8, 18, 0)  # EDT already: 22:00 UTC
    assert due_at(Reminder.model_validate({"before": "15m"}), amc) == ny_ms(2026, 11, 18, 15, 45)
    with pytest.raises(ValueError, match="days_before and at go together"):
        Reminder(days_before=1)


async def test_a_due_reminder_is_sent_once_even_if_its_job_runs_twice(
    tmp_path: Path, redis_url: str, keys: Keys, redis: Redis
) -> None:
    # a report whose market moment is two days out, reminded "before" so it is due in ~1 s
    report = (dt.datetime.now(NY) + dt.timedelta(days=2)).date()
    event = EarningsEvent("NVDA", report, "amc")
    lead_s = int((event.market_ms - time.time() * 1000) / 1000) - 1
    (tmp_path / "cal.csv").write_text(f"symbol,date,when\nNVDA,{report},amc\n")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        "rules:\n  - name: remind\n    when:\n      earnings_reminder:\n"
        f"        symbols: NVDA\n        remind: [{{before: {lead_s}s}}]\n"
        "    channels: [console]\n"
    )
    (tmp_path / "alerts.yaml").write_text(
        f'redis: {{url: "{redis_url}", prefix: {keys.prefix}}}\n'
        "calendar: {earnings: cal.csv}\nchannels: {console: {type: console}}\n"
        "include: [rules/*.yaml]\n"
    )
    console = io.StringIO()
    daemon = Daemon(load_config(tmp_path / "alerts.yaml", env={}), console=console, watch=False)
    await daemon.start()
    try:
        assert daemon.evaluator is not None
        timers = daemon.evaluator.driver.upcoming()  # the evaluator's driver tells reminders
        assert len(timers) == 1
        (timer,) = timers
        await wait_until(lambda: "remind{report=" in console.getvalue(), 20, "the reminder")
        # the same reminder again (a restart within the grace, a second replica)
        await redis.xadd(keys.outbox, {"alert": timer.alert().to_json()})
        await wait_until(
            lambda: daemon.delivery is not None and daemon.delivery.skipped_duplicate >= 1,
            20,
            "dedup",
        )
    finally:
        await daemon.stop()
    lines = [x for x in console.getvalue().splitlines() if "remind{" in x]
    assert len(lines) == 1
    day = dt.datetime.fromtimestamp(event.market_ms / 1000, NY)
    assert f"NVDA reports after the close {day:%a %b %d} 16:00 ET" in lines[0]
