"""Rules → an evaluation plan: one instance per (rule, symbol or pair), indexed by symbol.

The index is what keeps the per-tick cost proportional to the rules that reference the tick's
symbol, not to the number of rules loaded. Compilation is pure and cannot fail on a config that
`daemon.config` accepted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from daemon.alerts import Severity, alert_key
from daemon.events import EarningsEvent, dt_to_ms
from daemon.rules.conditions import (
    Band,
    Breadth,
    Composite,
    Crosses,
    EarningsWindow,
    ExprMeasure,
    ExprSeries,
    HeadlineMatcher,
    Measure,
    NoDataGuard,
    PctMove,
    SeriesCross,
    Spread,
    Stale,
    Threshold,
    VolumeSpike,
)
from daemon.rules.expr import compile_expr
from daemon.rules.groups import expand
from daemon.rules.lifecycle import Policy
from daemon.rules.market import Market, VolumeProfile
from daemon.rules.message import DEFAULT_MESSAGES, DEFAULT_RESOLVED, SERIES_CROSS_MESSAGE
from daemon.rules.schema import (
    BandCond,
    BreadthCond,
    CrossesCond,
    EarningsCond,
    ExprCond,
    PctMoveCond,
    Rule,
    SpreadCond,
    StaleCond,
    ThresholdCond,
    VolumeSpikeCond,
    When,
)
from daemon.rules.sessions import ActiveWindow, Sessions, nyse
from daemon.rules.timers import ReminderRule
from daemon.rules.version import rule_version

__all__ = ["HeadlineRule", "Instance", "Plan", "compile_rules"]


@dataclass(slots=True)
class Instance:
    """One alert-producing unit: a rule applied to one symbol (or one pair)."""

    rule: str
    key: str
    labels: dict[str, str]
    cond: Measure
    policy: Policy
    severity: Severity
    template: str
    resolved_template: str
    channels: tuple[str, ...]
    trigger: str = "change"
    bar_ms: int = 60_000
    expires_ms: int | None = None
    active: ActiveWindow | None = None
    #: Whether replaying history through `cond` rebuilds state (expressions' windows).
    warms: bool = False
    #: What an evaluation that raises stands for: keep, ok or alerting (the rule's on_error).
    on_error: str = "keep"
    #: No expiry, no active window, the default trigger: the engine's fast path.
    plain: bool = False
    #: The rule's per-channel message templates (`messages:`), carried on its alerts.
    templates: dict[str, str] = field(default_factory=dict)
    #: Judged once per bar at its end (`evaluate: bar_close`, or `trigger: once_per_bar_close`).
    bar_close: bool = False
    #: The symbols of a rule over several of them, whose alignment is checked before it is
    #: judged (empty for a one-symbol rule: nothing to align).
    legs: tuple[str, ...] = ()
    #: The rule's `max_skew` (None: by kind of price) and `stale_after`, in ms.
    max_skew_ms: int | None = None
    stale_after_ms: int = 15 * 60_000
    #: A short hash of the rule's normalized YAML: which version of the rule judged an alert.
    version: str = ""

    def __post_init__(self) -> None:
        self.plain = (
            self.expires_ms is None
            and self.active is None
            and self.trigger == "change"
            and not self.bar_close
        )


@dataclass(slots=True)
class HeadlineRule:
    rule: str
    matcher: HeadlineMatcher
    labels: dict[str, str]
    cooldown_ms: int
    severity: Severity
    template: str
    channels: tuple[str, ...]
    templates: dict[str, str] = field(default_factory=dict)
    version: str = ""


@dataclass
class Plan:
    instances: list[Instance] = field(default_factory=list)
    by_symbol: dict[str, list[Instance]] = field(default_factory=dict)
    headline_rules: list[HeadlineRule] = field(default_factory=list)
    reminder_rules: list[ReminderRule] = field(default_factory=list)
    #: Instances that time alone can change (staleness): also evaluated as the clock moves.
    clock_instances: list[Instance] = field(default_factory=list)
    #: Instances whose rule has `no_data_after`: the clock checks their inputs for silence.
    silence_watch: list[tuple[Instance, NoDataGuard]] = field(default_factory=list)
    #: `evaluate: bar_close` instances (not in `by_symbol`: a tick opens their bar, the end of
    #: the bar judges them), and the same by symbol.
    bar_instances: list[Instance] = field(default_factory=list)
    bar_by_symbol: dict[str, list[Instance]] = field(default_factory=dict)
    #: The earnings calendar the plan was compiled with: reminders are due from it.
    earnings: list[EarningsEvent] = field(default_factory=list)
    #: Configured anchor prices (alerts.yaml `anchors:`), standing in where history has none.
    anchors: dict[tuple[str, dt.date], float] = field(default_factory=dict)
    sessions: Sessions = field(default_factory=nyse)

    def new_market(self) -> Market:
        """A market view that tracks exactly the windows and anchors these rules read."""
        m = Market()
        m.anchors.configured = dict(self.anchors)
        for inst in self.instances:
            for c in _leaves(inst.cond):
                _track(m, c)
        return m


def _leaves(m: Measure) -> list[Measure]:
    if isinstance(m, NoDataGuard):
        return _leaves(m.inner)
    if isinstance(m, Composite):
        return [leaf for child in m.children for leaf in _leaves(child)]
    return [m]


def _track(m: Market, c: Measure | ExprSeries) -> None:
    """Make the market view keep what condition `c` reads (a window, anchor prices)."""
    if isinstance(c, ExprMeasure | ExprSeries):
        c.expr.track(m)
    elif isinstance(c, SeriesCross):
        _track(m, c.series)
    elif isinstance(c, VolumeSpike):
        if c.symbol not in m.volumes:
            m.volumes[c.symbol] = VolumeProfile(c.slot_ms, c.days)
    elif isinstance(c, Breadth):
        for part in c.parts.values():
            for leaf in _leaves(part):
                _track(m, leaf)
    elif isinstance(c, PctMove):
        if c.since is None:
            m.need_window(c.symbol, c.window_ms)
        elif c.since == "prev_close":
            m.daily_symbols.add(c.symbol)
        elif c.since == "ytd":
            m.ytd_symbols.add(c.symbol)
        else:
            m.anchor_days.setdefault(c.symbol, set()).add(c.since)
    elif isinstance(c, Spread) and c.mode == "return":
        since = c.cond.since
        for sym in c.symbols:
            if since == "ytd":
                m.ytd_symbols.add(sym)
            elif since is not None:
                m.anchor_days.setdefault(sym, set()).add(since)


def _ms(rule: Rule, attr: str) -> int:
    return int(getattr(rule, attr).total_seconds() * 1000)


def _series_cross(when: When) -> bool:
    """A crossing of a spread or an expression (no symbol, no price of its own)."""
    c = when.crosses
    return c is not None and c.symbols is None


def policy_of(rule: Rule) -> Policy:
    flap = rule.flap
    return Policy(
        for_ms=_ms(rule, "for_"),
        cooldown_ms=_ms(rule, "cooldown"),
        keep_firing_ms=_ms(rule, "keep_firing_for"),
        repeat_ms=_ms(rule, "repeat"),
        notify_resolved=rule.notify_resolved,
        flap_transitions=flap.transitions if flap else 0,
        flap_window_ms=int(flap.within.total_seconds() * 1000) if flap else 0,
    )


def build(
    when: When,
    groups: Mapping[str, Sequence[str]] | None = None,
    earnings: Sequence[EarningsEvent] = (),
) -> dict[str | None, Measure]:
    """Measures for a condition, keyed by symbol (None: one measure not tied to a symbol).

    Combined conditions are built per symbol: `all: [a 3% move in mag7, its earnings window]`
    pairs each mag7 name's move with that same name's window. Parts not tied to a symbol
    (a spread, an expression) are shared by every symbol's instance. `groups` and the
    `earnings` calendar are all that building needs of the config.
    """
    groups = groups or {}
    kind = when.kind
    if kind in ("all", "any", "not"):
        parts = [build(child, groups, earnings) for child in when.children]
        per_symbol = [p for p in parts if None not in p]
        if per_symbol:
            keys: list[str | None] = [k for k in per_symbol[0] if all(k in p for p in per_symbol)]
        else:
            keys = [None]
        out: dict[str | None, Measure] = {}
        for key in keys:
            children = [p[key] if key in p else _own(p[None]) for p in parts]
            labels = {"symbol": key} if key is not None else children[0].labels
            out[key] = Composite(kind, children, labels)
        return out
    cond = when.condition
    if isinstance(cond, ThresholdCond):
        return {s: Threshold(cond, s) for s in expand(groups, cond.symbols)}
    if isinstance(cond, PctMoveCond):
        return {s: PctMove(cond, s) for s in expand(groups, cond.symbols)}
    if isinstance(cond, CrossesCond):
        if cond.spread is not None:
            return {None: SeriesCross(cond, Spread(cond.spread))}
        if cond.expr is not None:
            return {None: SeriesCross(cond, ExprSeries(compile_expr(cond.expr, condition=False)))}
        return {s: Crosses(cond, s) for s in expand(groups, cond.symbols)}
    if isinstance(cond, BandCond):
        return {s: Band(cond, s) for s in expand(groups, cond.symbols)}
    if isinstance(cond, BreadthCond):
        each = build(cond.of, groups, earnings)
        if None in each:
            raise ValueError("breadth needs a per-symbol condition (one with symbols: a group)")
        return {None: Breadth(cond, {str(k): v for k, v in each.items()})}
    if isinstance(cond, VolumeSpikeCond):
        return {s: VolumeSpike(cond, s) for s in expand(groups, cond.symbols)}
    if isinstance(cond, StaleCond):
        return {s: Stale(cond, s, nyse()) for s in expand(groups, cond.symbols)}
    if isinstance(cond, EarningsCond):
        events = earnings if isinstance(earnings, list) else list(earnings)
        return {s: EarningsWindow(cond, s, events) for s in expand(groups, cond.symbols)}
    if isinstance(cond, SpreadCond):
        return {None: Spread(cond)}
    if isinstance(cond, ExprCond):
        return {None: ExprMeasure(compile_expr(cond.expr))}
    raise ValueError(f"condition {kind!r} cannot be evaluated on ticks")


def _own(m: Measure) -> Measure:
    """A shared part of a per-symbol combination, with its own state where it keeps any."""
    return m.fresh() if isinstance(m, ExprMeasure | SeriesCross) else m


def compile_rules(
    rules: Iterable[Rule],
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    earnings: Sequence[EarningsEvent] = (),
    anchors: Mapping[tuple[str, dt.date], float] | None = None,
    versions: Mapping[int, str] | None = None,
) -> Plan:
    """The plan for `rules` (disabled ones skipped), given the symbol groups and the calendar.

    Plain data in, not a `Config`: the engine must not import `daemon.config`, which pulls in
    every plugin's network library. `Config.compile` is the short way from a loaded config.
    """
    groups = groups or {}
    events = list(earnings)
    plan = Plan(earnings=events, anchors=dict(anchors or {}))
    for rule in rules:
        if not rule.enabled:
            continue
        template = rule.message or DEFAULT_MESSAGES[rule.when.kind]
        version = (versions or {}).get(id(rule)) or rule_version(rule)
        templates = dict(rule.messages)
        channels = tuple(rule.channels)
        reminder = rule.when.earnings_reminder
        if reminder is not None:
            plan.reminder_rules.append(
                ReminderRule(
                    rule.name,
                    tuple(expand(groups, reminder.symbols)),
                    tuple(reminder.remind),
                    dict(rule.labels),
                    rule.severity,
                    template,
                    channels,
                    templates,
                    version,
                )
            )
            continue
        cond = rule.when.headline
        if cond is not None:
            matcher = HeadlineMatcher(cond, expand(groups, cond.symbols))
            plan.headline_rules.append(
                HeadlineRule(
                    rule.name,
                    matcher,
                    dict(rule.labels),
                    _ms(rule, "cooldown"),
                    rule.severity,
                    template,
                    channels,
                    templates,
                    version,
                )
            )
            continue
        measures = list(build(rule.when, groups, events).values())
        if rule.on_no_data != "keep" or rule.no_data_after is not None:
            after = rule.no_data_after
            after_ms = int(after.total_seconds() * 1000) if after is not None else None
            measures = [NoDataGuard(m, rule.on_no_data, after_ms, nyse()) for m in measures]
        bar_close = rule.evaluate == "bar_close" or rule.trigger == "once_per_bar_close"
        max_skew = _ms(rule, "max_skew") if rule.max_skew is not None else None
        if rule.message is None and _series_cross(rule.when):
            template = SERIES_CROSS_MESSAGE
        for m in measures:
            labels = {**rule.labels, **m.labels}
            inst = Instance(
                rule.name, alert_key(rule.name, m.labels), labels, m, policy_of(rule),
                rule.severity, template, rule.resolved_message or DEFAULT_RESOLVED, channels,
                rule.trigger, _ms(rule, "bar"),
                dt_to_ms(rule.expires) if rule.expires is not None else None, rule.active,
                on_error=rule.on_error, templates=templates, bar_close=bar_close,
                legs=m.symbols if len(m.symbols) > 1 else (), max_skew_ms=max_skew,
                stale_after_ms=_ms(rule, "stale_after"), version=version,
            )  # fmt: skip
            inst.warms = any(isinstance(leaf, ExprMeasure | SeriesCross) for leaf in _leaves(m))
            plan.instances.append(inst)
            index = plan.bar_by_symbol if bar_close else plan.by_symbol
            for sym in m.symbols:
                index.setdefault(sym, []).append(inst)
            if bar_close:
                plan.bar_instances.append(inst)
            elif any(isinstance(leaf, Stale) for leaf in _leaves(m)):
                plan.clock_instances.append(inst)
            if isinstance(m, NoDataGuard) and m.after_ms is not None and m.stands_for:
                plan.silence_watch.append((inst, m))
    return plan
