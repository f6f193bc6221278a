"""What an alert says: the `AlertEvent` of a transition, a headline or a retired rule. Pure.

Kept apart from the engine, which decides *whether* to tell; this decides *what* is told: the
values a template can use, the rendered summary, the inputs the rule read (provenance) and
whether the alert will ever resolve.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from daemon.alerts import AlertEvent, Input
from daemon.events import Headline, sentiment_label
from daemon.rules.conditions import Reading
from daemon.rules.lifecycle import AlertState, Told
from daemon.rules.market import Market
from daemon.rules.message import render

if TYPE_CHECKING:
    from collections.abc import Sequence

    from daemon.rules.compile import HeadlineRule, Instance

__all__ = [
    "ONE_SHOT_TRIGGERS",
    "headline_event",
    "resolves",
    "retired_event",
    "transition_event",
]

#: Trigger modes that tell each firing on its own, with no resolve after it.
ONE_SHOT_TRIGGERS = frozenset({"every_time", "once_per_bar", "once_per_bar_close"})


def resolves(inst: Instance) -> bool:
    """False for one-shot alerts (a crossing, a per-bar or every-time trigger): no resolve."""
    return not (inst.cond.event or inst.trigger in ONE_SHOT_TRIGGERS)


def retired_event(inst: Instance, st: AlertState, now_ms: int, how: str) -> AlertEvent:
    """The resolve of a firing alert whose rule a reload changed or removed."""
    labels = " ".join(f"{k}={v}" for k, v in sorted(inst.labels.items()))
    name = f"{inst.rule} ({labels})" if labels else inst.rule
    return AlertEvent(
        rule=inst.rule,
        key=inst.key,
        state="resolved",
        seq=st.seq,
        ts_ms=now_ms,
        severity=inst.severity,
        summary=f"{name}: no longer watched, the rule was {how} by a reload while it was firing",
        channels=inst.channels,
        labels=inst.labels,
        values={"retired": how},
        rule_version=inst.version,
    )


def transition_event(
    inst: Instance, st: AlertState, told: Told, r: Reading, now: int, market: Market
) -> AlertEvent:
    """A state rule's transition, with the numbers that decided it and what it read."""
    ev = AlertEvent(
        rule=inst.rule,
        key=inst.key,
        state="resolved" if told == "resolved" else "firing",
        seq=st.seq,
        repeat=st.repeats if told == "repeat" else 0,
        ts_ms=now,
        severity=inst.severity,
        summary="",
        channels=inst.channels,
        labels=inst.labels,
        value=r.value,
        threshold=r.threshold,
        comparison=r.comparison,
        values=_with_series(r.values, market, inst.labels.get("symbol")),
        templates=inst.templates,
        resolves=resolves(inst),
        inputs=_inputs(market, inst.cond.symbols),
        rule_version=inst.version,
    )
    return _with_summary(ev, inst.resolved_template if told == "resolved" else inst.template)


def headline_event(
    hr: HeadlineRule,
    key: str,
    labels: dict[str, str],
    st: AlertState,
    h: Headline,
    score: float | None,
) -> AlertEvent:
    """A headline's alert: one-shot, with the story and the sentiment it was judged on."""
    values: dict[str, float | str] = {
        "symbol": labels.get("symbol", ""),
        "symbols": " ".join(hr.matcher.watched(h)),
        "title": h.title,
        "source": h.source,
        "url": h.url,
        "headline_id": h.id,
    }
    if score is not None:
        values["sentiment"] = score
        values["sentiment_label"] = sentiment_label(score)
        values["scored_by"] = h.scored_by or h.source
    ev = AlertEvent(
        rule=hr.rule,
        key=key,
        state="firing",
        seq=st.seq,
        ts_ms=h.ts_ms,
        severity=hr.severity,
        summary="",
        channels=hr.channels,
        labels={**hr.labels, **labels},
        value=score,
        threshold=None,
        comparison="headline",
        values=values,
        templates=hr.templates,
        resolves=False,
        rule_version=hr.version,
    )
    return _with_summary(ev, hr.template)


def _inputs(market: Market, symbols: Sequence[str]) -> tuple[Input, ...]:
    """What a rule was judged on: each input's last price, its event time and its feed."""
    quotes = market.quotes
    return tuple(
        Input(sym, q.price, q.ts_ms, q.source, q.kind)
        for sym in symbols
        if (q := quotes.get(sym)) is not None
    )


def _with_series(
    values: dict[str, float | str], market: Market, symbol: str | None
) -> dict[str, float | str]:
    """The symbol's recent minute prices, for channels that draw a trend (Slack's sparkline)."""
    q = market.quotes.get(symbol) if symbol else None
    if q is None or not q.spark:
        return values
    return {**values, "series": " ".join(f"{p:.6g}" for p in (*q.spark, q.price))}


def _with_summary(ev: AlertEvent, template: str) -> AlertEvent:
    # no data or an error stands for a verdict: no number to fill a template written for one
    # (it would read "?-? ? spread nan is no data nan"), so say why there is none
    why = ev.values.get("no_data") or ev.values.get("error")
    if why:
        what = why if "no_data" in ev.values else f"cannot be evaluated ({why})"
        lead = ev.rule if ev.state == "firing" else f"{ev.rule} resolved"
        return replace(ev, summary=f"{lead}: {what}")
    ctx: dict[str, object] = dict(ev.values)
    ctx.update(
        rule=ev.rule,
        severity=ev.severity,
        state=ev.state,
        time=ev.time_ny.strftime("%Y-%m-%d %H:%M %Z"),
        value=ev.value if ev.value is not None else float("nan"),
        threshold=ev.threshold if ev.threshold is not None else float("nan"),
        comparison=ev.comparison,
    )
    ctx.setdefault("clear_text", "back past the clear level")
    return replace(ev, summary=render(template, ctx))
