"""A backtest: history through the daemon's own judgement and delivery decisions, on simulated
time. No Redis, no network, nothing sent.

The pieces are the live daemon's: the config loader and compiled plan, `Driver` (event-time
steps, aligned legs, bar closes, staleness, reminders) run by `simulate` with the clock on the
daemon's 5 s grid, and `Dispatcher` (route tree, inhibition, quiet hours, grouping) for what
each channel would have got. What is not the daemon's: silences (they are made at run time
by people) and delivery itself (caps, retries, failures).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from daemon.alerts import AlertEvent
from daemon.backtest.data import History
from daemon.backtest.model import BacktestResult, Message, Series, Suppressed
from daemon.config import Config
from daemon.events import Headline, Tick
from daemon.notify import Dispatcher, Inhibitor, MarketContext, compile_routes
from daemon.rules import Composite, Driver, Instance, NoDataGuard, Plan, simulate

__all__ = ["BacktestError", "run_backtest", "select_rules"]

#: Points per series on a chart, about: a 1,200-pixel chart shows no more.
CHART_POINTS = 2_000
#: Sampling when the range is open-ended: a year of sessions is then ~6,500 points a series.
SAMPLE_MS = 15 * 60_000


class BacktestError(Exception):
    """The backtest cannot run as asked; the message says what to change."""


def select_rules(cfg: Config, names: Sequence[str] | None) -> list[str]:
    """The rules to try: all, or those named (an unknown name is an error that suggests)."""
    known = [lr.rule.name for lr in cfg.rules if lr.rule.enabled]
    if not names:
        return known
    for n in names:
        if n not in known:
            close = difflib.get_close_matches(n, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BacktestError(f"no enabled rule named {n!r}{hint}; rules: {', '.join(known)}")
    return [n for n in known if n in set(names)]


@dataclass
class _Sampler:
    """What each instance judged, sampled every `every_ms` of event time and at transitions."""

    plan: Plan
    driver: Driver
    every_ms: int

    def __post_init__(self) -> None:
        self.series: dict[str, Series] = {}
        self._next: dict[str, int] = {}
        for inst in self.plan.instances:
            self.series[inst.key] = Series(inst.rule, inst.key, _label(inst), note=_note(inst))
        #: no instance is due before this (once each symbol has ticked): most steps return at once
        self._due = 0
        #: symbols read by a rule that have not ticked yet (their instances are due at once)
        self._unseen = set(self.plan.by_symbol)

    def on_step(self, st: Sequence[Tick] | Headline, told: list[AlertEvent]) -> None:
        if isinstance(st, Headline):
            return
        ts = st[0].ts_ms
        unseen = self._unseen
        if not told and ts < self._due and not (unseen and any(t.symbol in unseen for t in st)):
            return
        market = self.driver.engine.market
        by_symbol = self.plan.by_symbol
        told_keys = {a.key for a in told}
        seen: set[str] = set()
        for t in st:
            unseen.discard(t.symbol)
            for inst in by_symbol.get(t.symbol, ()):
                key = inst.key
                if key in seen or (ts < self._next.get(key, 0) and key not in told_keys):
                    continue
                seen.add(key)
                self._next[key] = ts + self.every_ms
                if inst.warms:  # an expression's reading moves its rolling state: values only
                    continue  # at transitions, below
                self._sample(inst, market, ts)
        if seen:
            self._due = min(self._next.values())
        for a in told:
            s = self.series.get(a.key)
            if s is not None and a.value is not None and (not s.ts_ms or s.ts_ms[-1] != a.ts_ms):
                s.ts_ms.append(a.ts_ms)
                s.values.append(a.value)

    def _sample(self, inst: Instance, market: object, ts: int) -> None:
        try:
            r = inst.cond.explain(market, ts)  # type: ignore[arg-type]
        except Exception:  # a rule that fails to evaluate has nothing to chart here
            return
        if r is None or r.value != r.value:  # no reading, or NaN (no data)
            return
        s = self.series[inst.key]
        s.ts_ms.append(ts)
        s.values.append(float(r.value))
        if r.threshold is not None:
            s.threshold, s.comparison = r.threshold, r.comparison
            check = getattr(inst.cond, "check", None)
            s.clear = getattr(check, "clear", None)


def _judged(inst: Instance) -> object:
    """The rule's own condition, without its `on_no_data` wrapper."""
    return inst.cond.inner if isinstance(inst.cond, NoDataGuard) else inst.cond


