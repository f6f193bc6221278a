"""What an edit changes: two backtests of the same data, transition by transition.

Transitions of one alert and state (rule, key, firing or resolved) told at the same time in
both runs are unchanged; the others are paired in time order, the n-th left before the edit
with the n-th left after (it moved, by how much is shown); what has no partner was added or
removed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from daemon.alerts import NEW_YORK, AlertEvent
from daemon.backtest.model import BacktestResult
from daemon.events import ms_to_dt

__all__ = ["Comparison", "compare", "render_compare"]


@dataclass
class Comparison:
    added: list[AlertEvent] = field(default_factory=list)
    removed: list[AlertEvent] = field(default_factory=list)
    #: (before, after) pairs whose times differ.
    moved: list[tuple[AlertEvent, AlertEvent]] = field(default_factory=list)
    unchanged: int = 0


def compare(before: BacktestResult, after: BacktestResult) -> Comparison:
    def by_alert(r: BacktestResult) -> dict[tuple[str, str, str], list[AlertEvent]]:
        out: dict[tuple[str, str, str], list[AlertEvent]] = defaultdict(list)
        for a in r.alerts:
            if not a.repeat:
                out[(a.rule, a.key, a.state)].append(a)
        return out

    old, new = by_alert(before), by_alert(after)
    c = Comparison()
    for k in old.keys() | new.keys():
        a, b = old.get(k, []), new.get(k, [])
        same = {x.ts_ms for x in a} & {y.ts_ms for y in b}  # unchanged: told at the same time
        c.unchanged += len(same)
        a = [x for x in a if x.ts_ms not in same]
        b = [y for y in b if y.ts_ms not in same]
        c.moved += zip(a, b, strict=False)  # the rest, in order: told earlier or later
        c.removed += a[len(b) :]
        c.added += b[len(a) :]
    c.added.sort(key=lambda a: a.ts_ms)
    c.removed.sort(key=lambda a: a.ts_ms)
    c.moved.sort(key=lambda p: p[0].ts_ms)
    return c


def _t(ms: int) -> str:
    return ms_to_dt(ms).astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")


def render_compare(c: Comparison, console: Console, limit: int = 30) -> None:
    console.print(
        f"what the edit changes: {len(c.added)} added, {len(c.removed)} removed, "
        f"{len(c.moved)} moved, {c.unchanged} unchanged",
        highlight=False,
    )
    if not (c.added or c.removed or c.moved):
        return
    t = Table("change", "rule", "alert", "state", "time (New York)", "value")
    rows: list[tuple[str, AlertEvent, str]] = [("added", a, _t(a.ts_ms)) for a in c.added]
    rows += [("removed", a, _t(a.ts_ms)) for a in c.removed]
    for x, y in c.moved:
        shift = (y.ts_ms - x.ts_ms) / 60_000
        rows.append(("moved", y, f"{_t(x.ts_ms)} -> {_t(y.ts_ms)} ({shift:+.0f} min)"))
    for what, a, when in rows[:limit]:
        value = "" if a.value is None else f"{a.value:.4g}"
        t.add_row(what, a.rule, a.key, a.state, when, value)
    console.print(t)
    if len(rows) > limit:
        console.print(f"... and {len(rows) - limit} more (all in alerts.csv of each run)")
