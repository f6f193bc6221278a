"""Running a rule test: its events in feed order through the daemon's own `Driver`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from daemon.alerts import AlertEvent
from daemon.events import EarningsEvent, Headline, Tick
from daemon.rules import Driver, Plan, simulate
from daemon.ruletests.diff import CaseResult, Expected, compare
from daemon.ruletests.notation import _at_ms, _ms
from daemon.ruletests.schema import CaseSpec

__all__ = ["Case", "Suite", "build_events", "run_case", "run_suite"]


@dataclass(slots=True)
class Case:
    """One test, ready to run: the events to feed and the transitions to expect."""

    name: str
    file: str
    line: int
    start_ms: int
    events: list[Tick | Headline]
    expected: list[Expected]
    #: (symbol, anchor date) -> price, set on the engine's market before the first event.
    anchors: dict[tuple[str, dt.date], float] = field(default_factory=dict)
    #: The rules compiled with this test's own earnings calendar, when it gives one.
    plan: Plan | None = None
    earnings: list[EarningsEvent] = field(default_factory=list)
    #: Time-driven rules (reminders) are due up to here.
    end_ms: int = 0


@dataclass(slots=True)
class Suite:
    """One test file: the compiled rules under test and its cases."""

    file: str
    plan: Plan
    cases: list[Case]


def build_events(
    spec: CaseSpec, start_ms: int, file: str = "", index: int = 0
) -> list[Tick | Headline]:
    """The ticks and headlines of one test in feed order (see `daemon.ruletests` for the order)."""
    step_ms = _ms(spec.interval)
    keyed: list[tuple[int, int, int, Tick | Headline]] = []
    seq = 0
    steps = max((len(v) for v in spec.input_series.values()), default=0)
    for i in range(steps):
        ts = start_ms + i * step_ms
        for sym, values in spec.input_series.items():
            price = values[i] if i < len(values) else None
            if price is not None:
                keyed.append((ts, 0, seq, Tick(sym, ts, price, source="test")))
                seq += 1
    for j, h in enumerate(spec.headlines):
        ts = _at_ms(h.at, start_ms)
        headline = Headline(
            id=h.id or f"{Path(file).stem or 'test'}-{index}-{j}",
            ts_ms=ts,
            title=h.title,
            summary=h.summary,
            symbols=tuple(h.symbols),
            source=h.source,
            url=h.url,
            sentiment=h.sentiment,
            ticker_sentiment=dict(h.ticker_sentiment),
        )
        keyed.append((ts, 1, seq, headline))
        seq += 1
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def run_case(plan: Plan, case: Case) -> list[AlertEvent]:
    """Run one test's events through a fresh `Driver` over `plan` on simulated time, from the
    start to the end: every transition it tells, reminders and clock-driven ones included."""
    plan = case.plan or plan
    driver = Driver(plan, reminders_after_ms=case.start_ms - 1)
    driver.engine.market.anchors.prices.update(case.anchors)
    out = simulate(driver, case.events, start_ms=case.start_ms, until_ms=case.end_ms)
    out.sort(key=lambda a: a.ts_ms)  # stable: same-instant order from the driver is kept
    return out


def run_suite(suite: Suite) -> list[CaseResult]:
    """Run every case of a suite on a fresh engine each; pure apart from the engine's work."""
    results = []
    for c in suite.cases:
        got = run_case(suite.plan, c)
        diff = compare(c.expected, got)
        results.append(CaseResult(c.file, c.name, c.line, c.start_ms, diff, c.expected))
    return results
