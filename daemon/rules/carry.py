"""A rule reload: what carries over from one engine to the next, and what it retires."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from daemon.alerts import AlertEvent
from daemon.rules.compile import Plan
from daemon.rules.lifecycle import AlertState
from daemon.rules.market import Market
from daemon.rules.tell import resolves, retired_event

if TYPE_CHECKING:
    from daemon.rules.evaluate import Engine

__all__ = ["carry_over", "retired_events", "rule_of"]


def rule_of(key: str) -> str:
    """The rule name of an alert key (`big-move{symbol=NVDA}` → `big-move`)."""
    return key.split("{", 1)[0]


def carry_over(
    engine: Engine, plan: Plan, keep_rules: set[str]
) -> tuple[Market, dict[str, AlertState], list[str]]:
    """The market view and alert states an engine on `plan` starts from (`Engine.with_plan`),
    and the alert keys whose state is reset.

    The market view carries over (prices, anchors, and windows already filled), and so does
    the state of every alert whose rule is in `keep_rules` (unchanged rules): a firing alert
    stays firing, a pending one keeps its clock. Changed or removed rules start afresh.
    """
    market = plan.new_market()
    old = engine.market
    market.quotes = old.quotes
    market.anchors = old.anchors
    market.anchors.configured = dict(plan.anchors)
    market.first_ms = old.first_ms
    for sym, fresh in market.windows.items():
        kept = old.windows.get(sym)
        if kept is not None:
            kept.span_ms = max(kept.span_ms, fresh.span_ms)
            market.windows[sym] = kept
    # unchanged rules keep their measures too: an expression's rolling windows carry over
    old_by_key = {inst.key: inst for inst in engine.plan.instances}
    for inst in plan.instances:
        kept_inst = old_by_key.get(inst.key)
        if inst.rule in keep_rules and kept_inst is not None and inst.warms:
            inst.cond = kept_inst.cond  # only expressions hold state worth carrying
    states, dropped = {}, []
    for key, st in engine.states.items():
        if rule_of(key) in keep_rules:
            states[key] = st
        else:
            dropped.append(key)
            # afresh, but the numbering goes on: an alert's id is `key#seq:state`, and a
            # new firing numbered like an old one would be skipped as already delivered
            states[key] = AlertState(seq=st.seq)
    return market, states, dropped


def retired_events(
    engine: Engine, keys: Iterable[str], now_ms: int, rules_left: set[str]
) -> list[AlertEvent]:
    """Resolved events for the firing alerts among `keys`, which a reload stops tracking.

    Without them an alert of a removed or edited rule would just go quiet: its Slack message
    stays red and the desk never hears it ended. An edited rule that still holds fires
    afresh under its new definition. One-shot alerts and unannounced firings (cooldown,
    `notify_resolved: false`) get nothing, as they would at a normal resolve.
    """
    by_key = {inst.key: inst for inst in engine.plan.instances}
    out = []
    for key in keys:
        st, inst = engine.states.get(key), by_key.get(key)
        if st is None or inst is None or st.state != "firing" or not st.notified:
            continue
        if not inst.policy.notify_resolved or not resolves(inst):
            continue
        how = "changed" if inst.rule in rules_left else "removed"
        out.append(retired_event(inst, st, now_ms, how))
    return out
