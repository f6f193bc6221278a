"""`tickwatch notify` and `tickwatch render`: try a channel for real, preview a rule's messages.

`send_test_notice` sends one notice through a configured channel with the same code path the
daemon uses (`Notifier.deliver`), so "it works from the CLI" means it works in the daemon.
`render_rule` makes up a plausible alert for a rule (a value just past its level, its first
symbol) and shows what each channel it would reach through the route tree would send, with the
rule's real `message` and per-channel `messages:` templates; template errors are shown, not
hidden by the fallback.
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, replace
from typing import Any, Literal
from uuid import uuid4

from daemon.alerts import AlertEvent, alert_key
from daemon.config import Config
from daemon.notify.channel_templates import render, variant_for
from daemon.notify.failure import DeliveryError
from daemon.notify.market_context import MarketContext
from daemon.notify.notification import Notification
from daemon.notify.registry import make_notifier
from daemon.notify.route_tree import compile_routes, targets
from daemon.rules import (
    DEFAULT_MESSAGES,
    DEFAULT_RESOLVED,
    BandCond,
    CrossesCond,
    PctMoveCond,
    Rule,
    SpreadCond,
    ThresholdCond,
    placeholders,
)
from daemon.rules import render as render_message

__all__ = ["Preview", "render_rule", "sample_alert", "send_test_notice"]


def _unknown(kind: str, name: str, known: list[str]) -> ValueError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(f"unknown {kind} {name!r}{hint}; known: {', '.join(sorted(known)) or 'none'}")


async def send_test_notice(cfg: Config, channel: str, text: str) -> str | None:
    """Send `text` as a notice through `channel`; None when sent, else the reason it was not.

    Raises ValueError for a channel name that is not configured.
    """
    if channel not in cfg.settings.channels:
        raise _unknown("channel", channel, list(cfg.settings.channels))
    notifier = make_notifier(channel, cfg.channel(channel))
    reason = notifier.disabled_reason(cfg.env_vars_of_channel(channel))
    if reason is not None:
        return f"channel {channel!r} ({notifier.kind}) is off: {reason}"
    n = Notification(channel=channel, key=f"notice:{uuid4().hex}", kind="notice", text=text)
    try:
        await notifier.deliver(n)
    except DeliveryError as e:
        return str(e)
    finally:
        await notifier.aclose()
    return None


@dataclass(frozen=True, slots=True)
class Preview:
    """One channel's rendering of the made-up alert."""

    channel: str
    kind: str
    #: Where the text came from: `messages.<key>` or `message` (the rule's, or the default).
    source: str
    text: str
    #: A per-channel template that failed to render (the text then shows the fallback).
    error: str | None = None


def _step(level: float) -> float:
    return max(abs(level) * 0.01, 0.01)


def _numbers(rule: Rule, state: Literal["firing", "resolved"]) -> tuple[float, float | None, str]:
    """(value, threshold, comparison) just past the rule's level (or back inside it)."""
    firing = state == "firing"
    for w in rule.when.walk():
        if w.kind in ("all", "any", "not", "expr"):
            continue
        cond = w.condition
        if isinstance(cond, ThresholdCond | SpreadCond):
            level, up = cond.level, cond.comparison == "above"
            past = level + _step(level) if up == firing else level - _step(level)
            return past, level, cond.comparison
        if isinstance(cond, PctMoveCond):
            sign = -1.0 if cond.direction == "down" else 1.0
            level = sign * cond.magnitude
            value = level + sign * 0.4 if firing else sign * cond.magnitude / 2
            return value, level, "below" if sign < 0 else "above"
        if isinstance(cond, CrossesCond):
            down = cond.direction == "down"
            value = cond.level - _step(cond.level) if down else cond.level + _step(cond.level)
            return value, cond.level, "crosses_below" if down else "crosses_above"
        if isinstance(cond, BandCond):
            outside = cond.on in ("outside", "exits")
            inside_value = (cond.lower + cond.upper) / 2
            value = cond.upper + _step(cond.upper) if outside == firing else inside_value
            return value, cond.upper, cond.on
    return 1.0, None, ""


def _symbol(rule: Rule, cfg: Config) -> tuple[str, dict[str, str]]:
    """A symbol to show and the extra fields naming it (`a`/`b` for spreads)."""
    for w in rule.when.walk():
        if w.kind in ("all", "any", "not", "expr"):
            continue
        cond = w.condition
        if isinstance(cond, SpreadCond):
            return f"{cond.a}-{cond.b}", {"a": cond.a, "b": cond.b}
        ref = getattr(cond, "symbols", None)
        symbols = cfg.expand(ref) if ref is not None else []
        if symbols:
            return symbols[0], {}
    return "", {}


