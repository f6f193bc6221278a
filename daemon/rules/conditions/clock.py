"""Conditions time decides: `Stale` (silence in the session) and `EarningsWindow`."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from typing import ClassVar

from daemon.durations import format_duration
from daemon.events import EarningsEvent
from daemon.rules.conditions.base import Reading, _Slow
from daemon.rules.market import Market
from daemon.rules.schema import EarningsCond, StaleCond
from daemon.rules.sessions import Sessions

__all__ = ["EarningsWindow", "Stale"]


class EarningsWindow(_Slow):
    """Inside [report - before, report + after] of one of the symbol's reports."""

    kind: ClassVar[str] = "earnings"

    def __init__(self, cond: EarningsCond, symbol: str, events: list[EarningsEvent]):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.before_ms = int(cond.before.total_seconds() * 1000)
        self.after_ms = int(cond.after.total_seconds() * 1000)
        self.events = sorted((e for e in events if e.symbol == symbol), key=lambda e: e.market_ms)
        self.times = [e.market_ms for e in self.events]
        self.labels = {"symbol": symbol}

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        # the nearest report at or after now - after (bisect: the list is sorted by time)
        i = bisect_left(self.times, now_ms - self.after_ms)
        values: dict[str, float | str] = {"symbol": self.symbol}
        if i < len(self.times):
            ev = self.events[i]
            hours = (now_ms - self.times[i]) / 3_600_000
            inside = self.times[i] - self.before_ms <= now_ms
            values.update(report_date=ev.date.isoformat(), when_text=ev.when_text, hours=hours)
            return Reading(hours, inside, not inside, values, False, None, "hours from report")
        return Reading(float("nan"), False, True, values, False, None, "hours from report")

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        """As `measure` says, without building the Reading (every tick of the symbol)."""
        inside = self.inside(now_ms)
        return inside, not inside

    def inside(self, now_ms: int) -> bool:
        """Whether `now_ms` is inside the window (routing asks too: `earnings: within 1d`)."""
        times = self.times
        i = bisect_left(times, now_ms - self.after_ms)
        return i < len(times) and times[i] - self.before_ms <= now_ms

    explain = measure


class Stale(_Slow):
    """Silence from a symbol during the regular session, measured in seconds."""

    kind: ClassVar[str] = "stale"

    def __init__(self, cond: StaleCond, symbol: str, sessions: Sessions):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.after_ms = int(cond.after.total_seconds() * 1000)
        self.sessions = sessions
        self.labels = {"symbol": symbol}

    def _silent_ms(self, m: Market, now_ms: int) -> int | None:
        """How long the symbol has been silent in today's session; None outside the session."""
        opened = self.sessions.regular_open(now_ms)
        if opened is None:
            return None
        q = m.quotes.get(self.symbol)
        return max(0, now_ms - max(q.ts_ms if q is not None else m.first_ms, opened))

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        """The hot path (every tick of the symbol, every second of the clock): no Reading."""
        q = m.quotes.get(self.symbol)
        if q is not None and q.ts_ms >= now_ms and self.after_ms > 0:
            return False, True  # it ticked just now: not silent, in the session or out of it
        silent = self._silent_ms(m, now_ms)
        if silent is None:
            return False, True
        active = silent >= self.after_ms
        return active, not active

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        values: dict[str, float | str] = {"symbol": self.symbol}
        silent = self._silent_ms(m, now_ms)
        if silent is None:
            return Reading(0.0, False, True, values, False, None, "silent")
        silent_s = silent / 1000
        active = silent >= self.after_ms
        values["silent_for"] = format_duration(dt.timedelta(seconds=int(silent_s)))
        return Reading(silent_s, active, not active, values, False, self.after_ms / 1000, ">=")

    explain = measure
