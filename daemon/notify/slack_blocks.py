"""Slack message building: pure functions from an `AlertEvent` to a `chat.postMessage` payload.

Kept apart from the transport (`slack.py`) so the layout can be tested without a server and reused
later by `chat.update` (edit on resolve) and thread replies. The wording every channel shares
(number formatting, value-vs-threshold, one-line alerts) is `wording.py`.

Layout: fallback `text` (what notifications and screen readers show), plus one attachment whose
`color` is the severity bar and whose Block Kit blocks hold a header, a fields section, the summary,
a sparkline of the recent series when the alert carries one, and a context line with the alert id
and the provenance (`provenance_text`: the inputs it was judged on, the rule's version).
Follow-ups (reminders, the resolve) are thread replies (`build_reply`); on resolve the parent is
edited in place (`resolved_parent`): same content, green bar, RESOLVED state line. Groups and
digests are one message with a line per alert, most severe first (`build_group`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Final, TypedDict

from daemon.alerts import AlertEvent, Input
from daemon.notify.wording import (
    alert_line,
    clip,
    compare_text,  # re-exported for sms until its import lines move
    format_number,  # re-exported for sms until its import lines move
    format_time_ny,
    labels_text,
    order_alerts,  # re-exported for sms until its import lines move
    state_word,
)

# compare_text, format_number and order_alerts live in wording.py; re-exported for sms until its
# import lines move.
__all__ = [
    "COLORS",
    "RESOLVED_COLOR",
    "SPARK_CHARS",
    "SlackMessage",
    "build_blocks",
    "build_group",
    "build_message",
    "build_reply",
    "compare_text",
    "fallback_text",
    "format_number",
    "order_alerts",
    "parse_series",
    "provenance_text",
    "resolved_parent",
    "severity_color",
    "sparkline",
]

COLORS: Final[dict[str, str]] = {
    "critical": "#D72638",
    "warning": "#F49D37",
    "info": "#3F88C5",
}
RESOLVED_COLOR: Final = "#2E933C"
SPARK_CHARS: Final = "▁▂▃▄▅▆▇█"
_SPARK_WIDTH: Final = 40  # points shown: the latest ones
_GROUP_LINES: Final = 10  # lines listed in a group message before "+N more"
_PROVENANCE_INPUTS: Final = 8  # inputs named in the provenance line before "+N more"

# Slack limits (Block Kit reference): header text 150, section text 3000, field text 2000.
_HEADER_MAX: Final = 150
_SECTION_MAX: Final = 3000
_FIELD_MAX: Final = 2000


class SlackMessage(TypedDict):
    """Keyword arguments for `chat_postMessage`, minus the channel."""

    text: str
    attachments: list[dict[str, Any]]


def severity_color(alert: AlertEvent) -> str:
    """Attachment bar colour: green once resolved, else by severity (unknown → info blue)."""
    if alert.state == "resolved":
        return RESOLVED_COLOR
    return COLORS.get(alert.severity, COLORS["info"])


def _escape(text: str) -> str:
    """Slack mrkdwn needs only `&`, `<`, `>` escaped; anything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fallback_text(alert: AlertEvent) -> str:
    """Plain one-liner for push notifications: `FIRING warning rule: 7.98 below 8.00 — summary`."""
    head = f"{state_word(alert)} {alert.severity} {alert.rule}"
    labels = f" ({labels_text(alert.labels)})" if alert.labels else ""
    cmp = compare_text(alert)
    detail = " — ".join(part for part in (cmp, " ".join(alert.summary.split())) if part)
    return f"{head}{labels}: {detail}" if detail else f"{head}{labels}"


def _field(title: str, body: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(f"*{title}*\n{_escape(body)}", _FIELD_MAX)}


def _labels_text_short(alert: AlertEvent) -> str:
    """Just the symbol when that is the only label (the common case), else `k=v, ...`."""
    if set(alert.labels) == {"symbol"}:
        return alert.labels["symbol"]
    return labels_text(alert.labels)


