"""SMS message composition: an alert, a group or a notice as one text within its segment budget.

The state, severity, rule, value and time always survive; the summary gives way ("...").
Provenance comes last and only in room the alert text leaves: `(XMAG 27.10@13:53 MAGS
61.20@13:53 v3f2a9c1e)`, fewer inputs (`+1`) or just the rule version when space is short,
nothing when none is left. It never adds a segment to the bill (round brackets: `[` and `]`
cost two septets each).
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.alerts import AlertEvent, Input
from daemon.notify.slack_blocks import compare_text, format_number, order_alerts
from daemon.notify.sms_segments import (
    Encoding,
    _as_gsm7,
    _as_ucs2,
    _fit,
    _units,
    encoding_of,
    segment_budget,
    segments,
)


class _Composer:
    """Puts parts into one message of a fixed budget, in the one encoding they all fit."""

    def __init__(self, parts: Sequence[str], max_segments: int):
        gsm = [_as_gsm7(p) for p in parts]
        if all(g is not None for g in gsm):
            self.encoding: Encoding = "GSM-7"
            self.parts = [g or "" for g in gsm]
        else:
            self.encoding = "UCS-2"
            self.parts = [_as_ucs2(p) for p in parts]
        self.budget = segment_budget(self.encoding, max_segments)

    def units(self, text: str) -> int:
        return _units(text, self.encoding)

    def fit(self, text: str, budget: int) -> str:
        return _fit(text, budget, self.encoding)


def _state_word(alert: AlertEvent) -> str:
    if alert.state == "resolved":
        return "RESOLVED"
    return "STILL FIRING" if alert.repeat else "FIRING"


def _input_compact(inp: Input, alert: AlertEvent) -> str:
    """`XMAG 27.10@13:53` (New York time), `@4/8 13:53` when not on the alert's day."""
    t = inp.time_ny
    day = "" if t.date() == alert.time_ny.date() else f"{t.month}/{t.day} "
    return f"{inp.symbol} {format_number(inp.price)}@{day}{t:%H:%M}"


def sms_provenance(alert: AlertEvent, room: int | None = None, encoding: Encoding = "GSM-7") -> str:
    """`(XMAG 27.10@13:53 MAGS 61.20@13:53 v3f2a9c1e)` in at most `room` units ("" if none fit).

    When the whole does not fit, the last inputs give way to a count (`+1`), then all of them,
    leaving the rule version; "" when the event carries no provenance or nothing fits.
    """
    items = [_input_compact(i, alert) for i in alert.inputs]
    version = [f"v{alert.rule_version}"] if alert.rule_version else []
    for shown in range(len(items), -1, -1):
        hidden = len(items) - shown
        words = [*items[:shown], *([f"+{hidden}"] if hidden and shown else []), *version]
        if not words:
            return ""
        text = f"({' '.join(words)})"
        if room is None or _units(text, encoding) <= room:
            return text
    return ""


def sms_text(alert: AlertEvent, max_segments: int = 1) -> str:
    """`FIRING warning rule: <summary> 7.98 < 8.00 13:47 ET (XMAG 27.10@13:53 v3f2a9c1e)`.

    Within `max_segments` segments. The state, severity, rule, value and time always survive;
    the summary gives way ("..."); the provenance is added only in the room the rest leaves in
    the segments it already takes.
    """
    text = _alert_text(alert, max_segments)
    if not (alert.inputs or alert.rule_version):
        return text
    encoding = encoding_of(text)
    # the room left in the segments the text already takes: provenance never adds a segment
    room = segment_budget(encoding, segments(text)) - _units(text, encoding) - 1
    provenance = sms_provenance(alert, room, encoding)
    if encoding == "GSM-7" and encoding_of(provenance) != "GSM-7":
        return text  # a symbol outside GSM-7: not worth turning the whole text into UCS-2
    return f"{text} {provenance}" if provenance else text


def _alert_text(alert: AlertEvent, max_segments: int) -> str:
    """The alert itself: `FIRING warning rule: <summary> 7.98 < 8.00 13:47 ET`."""
    head = f"{_state_word(alert)} {alert.severity} {alert.rule}:"
    if alert.number and alert.state == "firing":  # what a reply names: "ACK 12"
        head = f"#{alert.number} {head}"
    tail = " ".join(
        p for p in (compare_text(alert, symbols=True), f"{alert.time_ny:%H:%M} ET") if p
    )
    c = _Composer([head, alert.summary, tail], max_segments)
    head, summary, tail = c.parts
    fixed = c.units(head) + 1 + c.units(tail)
    if fixed > c.budget:  # absurdly long rule name: keep the tail, cut the head
        head = c.fit(head, c.budget - 1 - c.units(tail))
        return f"{head} {tail}".strip()
    summary = c.fit(summary, c.budget - fixed - 1)
    return " ".join(p for p in (head, summary, tail) if p)


def _item(alert: AlertEvent, one_rule: bool) -> str:
    """One alert in a group text: `NVDA -3.20`, `NVDA big-move -3.20`, `NVDA ok`."""
    labels = alert.labels
    subject = labels.get("symbol") or ",".join(labels[k] for k in sorted(labels))
    words = [subject] if subject else []
    if not one_rule or not subject:
        words.append(alert.rule)
    if alert.state == "resolved":
        words.append("ok")
    elif alert.value is not None:
        words.append(format_number(alert.value))
    return " ".join(words)


def sms_group_text(alerts: Sequence[AlertEvent], max_segments: int = 1) -> str:
    """`3 alerts: NVDA -3.20; AMD -3.10; +1 more 13:47 ET`, most pressing first, within budget."""
    ordered = order_alerts(alerts)
    if not ordered:
        return ""
    rules = {a.rule for a in ordered}
    one_rule = len(rules) == 1
    noun = f"{next(iter(rules))} alerts" if one_rule else "alerts"
    head = f"{len(ordered)} {noun}:"
    tail = f"{ordered[0].time_ny:%H:%M} ET"
    c = _Composer([head, tail, *(_item(a, one_rule) for a in ordered)], max_segments)
    head, tail, *items = c.parts
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i - 1
        more = f"; +{rest} more" if rest else ""
        candidate = "; ".join([*shown, item])
        if c.units(f"{head} {candidate}{more} {tail}") > c.budget:
            break
        shown.append(item)
    hidden = len(items) - len(shown)
    body = "; ".join(shown) + (f"; +{hidden} more" if shown and hidden else "")
    if not shown:
        body = f"+{hidden} more"
    text = f"{head} {body} {tail}"
    return text if c.units(text) <= c.budget else c.fit(text, c.budget)


def sms_notice(text: str, max_segments: int = 1) -> str:
    """A notice (a test message) cut to the budget in whichever encoding it needs."""
    c = _Composer([text], max_segments)
    return c.fit(c.parts[0], c.budget)
