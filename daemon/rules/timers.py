"""Time-driven rules: when each earnings reminder is due, and the alert it sends. Pure.

Tick-driven rules wait for data; a reminder must go out at 18:00 the evening before a report
whether or not anything trades. The daemon schedules each computed `Timer` as an APScheduler
date job. A reminder's alert id depends only on (rule, symbol, report date, reminder), so a job
that runs twice (a restart, two replicas) is delivered once: the dispatcher dedups on the id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from daemon.alerts import NEW_YORK, AlertEvent, Severity, alert_key
from daemon.events import EarningsEvent
from daemon.rules.message import render
from daemon.rules.schema import Reminder

__all__ = ["ReminderRule", "Timer", "due_at", "timers_after"]


@dataclass(frozen=True, slots=True)
class ReminderRule:
    rule: str
    symbols: tuple[str, ...]
    reminders: tuple[Reminder, ...]
    labels: dict[str, str]
    severity: Severity
    template: str
    channels: tuple[str, ...]
    templates: dict[str, str] = field(default_factory=dict)
    version: str = ""


@dataclass(frozen=True, slots=True)
class Timer:
    fire_ms: int
    rule: ReminderRule
    event: EarningsEvent
    index: int  # which reminder of the rule: part of the alert's identity

    @property
    def job_id(self) -> str:
        return f"timer:{self.rule.rule}:{self.event.symbol}:{self.event.date}:{self.index}"

    def alert(self) -> AlertEvent:
        ev = self.event
        labels = {"symbol": ev.symbol, "report": ev.date.isoformat()}
        report_at = dt.datetime.fromtimestamp(ev.market_ms / 1000, NEW_YORK)
        lead_min = round((ev.market_ms - self.fire_ms) / 60_000)
        lead = (
            f"in {lead_min} min" if lead_min < 120
            else f"in {lead_min // 60} h" if lead_min < 36 * 60
            else f"in {round(lead_min / 1440)} days"
        )  # fmt: skip
        values: dict[str, float | str] = {
            "symbol": ev.symbol,
            "report_date": ev.date.isoformat(),
            "when_text": ev.when_text,
            "report_time": report_at.strftime("%a %b %d %H:%M ET"),
            "lead": lead,
            "note": ev.note,
        }
        ctx: dict[str, object] = {**values, "rule": self.rule.rule,
                                  "severity": self.rule.severity, "state": "firing"}  # fmt: skip
        return AlertEvent(
            rule=self.rule.rule,
            key=alert_key(self.rule.rule, labels),
            state="firing",
            seq=self.index + 1,
            ts_ms=self.fire_ms,
            severity=self.rule.severity,
            summary=render(self.rule.template, ctx),
            channels=self.rule.channels,
            labels={**self.rule.labels, **labels},
            comparison="reminder",
            values=values,
            templates=self.rule.templates,
            resolves=False,
            rule_version=self.rule.version,
        )


def due_at(reminder: Reminder, event: EarningsEvent) -> int:
    """Epoch ms at which `reminder` fires for `event`."""
    if reminder.before is not None:
        return event.market_ms - int(reminder.before.total_seconds() * 1000)
    assert reminder.days_before is not None and reminder.at is not None
    day = event.date - dt.timedelta(days=reminder.days_before)
    hh, mm = (int(x) for x in reminder.at.split(":"))
    return int(dt.datetime.combine(day, dt.time(hh, mm), NEW_YORK).timestamp() * 1000)


def timers_after(
    rules: list[ReminderRule], events: list[EarningsEvent], after_ms: int
) -> list[Timer]:
    """Every reminder still to come after `after_ms`, in time order."""
    out = [
        Timer(due_at(rem, ev), rule, ev, i)
        for rule in rules
        for ev in events
        if ev.symbol in rule.symbols
        for i, rem in enumerate(rule.reminders)
    ]
    return sorted((t for t in out if t.fire_ms > after_ms), key=lambda t: t.fire_ms)