def parse_series(alert: AlertEvent) -> list[float]:
    """The recent values the engine attached (`values["series"]`, space-separated numbers)."""
    raw = alert.values.get("series")
    if not isinstance(raw, str):
        return []
    out: list[float] = []
    for token in raw.split():
        try:
            x = float(token)
        except ValueError:
            continue
        if math.isfinite(x):
            out.append(x)
    return out


def sparkline(values: Sequence[float], width: int = _SPARK_WIDTH) -> str:
    """`▁▂▄▆█`: one bar per value (the latest `width`), scaled between their low and high."""
    points = list(values)[-width:]
    if len(points) < 2:
        return ""
    lo, hi = min(points), max(points)
    if hi == lo:
        return SPARK_CHARS[3] * len(points)
    top = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((x - lo) / (hi - lo) * top)] for x in points)


def _trend_block(alert: AlertEvent) -> dict[str, Any] | None:
    series = parse_series(alert)[-_SPARK_WIDTH:]
    spark = sparkline(series)
    if not spark:
        return None
    span = f"{format_number(series[0])} → {format_number(series[-1])}"
    text = f"{spark}  {span}  (low {format_number(min(series))}, high {format_number(max(series))})"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(text)}]}


def _input_time(inp: Input, alert: AlertEvent) -> str:
    """`13:53:00 ET`, with the date (`Apr 8 13:53:00 ET`) when it is not the alert's day."""
    t = inp.time_ny
    day = "" if t.date() == alert.time_ny.date() else f"{t:%b} {t.day} "
    return f"{day}{t:%H:%M:%S} ET"


def _input_text(inp: Input, alert: AlertEvent) -> str:
    """`XMAG 27.10 at 13:53:00 ET (alpaca, bar)`; the feed and kind only when known."""
    origin = ", ".join(p for p in (inp.source, inp.kind) if p)
    text = f"{inp.symbol} {format_number(inp.price)} at {_input_time(inp, alert)}"
    return f"{text} ({origin})" if origin else text


def provenance_text(alert: AlertEvent, limit: int = _PROVENANCE_INPUTS) -> str:
    """What the alert was judged on, e.g.
    `judged on XMAG 27.10 at 13:53:00 ET (alpaca, bar) · MAGS 61.20 at ... · rule v3f2a9c1e`.

    Times are New York; at most `limit` inputs are named, then `+N more`. Missing pieces are
    left out: only `rule v…` without inputs, "" when the event carries neither.
    """
    parts = [_input_text(i, alert) for i in alert.inputs[:limit]]
    if len(alert.inputs) > limit:
        parts.append(f"+{len(alert.inputs) - limit} more")
    if parts:
        parts[0] = f"judged on {parts[0]}"
    if alert.rule_version:
        parts.append(f"rule v{alert.rule_version}")
    return " · ".join(parts)


def _id_context(alert: AlertEvent) -> dict[str, Any]:
    """The closing context line: the transition's id, and the provenance when there is one."""
    number = f"#{alert.number} · " if alert.number else ""
    elements = [{"type": "mrkdwn", "text": _escape(f"{number}alert {alert.id}")}]
    provenance = provenance_text(alert)
    if provenance:
        elements.append({"type": "mrkdwn", "text": clip(_escape(provenance), _SECTION_MAX)})
    return {"type": "context", "elements": elements}


def build_blocks(alert: AlertEvent) -> list[dict[str, Any]]:
    """Header, a fields section (rule, labels, value, severity, NY time), summary, trend, id."""
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
                "text": clip(f"{state_word(alert)}: {alert.rule}", _HEADER_MAX),
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
                "text": {"type": "mrkdwn", "text": clip(_escape(summary), _SECTION_MAX)},
            }
        )
    trend = _trend_block(alert)
    if trend is not None:
        blocks.append(trend)
    blocks.append(_id_context(alert))
    return blocks


