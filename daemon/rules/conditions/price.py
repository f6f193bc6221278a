"""Conditions on prices: `Threshold`, `Spread`, `PctMove`, `Crosses` and `Band`."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from daemon.durations import format_duration
from daemon.rules.conditions.base import LevelCheck, Reading
from daemon.rules.market import Market, Quote, ny_date
from daemon.rules.schema import (
    BandCond,
    CrossesCond,
    PctMoveCond,
    SeriesSpread,
    SpreadCond,
    ThresholdCond,
)

__all__ = ["Band", "Crosses", "PctMove", "Spread", "Threshold"]


class Threshold:
    kind: ClassVar[str] = "threshold"
    event: ClassVar[bool] = False

    def __init__(self, cond: ThresholdCond, symbol: str):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.price = cond.price
        self.check = LevelCheck(cond.comparison, cond.level, cond.clear)
        self.labels = {"symbol": symbol}

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        q = m.quotes.get(self.symbol)
        value = q.read(self.price) if q else None
        if value is None:
            return None
        active, cleared = self.check.judge(value)
        c = self.check
        values: dict[str, float | str] = {
            "symbol": self.symbol, "price": value, "clear_text": c.back_text,
        }  # fmt: skip
        return Reading(value, active, cleared, values, False, c.level, c.comparison)

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        """(active, cleared) exactly as `measure` would say, without building the Reading."""
        q = m.quotes.get(self.symbol)
        if q is None:
            return None
        value = q.price if self.price == "last" else q.read(self.price)
        return None if value is None else self.check.judge(value)

    explain = measure


class Spread:
    kind: ClassVar[str] = "spread"
    event: ClassVar[bool] = False

    def __init__(self, cond: SpreadCond | SeriesSpread):
        self.a, self.b = cond.a, cond.b
        self.symbols = (cond.a, cond.b)
        self.mode = cond.as_
        self.cond = cond
        #: None for a spread that is only a series (a crossing of it): no level of its own
        self.check = (
            LevelCheck(cond.comparison, cond.level, cond.clear)
            if isinstance(cond, SpreadCond)
            else None
        )
        self.labels = {"pair": f"{cond.a}/{cond.b}"}
        self.since_label = (
            "YTD" if cond.since == "ytd" else f"since {cond.since}" if cond.since else ""
        )

    def _legs(self, m: Market, now_ms: int) -> tuple[float, float, float, float, float] | None:
        """(a's value, b's value, the spread, a's price, b's price), or None: no data."""
        qa, qb = m.quotes.get(self.a), m.quotes.get(self.b)
        if qa is None or qb is None:
            return None
        pa, pb = qa.price, qb.price
        if pb == 0:
            return None  # the edge refuses non-positive prices; never divide by zero here
        if self.mode == "difference":
            return pa, pb, pa - pb, pa, pb
        if self.mode == "ratio":
            return pa, pb, pa / pb, pa, pb
        day = self.cond.anchor_date(ny_date(now_ms))
        assert day is not None
        base_a, base_b = m.anchors.get(self.a, day), m.anchors.get(self.b, day)
        if not base_a or not base_b:
            return None
        av = (pa / base_a - 1) * 100
        bv = (pb / base_b - 1) * 100
        return av, bv, av - bv, pa, pb

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        legs = self._legs(m, now_ms)
        if legs is None:
            return None
        av, bv, value, pa, pb = legs
        c = self.check
        active, cleared = c.judge(value) if c is not None else (False, True)
        values: dict[str, float | str] = {
            "a": self.a,
            "b": self.b,
            "a_value": av,
            "b_value": bv,
            "a_price": pa,
            "b_price": pb,
            "mode": self.since_label or self.mode,
            "since": self.since_label,
        }
        if c is None:
            return Reading(value, active, cleared, values, False, None, self.mode)
        values["clear_text"] = c.back_text
        return Reading(value, active, cleared, values, False, c.level, c.comparison)

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        """As `measure` says, without building the Reading (every step of either leg)."""
        legs = self._legs(m, now_ms)
        if legs is None:
            return None
        c = self.check
        return c.judge(legs[2]) if c is not None else (False, True)

    explain = measure


class PctMove:
    kind: ClassVar[str] = "pct_move"
    event: ClassVar[bool] = False

    def __init__(self, cond: PctMoveCond, symbol: str):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.since = cond.since
        self.window_ms = int(cond.window.total_seconds() * 1000) if cond.window else 0
        self.window_text = (
            format_duration(cond.window)
            if cond.window
            else {"prev_close": "since the previous close", "ytd": "YTD"}.get(
                str(cond.since), f"since {cond.since}"
            )
        )
        self.direction = cond.direction
        self.magnitude = cond.magnitude
        self.clear = cond.clear
        self.labels = {"symbol": symbol}

    def _anchor_day(self, now_ms: int) -> dt.date:
        today = ny_date(now_ms)
        if self.since == "prev_close":
            return today  # the last price before today's New York midnight
        if self.since == "ytd":
            return dt.date(today.year, 1, 1)
        assert isinstance(self.since, dt.date)
        return self.since

    def _move(self, m: Market) -> tuple[Quote, float, float] | None:
        """(quote, reference price, % move), shared by `verdict` and `measure`."""
        q = m.quotes.get(self.symbol)
        if q is None:
            return None
        if self.since is not None:
            ref = m.anchors.get(self.symbol, self._anchor_day(q.ts_ms))
        else:
            w = m.windows.get(self.symbol)
            ref = w.reference(q.ts_ms, self.window_ms) if w is not None else None
        if ref is None or ref <= 0:
            return None
        return q, ref, (q.price / ref - 1) * 100

    def _judge(self, value: float) -> tuple[bool, bool]:
        d = self.direction
        signed = value if d == "up" else -value if d == "down" else abs(value)
        active = signed >= self.magnitude
        return active, signed < self.clear if self.clear is not None else not active

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        move = self._move(m)
        return None if move is None else self._judge(move[2])

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        move = self._move(m)
        if move is None:
            return None
        q, ref, value = move
        active, cleared = self._judge(value)
        within = self.clear if self.clear is not None else self.magnitude
        values: dict[str, float | str] = {
            "symbol": self.symbol,
            "price": q.price,
            "from_price": ref,
            "window": self.window_text,
            "clear_text": f"back within {within:g}%",
        }
        # told as value vs its signed threshold: "+3.34 at or above 3.00"
        mag, d = self.magnitude, self.direction
        up = d == "up" or (d == "either" and value >= 0)
        threshold, comparison = (mag, ">=") if up else (-mag, "<=")
        return Reading(value, active, cleared, values, False, threshold, comparison)

    explain = measure


class Crosses:
    """The price moving through a level between the previous tick and this one."""

    kind: ClassVar[str] = "crosses"
    event: ClassVar[bool] = True

    def __init__(self, cond: CrossesCond, symbol: str):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.level = cond.level
        self.direction = cond.direction
        self.price = cond.price
        self.labels = {"symbol": symbol}

    def _cross(self, m: Market) -> tuple[float, float | None, bool, bool] | None:
        """(price now, price before, crossed up, crossed down), shared by both readings."""
        q = m.quotes.get(self.symbol)
        if q is None:
            return None
        now, before = q.read(self.price), q.read_prev(self.price)
        if now is None:
            return None
        up = before is not None and before <= self.level < now
        down = before is not None and before >= self.level > now
        return now, before, up, down

    def _crossed(self, up: bool, down: bool) -> bool:
        d = self.direction
        return up if d == "up" else down if d == "down" else up or down

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        c = self._cross(m)
        if c is None:
            return None
        crossed = self._crossed(c[2], c[3])
        return crossed, not crossed

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        c = self._cross(m)
        if c is None:
            return None
        now, before, up, down = c
        crossed = self._crossed(up, down)
        how = "crossed up" if up else "crossed down" if down else "crosses"
        values: dict[str, float | str] = {"symbol": self.symbol, "price": now}
        if before is not None:
            values["from_price"] = before
        return Reading(now, crossed, not crossed, values, True, self.level, how)

    explain = measure


class Band:
    """The price against a channel: held inside/outside, or the tick that enters/exits it."""

    kind: ClassVar[str] = "band"

    def __init__(self, cond: BandCond, symbol: str):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.lower, self.upper = cond.lower, cond.upper
        self.on = cond.on
        self.event: bool = cond.on in ("enters", "exits")
        self.price = cond.price
        self.labels = {"symbol": symbol}

    def _state(self, m: Market) -> tuple[float, bool] | None:
        """(price, whether this tick's condition holds), shared by both readings."""
        q = m.quotes.get(self.symbol)
        v = q.read(self.price) if q else None
        if q is None or v is None:
            return None
        inside = self.lower <= v <= self.upper
        if self.on in ("inside", "outside"):
            return v, inside if self.on == "inside" else not inside
        before = q.read_prev(self.price)
        if before is None:
            return v, False
        was = self.lower <= before <= self.upper
        return v, (not was and inside) if self.on == "enters" else (was and not inside)

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        st = self._state(m)
        return None if st is None else (st[1], not st[1])

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        st = self._state(m)
        if st is None:
            return None
        v, holds = st
        values: dict[str, float | str] = {
            "symbol": self.symbol, "price": v, "lower": self.lower, "upper": self.upper,
        }  # fmt: skip
        return Reading(v, holds, not holds, values, self.event, None, self.on)

    explain = measure
