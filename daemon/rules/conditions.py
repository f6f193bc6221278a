"""Condition evaluators: from the market view to a value, and whether it fires or clears.

Each class compiles one schema condition for one instance (one symbol of a group, or one
pair) and is pure: `measure(market, now_ms)` reads, never writes. Values the message template
can use come back with the reading, so the alert text shows exactly the numbers that fired it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import ClassVar

from daemon.events import Headline
from daemon.rules.market import NEW_YORK, Market
from daemon.rules.schema import HeadlineCond, PctMoveCond, SpreadCond, ThresholdCond

__all__ = [
    "HeadlineMatcher",
    "LevelCheck",
    "PctMove",
    "Reading",
    "Spread",
    "Threshold",
]


@dataclass(slots=True)
class Reading:
    value: float
    active: bool
    cleared: bool
    values: dict[str, float | str]


@dataclass(frozen=True, slots=True)
class LevelCheck:
    """`above`/`below` a level with an optional separate `clear` level (hysteresis)."""

    comparison: str
    level: float
    clear: float | None

    def judge(self, value: float) -> tuple[bool, bool]:
        if self.comparison == "above":
            active = value > self.level
            cleared = value < self.clear if self.clear is not None else not active
        else:
            active = value < self.level
            cleared = value > self.clear if self.clear is not None else not active
        return active, cleared


class Threshold:
    kind: ClassVar[str] = "threshold"

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
        return Reading(value, active, cleared, {"symbol": self.symbol, "price": value})


class Spread:
    kind: ClassVar[str] = "spread"

    def __init__(self, cond: SpreadCond):
        self.a, self.b = cond.a, cond.b
        self.symbols = (cond.a, cond.b)
        self.mode = cond.as_
        self.cond = cond
        self.check = LevelCheck(cond.comparison, cond.level, cond.clear)
        self.labels = {"pair": f"{cond.a}/{cond.b}"}
        self.since_label = (
            "YTD" if cond.since == "ytd" else f"since {cond.since}" if cond.since else ""
        )

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        qa, qb = m.quotes.get(self.a), m.quotes.get(self.b)
        if qa is None or qb is None:
            return None
        pa, pb = qa.price, qb.price
        if self.mode == "difference":
            av, bv, value = pa, pb, pa - pb
        elif self.mode == "ratio":
            av, bv, value = pa, pb, pa / pb
        else:
            today = dt.datetime.fromtimestamp(now_ms / 1000, NEW_YORK).date()
            day = self.cond.anchor_date(today)
            assert day is not None
            base_a, base_b = m.anchors.get(self.a, day), m.anchors.get(self.b, day)
            if base_a is None or base_b is None:
                return None
            av = (pa / base_a - 1) * 100
            bv = (pb / base_b - 1) * 100
            value = av - bv
        active, cleared = self.check.judge(value)
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
        return Reading(value, active, cleared, values)


class PctMove:
    kind: ClassVar[str] = "pct_move"

    def __init__(self, cond: PctMoveCond, symbol: str):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.window_ms = int(cond.window.total_seconds() * 1000)
        self.window_text = _fmt_window(cond.window)
        self.direction = cond.direction
        self.magnitude = cond.magnitude
        self.clear = cond.clear
        self.labels = {"symbol": symbol}

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        w = m.windows.get(self.symbol)
        q = m.quotes.get(self.symbol)
        if w is None or q is None:
            return None
        ref = w.reference(q.ts_ms, self.window_ms)
        if ref is None or ref <= 0:
            return None
        value = (q.price / ref - 1) * 100
        d, mag = self.direction, self.magnitude
        signed = value if d == "up" else -value if d == "down" else abs(value)
        active = signed >= mag
        cleared = signed < self.clear if self.clear is not None else not active
        values: dict[str, float | str] = {
            "symbol": self.symbol,
            "price": q.price,
            "from_price": ref,
            "window": self.window_text,
        }
        return Reading(value, active, cleared, values)


def _fmt_window(td: dt.timedelta) -> str:
    from daemon.durations import format_duration

    return format_duration(td)


def _keyword_pattern(entry: str) -> re.Pattern[str]:
    alts = [re.escape(a.strip()) for a in entry.split("|")]
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", re.IGNORECASE)


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

    def match(self, h: Headline) -> tuple[str, list[str], float | None] | None:
        """(primary symbol, matched symbols, sentiment) when `h` matches, else None."""
        if self.sources is not None and h.source.lower() not in self.sources:
            return None
        if self.symbols:
            matched = [s for s in h.symbols if s in self.symbols]
            if not matched:
                return None
        else:
            matched = list(h.symbols)
        text = f"{h.title}\n{h.summary}"
        if self.any_of and not any(p.search(text) for p in self.any_of):
            return None
        if not all(p.search(text) for p in self.all_of):
            return None
        if any(p.search(text) for p in self.none_of):
            return None
        primary = matched[0] if matched else ""
        score = h.sentiment_for(primary) if primary else h.sentiment
        if self.sentiment is not None and not self.sentiment.accepts(score):
            return None
        return primary, matched, score