def build_message(alert: AlertEvent) -> SlackMessage:
    """The full payload: fallback `text` plus one coloured attachment holding the blocks."""
    return {
        "text": fallback_text(alert),
        "attachments": [{"color": severity_color(alert), "blocks": build_blocks(alert)}],
    }


def _when(alert: AlertEvent) -> str:
    return f"{alert.time_ny:%H:%M:%S %Z}"


def build_reply(alert: AlertEvent) -> SlackMessage:
    """A thread reply under the first message: a reminder that it still fires, or the resolve."""
    if alert.state == "resolved":
        head = f"*RESOLVED* at {_when(alert)}"
    elif alert.repeat:
        head = f"*Still firing* at {_when(alert)} (reminder {alert.repeat})"
    else:
        head = f"*FIRING* at {_when(alert)}"
    cmp = compare_text(alert)
    lines = [head + (f" · {_escape(cmp)}" if cmp else "")]
    summary = alert.summary.strip()
    if summary:
        lines.append(_escape(summary))
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip("\n".join(lines), _SECTION_MAX)},
        }
    ]
    trend = _trend_block(alert)
    if trend is not None:
        blocks.append(trend)
    # the transition's id and provenance, as on the first message: traceable in logs and in
    # dead letters
    blocks.append(_id_context(alert))
    return {
        "text": fallback_text(alert),
        "attachments": [{"color": severity_color(alert), "blocks": blocks}],
    }


def resolved_parent(alert: AlertEvent, parent_blocks: list[dict[str, Any]] | None) -> SlackMessage:
    """The first message edited for the resolve: its content kept, green, state line RESOLVED.

    `parent_blocks` are the blocks it was posted with (kept in the receipt); without them the
    message is rebuilt from the resolve event.
    """
    if not parent_blocks:
        return build_message(alert)
    # its content kept; the desk's buttons go (nothing left to acknowledge)
    blocks = [copy.deepcopy(b) for b in parent_blocks if b.get("type") != "actions"]
    header = blocks[0] if blocks and blocks[0].get("type") == "header" else None
    if header is not None:
        text = str(header["text"]["text"])
        rest = text.split(": ", 1)[1] if ": " in text else alert.rule
        header["text"]["text"] = clip(f"RESOLVED: {rest}", _HEADER_MAX)
    cmp = compare_text(alert)
    note = f"Resolved at {format_time_ny(alert)}" + (f" · {cmp}" if cmp else "")
    blocks.insert(
        len(blocks) - 1 if blocks and blocks[-1].get("type") == "context" else len(blocks),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(note)}]},
    )
    return {
        "text": fallback_text(alert),
        "attachments": [{"color": RESOLVED_COLOR, "blocks": blocks}],
    }


def _mrkdwn_line(alert: AlertEvent) -> str:
    """`alert_line` as a Slack list item: a bullet, the state in bold, the rest escaped."""
    state = state_word(alert)
    return f"• *{state}* {_escape(alert_line(alert).removeprefix(state + ' '))}"


def build_group(
    alerts: Sequence[AlertEvent], *, title: str = "", limit: int = _GROUP_LINES
) -> SlackMessage:
    """Several alerts in one message: a line each, most pressing first, then `+N more`."""
    ordered = order_alerts(alerts)
    shown, rest = ordered[:limit], len(ordered) - limit
    lines = [_mrkdwn_line(a) for a in shown]
    if rest > 0:
        lines.append(f"+{rest} more")
    firing = [a for a in ordered if a.state == "firing"]
    color = severity_color(firing[0]) if firing else RESOLVED_COLOR
    heading = title or f"{len(ordered)} alerts"
    counts = f"{len(firing)} firing, {len(ordered) - len(firing)} resolved"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(heading, _HEADER_MAX), "emoji": False},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": clip("\n".join(lines), _SECTION_MAX)},
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": counts}]},
    ]
    top = alert_line(ordered[0]) if ordered else ""
    text = f"{heading} ({counts})" + (f": {top}" if top else "")
    return {"text": text, "attachments": [{"color": color, "blocks": blocks}]}
