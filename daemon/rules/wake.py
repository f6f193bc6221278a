"""When, at the earliest, can the clock alone change anything? Pure, read-only.

The daemon steps its clock every 5 s (`CLOCK_EVERY_MS`) whatever happens, which is cheap live
and ruinous on simulated time: a year is 6.3 million steps, 60 s of a backtest's 10 s budget.
A simulation asks `quiet_until` instead and steps only the 5 s grid points from the one it
names on; the steps it skips are provably idle (they would have told nothing and changed no
state), so what it tells, and when, is what stepping every 5 s tells (tests/test_wake.py runs
both on the same data).

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
    from daemon.rules.compile import Instance
    from daemon.rules.evaluate import Engine
    from daemon.rules.market import Market
    from daemon.rules.sessions import Sessions

__all__ = ["quiet_until"]

#: Leaves whose verdict moves only with prices (a tick), never with time alone.
_STILL = (Threshold, Spread, Crosses, Band)


def quiet_until(engine: Engine, now_ms: int, next_reminder_ms: int | None) -> int:
    """The earliest time after `now_ms` at which a clock step could tell or change anything
    (`now_ms` itself when that cannot be bounded)."""
    plan = engine.plan
    wake = [t for t in (next_reminder_ms,) if t is not None]
    if engine.bars:
        wake.append(engine.bars.next_end() + BAR_GRACE_MS)
    market = engine.market
    for inst in plan.clock_instances:
        if not _settled(inst, engine.states.get(inst.key)):
            return now_ms
        stales: list[Stale] = []
        if not _only_stale_and_still(inst.cond, stales):
            return now_ms
        for s in stales:
            wake.append(_silence_edge(s.sessions, market, (s.symbol,), s.after_ms, now_ms))
    for inst, guard in plan.silence_watch:
        if not _settled(inst, engine.states.get(inst.key)) or guard.after_ms is None:
            return now_ms
        wake.append(_silence_edge(guard.sessions, market, guard.symbols, guard.after_ms, now_ms))
    return max(now_ms, min(wake)) if wake else _FAR


_FAR = 2**62


def _settled(inst: Instance, st: AlertState | None) -> bool:
    """Whether this alert's lifecycle waits for its verdict alone (no timer of its own)."""
    if inst.expires_ms is not None or inst.active is not None:
        return False
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
    sessions: Sessions, market: Market, symbols: tuple[str, ...], after_ms: int, now_ms: int
) -> int:
    """The next time any of `symbols` turns silent for `after_ms`, or the session closes
    (where silence stops counting), after `now_ms`."""
    try:
        next_open, next_close = sessions.next_edges(now_ms)
    except ValueError:  # beyond the calendar's years: no bound
        return now_ms
    edges = [next_open + after_ms, next_close]
    opened = sessions.regular_open(now_ms)
    if opened is not None:
        for sym in symbols:
            q = market.quotes.get(sym)
            last = max(q.ts_ms if q is not None else market.first_ms, opened)
            edges.append(last + after_ms)
    later = [e for e in edges if e > now_ms]
    return min(later) if later else now_ms
