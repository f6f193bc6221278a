"""Slack message building: pure functions from an `AlertEvent` to a `chat.postMessage` payload.

Kept apart from the transport (`slack.py`) so the layout can be tested without a server and reused
later by `chat.update` (edit on resolve) and thread replies. The value-vs-threshold wording and
number formatting live here too and are shared with the console and SMS channels, so all three say
the same thing in the same words.

Layout: fallback `text` (what notifications and screen readers show), plus one attachment whose
`color` is the severity bar and whose Block Kit blocks hold a header, a fields section, the summary
and a context line with the alert id.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, TypedDict

from daemon.alerts import AlertEvent

__all__ = [
    "COLORS",
    "RESOLVED_COLOR",
    "SlackMessage",
    "build_blocks",
    "build_message",
    "compare_text",
    "fallback_text",
    "format_number",
    "format_time_ny",
    "severity_color",
]

COLORS: Final[dict[str, str]] = {
    "critical": "#D72638",
    "warning": "#F49D37",
    "info": "#3F88C5",
}
RESOLVED_COLOR: Final = "#2E933C"

# Slack limits (Block Kit reference): header text 150, section text 3000, field text 2000.
_HEADER_MAX: Final = 150
_SECTION_MAX: Final = 3000
_FIELD_MAX: Final = 2000

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


class SlackMessage(TypedDict):
    """Keyword arguments for `chat_postMessage`, minus the channel."""

    text: str
    attachments: list[dict[str, Any]]


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


def severity_color(alert: AlertEvent) -> str:
    """Attachment bar colour: green once resolved, else by severity (unknown → info blue)."""
    if alert.state == "resolved":
        return RESOLVED_COLOR
    return COLORS.get(alert.severity, COLORS["info"])


def _escape(text: str) -> str:
    """Slack mrkdwn needs only `&`, `<`, `>` escaped; anything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _labels_text(labels: dict[str, str]) -> str:
    if not labels:
        return "none"
    return ", ".join(f"{k}={labels[k]}" for k in sorted(labels))


def _state_word(alert: AlertEvent) -> str:
    return "RESOLVED" if alert.state == "resolved" else "FIRING"


def fallback_text(alert: AlertEvent) -> str:
    """Plain one-liner for push notifications: `FIRING warning rule: 7.98 below 8.00 — summary`."""
    head = f"{_state_word(alert)} {alert.severity} {alert.rule}"
    labels = f" ({_labels_text(alert.labels)})" if alert.labels else ""
    cmp = compare_text(alert)
    detail = " — ".join(part for part in (cmp, " ".join(alert.summary.split())) if part)
    return f"{head}{labels}: {detail}" if detail else f"{head}{labels}"


def _field(title: str, body: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _clip(f"*{title}*\n{_escape(body)}", _FIELD_MAX)}


def _labels_text_short(alert: AlertEvent) -> str:
    """Just the symbol when that is the only label (the common case), else `k=v, ...`."""
    if set(alert.labels) == {"symbol"}:
        return alert.labels["symbol"]
    return _labels_text(alert.labels)


def build_blocks(alert: AlertEvent) -> list[dict[str, Any]]:
    """Header, a fields section (rule, labels, value, severity, NY time), summary, context id."""
    cmp = compare_text(alert)
    fields = [
        _field("Rule", alert.rule),
        _field(
            "Symbol" if set(alert.labels) == {"symbol"} else "Labels", _labels_text_short(alert)
        ),
        _field("Value", cmp or "n/a"),
        _field("Severity", alert.severity),
        _field("Time (New York)", format_time_ny(alert)),
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _clip(f"{_state_word(alert)}: {alert.rule}", _HEADER_MAX),
                "emoji": False,
            },
        },
        {"type": "section", "fields": fields},
    ]
    summary = alert.summary.strip()
    if summary:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(_escape(summary), _SECTION_MAX)},
            }
        )
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(f"alert {alert.id}")}]}
    )
    return blocks


def build_message(alert: AlertEvent) -> SlackMessage:
    """The full payload: fallback `text` plus one coloured attachment holding the blocks."""
    return {
        "text": fallback_text(alert),
        "attachments": [{"color": severity_color(alert), "blocks": build_blocks(alert)}],
    }
