"""Rules → an evaluation plan: one instance per (rule, symbol or pair), indexed by symbol.

The index is what keeps the per-tick cost proportional to the rules that reference the tick's
symbol, not to the number of rules loaded. Compilation is pure and cannot fail on a config that
`daemon.config` accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daemon.alerts import Severity, alert_key
from daemon.config import Config
from daemon.rules.conditions import HeadlineMatcher, PctMove, Spread, Threshold
from daemon.rules.market import Market
from daemon.rules.schema import HeadlineCond, PctMoveCond, Rule, SpreadCond, ThresholdCond
from daemon.rules.template import DEFAULT_MESSAGES, DEFAULT_RESOLVED

__all__ = ["HeadlineRule", "Instance", "Plan", "compile_rules"]

Measure = Threshold | Spread | PctMove


@dataclass(slots=True)
class Instance:
    """One alert-producing unit: a rule applied to one symbol (or one pair)."""

    rule: str
    key: str
    labels: dict[str, str]
    cond: Measure
    for_ms: int
    cooldown_ms: int
    severity: Severity
    template: str
    resolved_template: str
    channels: tuple[str, ...]


@dataclass(slots=True)
class HeadlineRule:
    rule: str
    matcher: HeadlineMatcher
    labels: dict[str, str]
    cooldown_ms: int
    severity: Severity
    template: str
    channels: tuple[str, ...]


@dataclass
class Plan:
    instances: list[Instance] = field(default_factory=list)
    by_symbol: dict[str, list[Instance]] = field(default_factory=dict)
    headline_rules: list[HeadlineRule] = field(default_factory=list)

    def new_market(self) -> Market:
        """A market view that tracks exactly the windows and anchors these rules read."""
        m = Market()
        for inst in self.instances:
            c = inst.cond
            if isinstance(c, PctMove):
                m.need_window(c.symbol, c.window_ms)
            elif isinstance(c, Spread) and c.mode == "return":
                since = c.cond.since
                for sym in c.symbols:
                    if since == "ytd":
                        m.ytd_symbols.add(sym)
                    elif since is not None:
                        m.anchor_days.setdefault(sym, set()).add(since)
        return m


def _ms(rule: Rule, attr: str) -> int:
    return int(getattr(rule, attr).total_seconds() * 1000)


def compile_rules(cfg: Config) -> Plan:
    plan = Plan()
    for lr in cfg.rules:
        rule = lr.rule
        if not rule.enabled:
            continue
        cond = rule.when.condition
        template = rule.message or DEFAULT_MESSAGES[rule.when.kind]
        channels = tuple(rule.channels)
        if isinstance(cond, HeadlineCond):
            matcher = HeadlineMatcher(cond, cfg.expand(cond.symbols))
            plan.headline_rules.append(
                HeadlineRule(
                    rule.name,
                    matcher,
                    dict(rule.labels),
                    _ms(rule, "cooldown"),
                    rule.severity,
                    template,
                    channels,
                )
            )
            continue
        measures: list[Measure]
        if isinstance(cond, ThresholdCond):
            measures = [Threshold(cond, s) for s in cfg.expand(cond.symbols)]
        elif isinstance(cond, PctMoveCond):
            measures = [PctMove(cond, s) for s in cfg.expand(cond.symbols)]
        elif isinstance(cond, SpreadCond):
            measures = [Spread(cond)]
        for m in measures:
            labels = {**rule.labels, **m.labels}
            inst = Instance(
                rule.name, alert_key(rule.name, m.labels), labels, m, _ms(rule, "for_"),
                _ms(rule, "cooldown"), rule.severity, template,
                rule.resolved_message or DEFAULT_RESOLVED, channels,
            )  # fmt: skip
            plan.instances.append(inst)
            for sym in m.symbols:
                plan.by_symbol.setdefault(sym, []).append(inst)
    return plan
