"""Condition evaluators: from the market view to a value, and whether it fires or clears.

Each class compiles one schema condition for one instance (one symbol of a group, or one
pair) and is pure: `measure(market, now_ms)` reads, never writes. Values the message template
can use come back with the reading, so the alert text shows exactly the numbers that fired it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import ClassVar, Self

import regex

from daemon.durations import format_duration
from daemon.events import EarningsEvent, Headline
from daemon.rules.expr import Expr
from daemon.rules.market import Market, Quote, ny_date
from daemon.rules.schema import (
    BandCond,
    BreadthCond,
    CrossesCond,
    EarningsCond,
    HeadlineCond,
    PctMoveCond,
    SeriesSpread,
    SpreadCond,
    StaleCond,
    ThresholdCond,
    VolumeSpikeCond,
)
from daemon.rules.sessions import Sessions

__all__ = [
    "Band",
    "Breadth",
    "Composite",
    "Crosses",
    "EarningsWindow",
    "ExprMeasure",
    "HeadlineMatcher",
    "LevelCheck",
    "Measure",
    "NoDataGuard",
    "PctMove",
    "Reading",
    "SeriesCross",
    "Spread",
    "Stale",
    "Threshold",
    "VolumeSpike",
]

log = logging.getLogger("tickwatch.rules")


@dataclass(slots=True)
class Reading:
    value: float
    active: bool
    cleared: bool
    values: dict[str, float | str]
    #: An edge (a crossing): `active` means "happened on this tick"; there is no pending/resolve.
    event: bool = False
    threshold: float | None = None
    comparison: str = ""


@dataclass(frozen=True, slots=True)
class LevelCheck:
    """`above`/`below` a level with an optional separate `clear` level (hysteresis)."""

    comparison: str
    level: float
    clear: float | None
    #: What resolving means, naming the level that was passed: "back above 9" (made once:
    #: every reading carries it).
    back_text: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.clear is not None:
            side = "below" if self.comparison == "above" else "above"
            text = f"back {side} {self.clear:g}"
        else:
            side = "at or below" if self.comparison == "above" else "at or above"
            text = f"back {side} {self.level:g}"
        object.__setattr__(self, "back_text", text)

    def judge(self, value: float) -> tuple[bool, bool]:
        if self.comparison == "above":
            active = value > self.level
            cleared = value < self.clear if self.clear is not None else not active
        else:
            active = value < self.level
            cleared = value > self.clear if self.clear is not None else not active
        return active, cleared


class _Slow:
    """`verdict` for measures without a fast path: the full reading, kept for `explain`."""

    event: ClassVar[bool] = False
    _last: Reading | None = None

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        raise NotImplementedError

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        r = self._last = self.measure(m, now_ms)
        return None if r is None else (r.active, r.cleared)

    def explain(self, m: Market, now_ms: int) -> Reading | None:
        return self._last


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


class SeriesCross(_Slow):
    """A series (a spread, a ratio, an expression's value) crossing a level between two
    consecutive judged steps: an event, like `Crosses` on a price.

    The previous value is this measure's own state, so each alert instance has its own
    (`fresh`) and history replays through it at start-up (`warms`).
    """

    kind: ClassVar[str] = "crosses"
    event: ClassVar[bool] = True

    def __init__(self, cond: CrossesCond, series: Spread | ExprSeries):
        self.cond = cond
        self.series = series
        self.symbols: tuple[str, ...] = series.symbols
        self.labels: dict[str, str] = dict(series.labels)
        self.level = cond.level
        self.direction = cond.direction
        self._before: float | None = None

    def fresh(self) -> SeriesCross:
        series = self.series.fresh() if isinstance(self.series, ExprSeries) else self.series
        return SeriesCross(self.cond, series)

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        r = self.series.measure(m, now_ms)
        if r is None or r.value != r.value:
            return None
        now, before = r.value, self._before
        self._before = now
        lvl = self.level
        up = before is not None and before <= lvl < now
        down = before is not None and before >= lvl > now
        d = self.direction
        crossed = up if d == "up" else down if d == "down" else up or down
        how = "crossed up" if up else "crossed down" if down else "crosses"
        values: dict[str, float | str] = {**r.values, "value": now}
        if before is not None:
            values["from_value"] = before
        return Reading(now, crossed, not crossed, values, True, lvl, how)


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


class NoDataGuard:
    """A rule's `on_no_data`: what "cannot be judged" means for its alert.

    No data is the inner condition having no verdict (a price, an anchor or window history is
    missing) or, with `no_data_after`, an input silent that long during the regular session.
    `keep` is not wrapped at all, so rules without the option pay nothing on the hot path.
    """

    kind: ClassVar[str] = "no_data"

    def __init__(
        self, inner: Measure, action: str, after_ms: int | None, sessions: Sessions
    ) -> None:
        self.inner = inner
        self.symbols: tuple[str, ...] = inner.symbols
        self.labels: dict[str, str] = inner.labels
        self.event: bool = inner.event
        self.after_ms = after_ms
        self.sessions = sessions
        #: the verdict no data stands for (None: keep the alert as it is)
        self.stands_for: tuple[bool, bool] | None = {
            "ok": (False, True),
            "alerting": (True, False),
        }.get(action)

    def _silent(self, m: Market, now_ms: int) -> list[str]:
        """Inputs silent for `after_ms` or more, counted from the open during the session."""
        after = self.after_ms
        opened = self.sessions.regular_open(now_ms) if after is not None else None
        if opened is None or after is None:
            return []
        out = []
        for sym in self.symbols:
            q = m.quotes.get(sym)
            last = max(q.ts_ms if q else m.first_ms, opened)
            if now_ms - last >= after:
                out.append(sym)
        return out

    def silence(self, m: Market, now_ms: int) -> Reading | None:
        """The no-data reading when an input has gone silent (the clock's check), else None."""
        silent = self._silent(m, now_ms)
        return self.no_data(silent) if silent else None

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        if self.after_ms is not None and self._silent(m, now_ms):
            return self.stands_for
        v = self.inner.verdict(m, now_ms)
        return self.stands_for if v is None else v

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        silent = self._silent(m, now_ms)
        r = None if silent else self.inner.measure(m, now_ms)
        return r if r is not None else self.no_data(silent)

    def explain(self, m: Market, now_ms: int) -> Reading | None:
        silent = self._silent(m, now_ms)
        r = None if silent else self.inner.explain(m, now_ms)
        return r if r is not None else self.no_data(silent)

    def no_data(self, silent: list[str]) -> Reading | None:
        if self.stands_for is None:
            return None
        active, cleared = self.stands_for
        why = f"no data from {', '.join(silent)}" if silent else "no data"
        values: dict[str, float | str] = {**self.labels, "no_data": why}
        return Reading(float("nan"), active, cleared, values, False, None, "no data")


class Composite:
    """`all` / `any` / `not` over child conditions evaluated on the same tick."""

    kind: ClassVar[str] = "composite"

    def __init__(self, op: str, children: list[Measure], labels: dict[str, str]):
        self.op = op
        self.children = children
        self.labels = labels
        self.symbols: tuple[str, ...] = tuple(
            dict.fromkeys(sym for c in children for sym in c.symbols)
        )
        self.event: bool = op != "not" and any(c.event for c in children)

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        readings = []
        for child in self.children:
            r = child.measure(m, now_ms)
            if r is None:
                return None  # no data for one part: the whole can't be judged
            readings.append(r)
        return self._combine(readings)

    def explain(self, m: Market, now_ms: int) -> Reading | None:
        readings = []
        for child in self.children:
            r = child.explain(m, now_ms)
            if r is None:
                return None
            readings.append(r)
        return self._combine(readings)

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        op = self.op
        active = op == "all"
        cleared = op != "all"
        for child in self.children:
            v = child.verdict(m, now_ms)
            if v is None:
                return None  # no data for one part: the whole can't be judged
            if op == "not":
                return not v[0], v[0]
            if op == "all":
                active = active and v[0]
                cleared = cleared or v[1]
            else:
                active = active or v[0]
                cleared = cleared and v[1]
        return active, cleared

    def _combine(self, readings: list[Reading]) -> Reading:
        first = readings[0]
        values: dict[str, float | str] = {}
        for r in reversed(readings):
            values.update(r.values)
        if self.op == "not":
            return Reading(first.value, not first.active, first.active, values, False,
                           first.threshold, f"not {first.comparison}".strip())  # fmt: skip
        if self.op == "all":
            active = all(r.active for r in readings)
            cleared = any(r.cleared for r in readings)
        else:
            active = any(r.active for r in readings)
            cleared = all(r.cleared for r in readings)
        event = any(r.event for r in readings)
        return Reading(first.value, active, cleared, values, event, first.threshold,
                       first.comparison)  # fmt: skip


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
        times = self.times
        i = bisect_left(times, now_ms - self.after_ms)
        inside = i < len(times) and times[i] - self.before_ms <= now_ms
        return inside, not inside

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


class VolumeSpike(_Slow):
    """This slot's volume today against the same slot's mean on earlier days."""

    kind: ClassVar[str] = "volume_spike"

    def __init__(self, cond: VolumeSpikeCond, symbol: str):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.slot_ms = int(cond.slot.total_seconds() * 1000)
        self.days = cond.days
        self.ratio = cond.ratio
        self.min_days = cond.min_days
        self.labels = {"symbol": symbol}

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        profile = m.volumes.get(self.symbol)
        if profile is None:
            return None
        now, usual, n = profile.now_and_usual(now_ms)
        if usual is None or n < self.min_days or usual <= 0:
            return None
        x = now / usual
        values: dict[str, float | str] = {"symbol": self.symbol, "volume": now, "usual": usual}
        return Reading(x, x >= self.ratio, x < self.ratio, values, False, self.ratio, ">=")


class Breadth(_Slow):
    """How many of a group's per-symbol conditions hold on this tick."""

    kind: ClassVar[str] = "breadth"

    def __init__(self, cond: BreadthCond, parts: dict[str, Measure]):
        self.parts = parts
        self.symbols = tuple(parts)
        self.at_least = cond.at_least
        self.clear_below = cond.clear_below if cond.clear_below is not None else cond.at_least
        self.labels: dict[str, str] = {}

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        meeting: list[str] = []
        known = 0
        for sym, part in self.parts.items():
            r = part.measure(m, now_ms)
            if r is not None:
                known += 1
                if r.active:
                    meeting.append(sym)
        if not known:
            return None
        n = len(meeting)
        values: dict[str, float | str] = {
            "count": float(n), "of": float(len(self.parts)), "symbols": " ".join(meeting),
            "clear_text": f"back below {self.clear_below} of {len(self.parts)}",
        }  # fmt: skip
        return Reading(
            float(n), n >= self.at_least, n < self.clear_below, values, False,
            float(self.at_least), ">=",
        )  # fmt: skip


class ExprMeasure(_Slow):
    """A condition written in the expression language (`daemon.rules.expr`)."""

    kind: ClassVar[str] = "expr"

    def __init__(self, expr: Expr):
        self.expr = expr
        self.state = expr.instance()
        self.symbols: tuple[str, ...] = tuple(sorted(expr.symbols))
        self.labels: dict[str, str] = {}

    def fresh(self) -> Self:
        """Same expression, its own rolling windows (one per alert instance)."""
        return type(self)(self.expr)

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        result = self.state.evaluate(m, now_ms)
        if result is None:
            return None
        active = bool(result)
        values: dict[str, float | str] = dict(self.state.values())
        value = float(values.get("value", float("nan")))
        threshold = values.get("threshold")
        return Reading(
            value, active, not active, values, False,
            float(threshold) if threshold is not None else None, "vs",
        )  # fmt: skip


class ExprSeries(ExprMeasure):
    """An expression's numeric value as a series (`crosses: {expr: ...}`): not a condition of
    its own, so its reading is the value, never active."""

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        result = self.state.evaluate(m, now_ms)
        if result is None or isinstance(result, bool):
            return None
        values: dict[str, float | str] = dict(self.state.values())
        return Reading(float(result), False, True, values, False, None, "expr")


Measure = (
    Threshold | Spread | PctMove | Crosses | SeriesCross | Band | Composite | ExprMeasure
    | EarningsWindow | Stale | Breadth | VolumeSpike | NoDataGuard
)  # fmt: skip


def _keyword_pattern(entry: str) -> re.Pattern[str]:
    alts = [re.escape(a.strip()) for a in entry.split("|")]
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


class HeadlineRegex:
    """A trader's regular expression, run by the `regex` package with a time limit.

    Python's `re` can backtrack for minutes on a pattern like `(a+)+b`; rule text is untrusted,
    so a search that runs past `timeout` counts as no match (and is logged) instead of stalling
    the evaluator.
    """

    def __init__(self, pattern: str, timeout: float = 0.05):
        self.pattern = regex.compile(pattern, regex.IGNORECASE)
        self.timeout = timeout

    def search(self, text: str) -> bool:
        try:
            return self.pattern.search(text, timeout=self.timeout) is not None
        except TimeoutError:
            log.warning("regex %r gave up after %.0f ms", self.pattern.pattern, self.timeout * 1000)
            return False


class HeadlineMatcher:
    """Keyword, symbol, source and sentiment filters over a headline. Never evaluates user text."""

    kind: ClassVar[str] = "headline"

    def __init__(self, cond: HeadlineCond, symbols: list[str]):
        self.symbols = tuple(symbols)
        self.any_of = [_keyword_pattern(k) for k in cond.any_of]
        self.all_of = [_keyword_pattern(k) for k in cond.all_of]
        self.none_of = [_keyword_pattern(k) for k in cond.none_of]
        self.sentiment = cond.sentiment
        self.sources = {s.lower() for s in cond.sources} if cond.sources else None
        self.regex = HeadlineRegex(cond.regex) if cond.regex else None
        self.per = cond.per

    def watched(self, h: Headline) -> list[str]:
        """The symbols `h` tags that this rule watches (all it tags, for a keyword-only rule)."""
        return [s for s in h.symbols if s in self.symbols] if self.symbols else list(h.symbols)

    def match(self, h: Headline) -> list[tuple[str, float | None]]:
        """(symbol, sentiment) for each alert `h` raises: none, one, or one per symbol.

        By default (`per: symbol`) each symbol the headline tags is judged on its own, with that
        ticker's sentiment where the provider scored it, so "MSFT up, GOOGL down" can alert on
        one and not the other. `per: headline` raises one alert, under the first symbol.
        """
        if self.sources is not None and h.source.lower() not in self.sources:
            return []
        matched = self.watched(h)
        if self.symbols and not matched:
            return []
        text = f"{h.title}\n{h.summary}"
        if self.any_of and not any(p.search(text) for p in self.any_of):
            return []
        if not all(p.search(text) for p in self.all_of):
            return []
        if any(p.search(text) for p in self.none_of):
            return []
        if self.regex is not None and not self.regex.search(text):
            return []
        if self.per == "headline":
            matched = matched[:1]
        hits = [(s, h.sentiment_for(s)) for s in matched] or [("", h.sentiment)]
        if self.sentiment is None:
            return hits
        accepts = self.sentiment.accepts
        return [(s, score) for s, score in hits if accepts(score)]