_SAMPLE_TEXT: dict[str, str] = {
    "title": "Sample headline for the preview",
    "source": "preview",
    "url": "https://example.com/news",
    "window": "30m",
    "mode": "return",
    "since": "ytd",
    "silent_for": "5m",
    "report_date": "2026-04-28",
    "when_text": "after the close",
    "report_time": "16:05 ET",
    "lead": "in 1 day",
}


_SAMPLE_NUMBER: dict[str, float] = {
    "a_value": 10.7,
    "b_value": 2.78,
    "a_price": 31.25,
    "b_price": 55.40,
    "price": 102.50,
    "from_price": 100.0,
    "count": 5,
    "of": 7,
    "volume": 1_250_000,
    "usual": 400_000,
    "sentiment": 0.42,
    "hours": 18,
}


def sample_alert(
    cfg: Config, rule_name: str, state: Literal["firing", "resolved"] = "firing"
) -> AlertEvent:
    """A made-up alert for `rule_name`, its summary rendered from the rule's real template."""
    rules = {lr.rule.name: lr.rule for lr in cfg.rules}
    if rule_name not in rules:
        raise _unknown("rule", rule_name, list(rules))
    rule = rules[rule_name]
    kinds = [w.kind for w in rule.when.walk()]
    value, threshold, comparison = _numbers(rule, state)
    symbol, named = _symbol(rule, cfg)
    labels = dict(rule.labels)
    if symbol:
        labels["symbol"] = symbol
    ctx: dict[str, Any] = {}
    for name, default in placeholders(kinds).items():
        if isinstance(default, str):
            ctx[name] = _SAMPLE_TEXT.get(name, f"<{name}>")
        else:
            ctx[name] = _SAMPLE_NUMBER.get(name, value)
    if rule.when.kind in ("threshold", "crosses", "band"):
        ctx["price"] = value
    ctx.update(named)
    ts_ms = int(time.time() * 1000)
    alert = AlertEvent(
        rule=rule.name,
        key=alert_key(rule.name, {"symbol": symbol} if symbol else {}),
        state=state,
        seq=1,
        ts_ms=ts_ms,
        severity=rule.severity,
        summary="",
        channels=tuple(rule.channels),
        labels=labels,
        value=value,
        threshold=threshold,
        comparison=comparison,
        values={k: v for k, v in ctx.items() if k not in ("rule", "severity", "state", "time")},
        templates=dict(rule.messages),
    )
    ctx.update(
        symbol=symbol or ctx.get("symbol", ""),
        rule=rule.name,
        severity=rule.severity,
        state=state,
        time=alert.time_ny.strftime("%Y-%m-%d %H:%M %Z"),
        value=value,
        threshold=threshold if threshold is not None else float("nan"),
        comparison=comparison,
    )
    if state == "resolved":
        template = rule.resolved_message or DEFAULT_RESOLVED
    else:
        template = rule.message or DEFAULT_MESSAGES.get(rule.when.kind, "{rule}")
    return replace(alert, summary=render_message(template, ctx))


def render_rule(
    cfg: Config, rule_name: str, state: Literal["firing", "resolved"] = "firing"
) -> tuple[AlertEvent, list[Preview]]:
    """The made-up alert and what each channel it would reach sends for it: the rule's own
    channels, or those the route tree (`route:`) picks instead."""
    alert = sample_alert(cfg, rule_name, state)
    out: list[Preview] = []
    market = MarketContext(cfg.earnings).at(alert.ts_ms)  # session and earnings routes too
    for channel in [t.channel for t in targets(compile_routes(cfg.settings.route), alert, market)]:
        if channel not in cfg.settings.channels:
            continue  # reported by `tickwatch check`
        notifier = make_notifier(channel, cfg.channel(channel))
        source = variant_for(alert, channel, notifier.kind)
        where = "message"
        error = None
        if source is not None:
            where = "messages." + (channel if channel in alert.templates else notifier.kind)
            try:
                render(source, alert)
            except Exception as e:  # shown to the author; delivery would fall back
                error = f"{type(e).__name__}: {e}"
        text = notifier.preview(Notification.single(alert, channel))
        out.append(Preview(channel, notifier.kind, where, text, error))
    return alert, out
