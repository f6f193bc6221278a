"""When, at the earliest, can the clock alone change anything? Pure, read-only.

The daemon steps its clock every 5 s (`CLOCK_EVERY_MS`) whatever happens, which is cheap live
and ruinous on simulated time: a year is 6.3 million steps, 60 s of a backtest's 10 s budget.
A simulation asks `Wake.until` (`Driver.quiet_until`) instead and steps only the 5 s grid
points from the one it names on; the steps it skips are provably idle (they would have told
nothing and changed no state), so what it tells, and when, is what stepping every 5 s tells
(tests/unit/test_wake.py runs both on the same data).

The bound is conservative: an earlier time than the true one only costs a step. It is exact
for what time alone can move in a quiet market: reminders, bar closes (end + grace), and the
session-aware silence of `stale:` and `no_data_after` (a symbol's silence counts from its
last price or the open, whichever is later, and only during the regular session). Anything
else the clock can change — a pending `for:`, a clear delay, `repeat`, flapping, `active:`
windows, `expires`, or a clock-judged rule that also reads something time moves (a window's
reference price, an earnings window) — answers "now", and every grid point is stepped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon.rules.conditions import (
    Band,
    Composite,
    Crosses,
    NoDataGuard,
    Spread,
    Stale,
    Threshold,
)
from daemon.rules.evaluate import BAR_GRACE_MS
from daemon.rules.lifecycle import AlertState

if TYPE_CHECKING:
    from daemon.rules.compile import Instance, Plan
    from daemon.rules.evaluate import Engine
    from daemon.rules.market import Market
    from daemon.rules.sessions import Sessions

__all__ = ["Wake"]

#: Leaves whose verdict moves only with prices (a tick), never with time alone.
_STILL = (Threshold, Spread, Crosses, Band)

_FAR = 2**62


class Wake:
    """`quiet_until` for one plan. What can be known from the plan alone (which clock rules
    are silence and prices only, which inputs each watches for how long) is worked out once,
    not at every clock step: a year on simulated time asks about 100,000 times."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        #: instances whose alert must be waiting on its verdict alone for time to be idle
        self._settle: list[Instance] = []
        #: False: some clock rule reads what time moves (no bound: step every grid point)
        self._bounded = True
        groups: dict[tuple[int, int], tuple[Sessions, int, dict[str, None]]] = {}

        def watch(sessions: Sessions, after_ms: int, symbols: tuple[str, ...]) -> None:
            g = groups.setdefault((id(sessions), after_ms), (sessions, after_ms, {}))
            g[2].update(dict.fromkeys(symbols))

        for inst in plan.clock_instances:
            stales: list[Stale] = []
            if not _timeless(inst) or not _only_stale_and_still(inst.cond, stales):
                self._bounded = False
            self._settle.append(inst)
            for s in stales:
                watch(s.sessions, s.after_ms, (s.symbol,))
        for inst, guard in plan.silence_watch:
            if not _timeless(inst) or guard.after_ms is None:
                self._bounded = False
            else:
                watch(guard.sessions, guard.after_ms, guard.symbols)
            self._settle.append(inst)
        #: (sessions, silent for, symbols) per calendar and span, each symbol once
        self._groups = [(ses, after, tuple(syms)) for ses, after, syms in groups.values()]

    def until(self, engine: Engine, now_ms: int, next_reminder_ms: int | None) -> int:
        """The earliest time after `now_ms` at which a clock step could tell or change
        anything (`now_ms` itself when that cannot be bounded)."""
        if not self._bounded:
            return now_ms
        states = engine.states
        for inst in self._settle:
            if not _settled(inst, states.get(inst.key)):
                return now_ms
        wake = _FAR if next_reminder_ms is None else next_reminder_ms
        if engine.bars:
            wake = min(wake, engine.bars.next_end() + BAR_GRACE_MS)
        if self._groups:
            edge = _silence_edge(self._groups, engine.market, now_ms)
            if edge <= now_ms:
                return now_ms
            wake = min(wake, edge)
        return max(now_ms, wake)


def _timeless(inst: Instance) -> bool:
    """No timer of the rule's own (an expiry, an `active:` window) moves with the clock."""
    return inst.expires_ms is None and inst.active is None


def _settled(inst: Instance, st: AlertState | None) -> bool:
    """Whether this alert's lifecycle waits for its verdict alone (no timer of its own)."""
    if st is None:
        return True
    if st.flapping:
        return False
    if st.state in ("inactive", "resolved"):
        return True
    if st.state == "firing":
        return st.clearing_since_ms == 0 and inst.policy.repeat_ms <= 0
    return False  # pending: `for:` runs on the clock


def _only_stale_and_still(m: object, stales: list[Stale]) -> bool:
    if isinstance(m, Stale):
        stales.append(m)
        return True
    if isinstance(m, NoDataGuard):
        return m.after_ms is None and _only_stale_and_still(m.inner, stales)
    if isinstance(m, Composite):
        return all(_only_stale_and_still(c, stales) for c in m.children)
    return isinstance(m, _STILL)


def _silence_edge(
    groups: list[tuple[Sessions, int, tuple[str, ...]]], market: Market, now_ms: int
) -> int:
    """The next time any watched input turns silent for its span, or a session opens or
    closes (silence counts only inside one), after `now_ms` (`now_ms`: no bound)."""
    asked: dict[int, tuple[int, int, int | None]] = {}  # per calendar: one look each
    quotes = market.quotes
    first = market.first_ms
    soonest = _FAR
    for sessions, after_ms, symbols in groups:
        seen = asked.get(id(sessions))
        if seen is None:
            try:
                next_open, next_close = sessions.next_edges(now_ms)
            except ValueError:  # beyond the calendar's years: no bound
                return now_ms
            seen = asked[id(sessions)] = (next_open, next_close, sessions.regular_open(now_ms))
        next_open, next_close, opened = seen
        soonest = min(soonest, next_open + after_ms, next_close)  # both after now
        if opened is not None:
            for sym in symbols:
                q = quotes.get(sym)
                e = max(q.ts_ms if q is not None else first, opened) + after_ms
                if now_ms < e < soonest:
                    soonest = e
    return soonest
