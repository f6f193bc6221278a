"""How every channel words an alert: numbers, New York times, value-vs-threshold, one-line alerts.

Shared by the Slack, console, SMS and Apprise channels and the message templates, so they all say
the same thing in the same words. Slack's Block Kit layout is `slack_blocks.py`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Final

from daemon.alerts import AlertEvent

__all__ = [
    "alert_line",
    "clip",
    "compare_text",
    "format_number",
    "format_time_ny",
    "labels_text",
    "order_alerts",
    "state_word",
]

_SEVERITY_RANK: Final[dict[str, int]] = {"critical": 0, "warning": 1, "info": 2}
_LINE_MAX: Final = 280

# Spellings a rule may use for its comparison, mapped to one canonical operator.
_CANONICAL: Final[dict[str, str]] = {
    "<": "<",
    "lt": "<",
    "below": "<",
    "less_than": "<",
    "crosses_below": "<",
    "crossed_below": "<",
    "<=": "<=",
    "le": "<=",
    "lte": "<=",
    "at_or_below": "<=",
    ">": ">",
    "gt": ">",
    "above": ">",
    "greater_than": ">",
    "crosses_above": ">",
    "crossed_above": ">",
    ">=": ">=",
    "ge": ">=",
    "gte": ">=",
    "at_or_above": ">=",
    "==": "==",
    "=": "==",
    "eq": "==",
    "!=": "!=",
    "ne": "!=",
}
_WORD: Final[dict[str, str]] = {
    "<": "below",
    "<=": "at or below",
    ">": "above",
    ">=": "at or above",
    "==": "at",
    "!=": "not at",
}
_SYMBOL: Final[dict[str, str]] = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "!=": "!="}
_NEGATED: Final[dict[str, str]] = {
    "<": ">=",
    "<=": ">",
    ">": "<=",
    ">=": "<",
    "==": "!=",
    "!=": "==",
}
_TEST: Final[dict[str, Callable[[float, float], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def format_number(x: float) -> str:
    """Two decimals for prices and spreads (`7.98`, `1,234.50`); 4 significant digits below 1."""
    if x == 0 or abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.4g}"


def format_time_ny(alert: AlertEvent) -> str:
    """`Thu Apr 9 2026 13:47:00 EDT`: New York time, day without padding, zone abbreviation."""
    t: datetime = alert.time_ny
    return f"{t:%a %b} {t.day} {t:%Y %H:%M:%S %Z}"


def compare_text(
    alert: AlertEvent,
    *,
    symbols: bool = False,
    fmt: Callable[[float], str] = format_number,
) -> str:
    """Value against threshold, e.g. `7.98 below 8.00` (or `7.98 < 8.00` with `symbols`).

    The comparison is taken from the event. When the numbers contradict it (a resolve event that
    still carries the firing rule's `below`), the true relation is shown instead (`8.12 at or
    above 8.00`), so a message never states something false. Empty when the event has no value.
    """
    if alert.value is None:
        return ""
    value = fmt(alert.value)
    if alert.threshold is None:
        return value
    threshold = fmt(alert.threshold)
    raw = alert.comparison.strip()
    op = _CANONICAL.get(raw.lower().replace(" ", "_").replace("-", "_"))
    if op is None:
        relation = raw.replace("_", " ") if raw else "vs"
        return f"{value} {relation} {threshold}"
    if not _TEST[op](alert.value, alert.threshold):
        op = _NEGATED[op]
    relation = _SYMBOL[op] if symbols else _WORD[op]
    return f"{value} {relation} {threshold}"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def labels_text(labels: dict[str, str]) -> str:
    if not labels:
        return "none"
    return ", ".join(f"{k}={labels[k]}" for k in sorted(labels))


def state_word(alert: AlertEvent) -> str:
    return "RESOLVED" if alert.state == "resolved" else "FIRING"


def order_alerts(alerts: Iterable[AlertEvent]) -> list[AlertEvent]:
    """Most pressing first: firing before resolved, then by severity, then newest."""
    return sorted(
        alerts,
        key=lambda a: (a.state == "resolved", _SEVERITY_RANK.get(a.severity, 3), -a.ts_ms),
    )


def _subject(alert: AlertEvent) -> str:
    """What the alert is about in a few characters: the symbol, else the labels, else nothing."""
    if set(alert.labels) == {"symbol"}:
        return alert.labels["symbol"]
    return labels_text(alert.labels) if alert.labels else ""


def alert_line(alert: AlertEvent) -> str:
    """One alert on one line: `FIRING critical big-move NVDA: -5.20 below -5.00 — summary`."""
    state = state_word(alert)
    subject = _subject(alert)
    head = f"{state} {alert.severity} {alert.rule}" + (f" {subject}" if subject else "")
    detail = " — ".join(p for p in (compare_text(alert), " ".join(alert.summary.split())) if p)
    return clip(f"{head}: {detail}" if detail else head, _LINE_MAX)
