"""Measures over other measures: `Composite` (all/any/not), `Breadth`, `NoDataGuard`."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from daemon.rules.conditions.base import Reading, _Slow
from daemon.rules.market import Market
from daemon.rules.schema import BreadthCond
from daemon.rules.sessions import Sessions

if TYPE_CHECKING:
    from daemon.rules.conditions.measure import Measure

__all__ = ["Breadth", "Composite", "NoDataGuard"]


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
