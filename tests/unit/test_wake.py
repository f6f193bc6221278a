"""Skipping idle clock steps tells exactly what stepping every 5 s tells.

`simulate(skip_idle=True)` (what `tickwatch test` and the backtest run) steps only the grid
points from `Driver.quiet_until` on. These runs put the same days of minute bars through both,
with the clock-driven rules a desk uses (silence during the session, `no_data_after`, `for:`,
`keep_firing_for`, `repeat`, bar closes, earnings reminders) and feeds that go quiet mid-session,
overnight and over a weekend, and compare every transition told: rule, key, state, time, value.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.alerts import AlertEvent
from daemon.config import load_config
from daemon.events import Tick, dt_to_ms
from daemon.rules import driver as driver_mod
from daemon.rules.driver import Driver, simulate

NY = ZoneInfo("America/New_York")
MIN = 60_000
SYMS = ["XMAG", "MAGS", "NVDA", "MSFT"]

ALERTS = """\
channels: {console: {type: console}}
symbols: [XMAG, MAGS, NVDA, MSFT]
groups: {pair: [XMAG, MAGS]}
calendar: {earnings: earnings.csv}
include: [rules/*.yaml]
"""
EARNINGS = "symbol,date,when\nNVDA,2026-03-17,amc\nMSFT,2026-03-18,bmo\n"
RULES = """\
rules:
  - name: silent
    when: {stale: {symbols: [XMAG, MAGS, NVDA, MSFT], after: 5m}}
    channels: [console]
  - name: silent-held
    when: {stale: {symbols: [NVDA], after: 3m}}
    for: 4m
    keep_firing_for: 2m
    repeat: 10m
    channels: [console]
  - name: silent-and-high
    when: {all: [{stale: {symbols: MSFT, after: 2m}}, {threshold: {symbols: MSFT, above: 100}}]}
    channels: [console]
  - name: spread-no-data
    when: {spread: {a: XMAG, b: MAGS, above: 3}}
    on_no_data: alerting
    no_data_after: 7m
    channels: [console]
  - name: nvda-high-held
    when: {threshold: {symbols: NVDA, above: 101, clear: 100.5}}
    for: 3m
    channels: [console]
  - name: nvda-bar
    when: {threshold: {symbols: NVDA, below: 99}}
    evaluate: bar_close
    bar: 5m
    channels: [console]
  - name: earnings-reminder
    when:
      earnings_reminder:
        symbols: [NVDA, MSFT]
        remind: [{days_before: 1, at: "18:00"}, {before: 15m}]
    channels: [console]
"""


def days(seed: int) -> list[Tick]:
    """Minute bars for four symbols, Friday to Tuesday (a weekend between), the session only,
    with random silences: one symbol at a time, 2-25 min, a few times a day."""
    rng = random.Random(seed)
    out: list[Tick] = []
    price = {"XMAG": 103.0, "MAGS": 100.0, "NVDA": 100.0, "MSFT": 99.5}
    for day in (13, 16, 17, 18):  # Fri 13 March 2026, then Mon-Wed
        open_ms = dt_to_ms(dt.datetime(2026, 3, day, 9, 30, tzinfo=NY))
        quiet: dict[str, range] = {}
        for _ in range(rng.randint(2, 5)):
            sym = rng.choice(SYMS)
            start = rng.randrange(0, 380)
            quiet[sym] = range(start, start + rng.randint(2, 25))
        for minute in range(390):
            ts = open_ms + (minute + 1) * MIN  # a bar is stamped at its end
            for sym in SYMS:
                price[sym] *= 1 + rng.gauss(0, 0.002)
                if minute in quiet.get(sym, ()):
                    continue
                out.append(Tick(sym, ts, round(price[sym], 4), kind="bar", source="t"))
    return out


def run(tmp_path: Path, ticks: list[Tick], *, skip: bool) -> list[AlertEvent]:
    cfg = load_config(tmp_path / "alerts.yaml", env={})
    start = dt_to_ms(dt.datetime(2026, 3, 13, 9, 0, tzinfo=NY))
    until = dt_to_ms(dt.datetime(2026, 3, 19, 0, 0, tzinfo=NY))
    d = Driver(cfg.compile(), reminders_after_ms=start)
    return simulate(d, ticks, start_ms=start, until_ms=until, skip_idle=skip)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_skipping_idle_clock_steps_tells_the_same(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(ALERTS)
    (tmp_path / "earnings.csv").write_text(EARNINGS)
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    ticks = days(seed)
    steps = {"n": 0}
    clock = Driver.clock

    def counted(self: Driver, now_ms: int, **kw: bool) -> list[AlertEvent]:
        steps["n"] += 1
        return clock(self, now_ms, **kw)

    monkeypatch.setattr(driver_mod.Driver, "clock", counted)
    every = run(tmp_path, ticks, skip=False)
    stepped_every = steps["n"]
    steps["n"] = 0
    skipped = run(tmp_path, ticks, skip=True)

    def key(a: AlertEvent) -> tuple[object, ...]:
        return (a.rule, a.key, a.state, a.seq, a.repeat, a.ts_ms, repr(a.value), a.summary)

    assert [key(a) for a in skipped] == [key(a) for a in every]
    rules = {a.rule for a in every}
    # the data exercises the clock: silences fire and resolve, reminders come, bars close
    assert {"silent", "earnings-reminder", "spread-no-data", "nvda-bar"} <= rules, rules
    assert any(a.state == "resolved" and a.rule == "silent" for a in every)
    # and the skip is real: nights, the weekend and quiet stretches are not stepped
    assert steps["n"] < stepped_every / 3, (steps["n"], stepped_every)