def _label(inst: Instance) -> str:
    cond = _judged(inst)
    while isinstance(cond, Composite) and cond.children:  # its value is its first part's
        cond = cond.children[0]
    kind = getattr(cond, "kind", "value")
    syms = " / ".join(getattr(inst.cond, "symbols", ()) or ())
    return f"{kind} {syms}".strip()


def _note(inst: Instance) -> str:
    """For a rule of several conditions: which one the line is, and when the rule fires."""
    cond = _judged(inst)
    if not isinstance(cond, Composite) or not cond.children:
        return ""
    kinds = [getattr(c, "kind", "value") for c in cond.children]
    if cond.op == "not":
        return f"the line is {kinds[0]}; the rule fires when it does not hold"
    rest = ", ".join(kinds)
    if cond.op == "all":
        return f"the line is {kinds[0]}; the rule fires only when all of {rest} hold"
    return f"the line is {kinds[0]}; the rule fires when any of {rest} holds"


def run_backtest(
    cfg: Config,
    history: History,
    *,
    rules: Sequence[str] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Try `rules` (default: every enabled rule) on `history`. `on_progress(rows_read)` is
    called now and then (a progress bar)."""
    names = select_rules(cfg, rules)
    chosen = set(names)
    plan = cfg.compile(lr.rule for lr in cfg.rules if lr.rule.name in chosen)
    start_ms = start_ms if start_ms is not None else history.start_ms
    end_ms = end_ms if end_ms is not None else history.end_ms
    driver = Driver(plan, reminders_after_ms=start_ms)
    span = (end_ms - start_ms) if start_ms is not None and end_ms is not None else 0
    sampler = _Sampler(plan, driver, max(60_000, span // CHART_POINTS) if span else SAMPLE_MS)
    alerts = simulate(
        driver,
        _with_progress(history, on_progress),
        start_ms=start_ms,  # None: the clock starts with the data and ends with it
        until_ms=None if end_ms is None else end_ms - 1,
        ordered=True,
        on_step=sampler.on_step,
    )
    if history.judged == 0 and history.headlines == 0:
        raise BacktestError(_empty(history, start_ms, end_ms))
    first = start_ms if start_ms is not None else history.first_ms or 0
    last = end_ms if end_ms is not None else history.last_ms or first
    result = BacktestResult(
        start_ms=first,
        end_ms=last,
        rules=names,
        alerts=alerts,
        series=[s for s in sampler.series.values() if s.ts_ms],
        ticks=history.ticks,
        headlines=history.headlines,
        ignored=history.ignored,
        inputs=[str(f.path) for f in history.files],
    )
    _deliver(cfg, alerts, result, last)
    return result


def _with_progress(
    history: History, on_progress: Callable[[int], None] | None
) -> Iterator[Tick | Headline]:
    if on_progress is None:
        yield from history
        return
    for n, ev in enumerate(history, 1):
        if n % 20_000 == 0:
            on_progress(history.rows_read)
        yield ev
    on_progress(history.rows_read)


def _empty(history: History, start_ms: int | None, end_ms: int | None) -> str:
    files = ", ".join(str(f.path) for f in history.files)
    if start_ms is not None or end_ms is not None:
        return f"no data in the range asked for in {files}; widen --from/--to"
    return f"no usable rows in {files} ({history.refused_count} refused)"


def _deliver(cfg: Config, alerts: list[AlertEvent], result: BacktestResult, end_ms: int) -> None:
    """Each transition through the daemon's delivery decisions at its own event time, group
    messages when their time comes (up to a day after the data ends)."""
    s = cfg.settings
    d = Dispatcher(
        compile_routes(s.route),
        Inhibitor(s.inhibit_rules),
        s.channels,
        cfg.delivery.max_alert_age_ms,
        MarketContext(cfg.earnings),  # sessions and earnings at each alert's simulated time
    )
    for a in sorted(alerts, key=lambda a: a.ts_ms):
        _flush(d, a.ts_ms, result)
        r = d.route(a, a.ts_ms, born_ms=a.ts_ms)
        for n in r.singles:
            result.messages.append(Message(n.channel, a.ts_ms, n.kind, (a.id,), (a.rule,)))
        for dec in r.held:
            result.suppressed.append(Suppressed(dec.channel, a.id, a.rule, dec.outcome, dec.why))
    _flush(d, end_ms + 86_400_000, result)


def _flush(d: Dispatcher, upto: int, result: BacktestResult) -> None:
    while (due := d.next_due_ms()) is not None and due <= upto:
        for _group, n in d.flush(due):
            result.messages.append(
                Message(
                    n.channel,
                    due,
                    n.kind,
                    tuple(a.id for a in n.alerts),
                    tuple(dict.fromkeys(a.rule for a in n.alerts)),
                )
            )
