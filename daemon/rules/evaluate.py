"""The engine: feed it ticks and headlines in event-time order, get alert transitions back.

Pure: no I/O, no clock (event time comes with each event). The daemon's runner, `make bench`
and the tests drive this same class, so what a test proves is what the daemon does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from daemon.alerts import AlertEvent, alert_key
from daemon.events import Headline, Tick, sentiment_label
from daemon.rules.compile import HeadlineRule, Instance, Plan
from daemon.rules.conditions import Reading
from daemon.rules.lifecycle import AlertState, Told, fire_event, step
from daemon.rules.market import Market
from daemon.rules.template import render

__all__ = ["Engine", "rule_of"]


#: Trigger modes that tell each firing on its own, with no resolve after it.
_ONE_SHOT_TRIGGERS = frozenset({"every_time", "once_per_bar", "once_per_bar_close"})


def _resolves(inst: Instance) -> bool:
    """False for one-shot alerts (a crossing, a per-bar or every-time trigger): no resolve."""
    return not (inst.cond.event or inst.trigger in _ONE_SHOT_TRIGGERS)


def rule_of(key: str) -> str:
    """The rule name of an alert key (`big-move{symbol=NVDA}` → `big-move`)."""
    return key.split("{", 1)[0]


class Engine:
    def __init__(
        self,
        plan: Plan,
        states: dict[str, AlertState] | None = None,
        market: Market | None = None,
    ):
        self.plan = plan
        self.states: dict[str, AlertState] = states if states is not None else {}
        self.market = market if market is not None else plan.new_market()
        self._dirty: set[str] = set()
        self.evaluations = 0
        #: once_per_bar_close: each instance's latest reading in the bar under way.
        self._bar_close: dict[str, tuple[int, Reading]] = {}
        #: Event time at which time-driven conditions were last evaluated.
        self._clock_ms = 0
        #: rule → (evaluations that raised, the last error): the runner reports them.
        self.errors: dict[str, tuple[int, str]] = {}

    def with_plan(self, plan: Plan, keep_rules: set[str]) -> tuple[Engine, list[str]]:
        """An engine on a new plan (a rule reload), and the alert keys whose state it reset.

        The market view carries over (prices, anchors, and windows already filled), and so does
        the state of every alert whose rule is in `keep_rules` (unchanged rules): a firing alert
        stays firing, a pending one keeps its clock. Changed or removed rules start afresh.
        """
        market = plan.new_market()
        old = self.market
        market.quotes = old.quotes
        market.anchors = old.anchors
        market.first_ms = old.first_ms
        for sym, fresh in market.windows.items():
            kept = old.windows.get(sym)
            if kept is not None:
                kept.span_ms = max(kept.span_ms, fresh.span_ms)
                market.windows[sym] = kept
        # unchanged rules keep their measures too: an expression's rolling windows carry over
        old_by_key = {inst.key: inst for inst in self.plan.instances}
        for inst in plan.instances:
            kept_inst = old_by_key.get(inst.key)
            if inst.rule in keep_rules and kept_inst is not None and inst.warms:
                inst.cond = kept_inst.cond  # only expressions hold state worth carrying
        states, dropped = {}, []
        for key, st in self.states.items():
            if rule_of(key) in keep_rules:
                states[key] = st
            else:
                dropped.append(key)
                # afresh, but the numbering goes on: an alert's id is `key#seq:state`, and a
                # new firing numbered like an old one would be skipped as already delivered
                states[key] = AlertState(seq=st.seq)
        engine = Engine(plan, states, market)
        engine.evaluations = self.evaluations
        return engine, dropped

    def retire(self, keys: Iterable[str], now_ms: int, rules_left: set[str]) -> list[AlertEvent]:
        """Resolved events for the firing alerts among `keys`, which a reload stops tracking.

        Without them an alert of a removed or edited rule would just go quiet: its Slack message
        stays red and the desk never hears it ended. An edited rule that still holds fires
        afresh under its new definition. One-shot alerts and unannounced firings (cooldown,
        `notify_resolved: false`) get nothing, as they would at a normal resolve.
        """
        by_key = {inst.key: inst for inst in self.plan.instances}
        out = []
        for key in keys:
            st, inst = self.states.get(key), by_key.get(key)
            if st is None or inst is None or st.state != "firing" or not st.notified:
                continue
            if not inst.policy.notify_resolved or not _resolves(inst):
                continue
            how = "changed" if inst.rule in rules_left else "removed"
            labels = " ".join(f"{k}={v}" for k, v in sorted(inst.labels.items()))
            name = f"{inst.rule} ({labels})" if labels else inst.rule
            out.append(
                AlertEvent(
                    rule=inst.rule,
                    key=key,
                    state="resolved",
                    seq=st.seq,
                    ts_ms=now_ms,
                    severity=inst.severity,
                    summary=f"{name}: no longer watched, the rule was {how} by a reload "
                    "while it was firing",
                    channels=inst.channels,
                    labels=inst.labels,
                    values={"retired": how},
                )
            )
        return out

    def warm(self, tick: Tick) -> None:
        """Replay history: prices, windows and expressions' rolling state; no alert is told."""
        self.market.record(tick)
        for inst in self.plan.by_symbol.get(tick.symbol, ()):
            if inst.warms:
                inst.cond.measure(self.market, tick.ts_ms)

    def on_tick(self, tick: Tick) -> list[AlertEvent]:
        self.market.record(tick)
        instances = self.plan.by_symbol.get(tick.symbol)
        out: list[AlertEvent] = []
        now = self.market.quotes[tick.symbol].ts_ms  # a late tick counts as now, not the past
        if instances:
            for inst in instances:
                try:
                    self._evaluate(inst, now, out)
                except Exception as e:  # one rule's failure must not stop the others
                    self._failed(inst, now, e, out)
        if (self.plan.clock_instances or self.plan.silence_watch) and now - self._clock_ms >= 1000:
            self._clock_ms = now  # event time moved on: time-driven conditions may have changed
            self._tick_clock(now, out, skip=tick.symbol)
        return out

    def on_clock(self, now_ms: int) -> list[AlertEvent]:
        """Evaluate the conditions time alone can change (staleness), with no tick arriving."""
        out: list[AlertEvent] = []
        if not self.market.first_ms:
            self.market.first_ms = now_ms  # "silent since" starts with the first event of any kind
        if now_ms > self._clock_ms:
            self._clock_ms = now_ms
            self._tick_clock(now_ms, out)
        return out

    def _tick_clock(self, now: int, out: list[AlertEvent], skip: str = "") -> None:
        for inst in self.plan.clock_instances:
            if skip not in inst.cond.symbols:
                try:
                    self._evaluate(inst, now, out)
                except Exception as e:
                    self._failed(inst, now, e, out)
        for inst, guard in self.plan.silence_watch:
            silent = guard.silence(self.market, now)
            if silent is not None:
                self._evaluate(inst, now, out, forced=silent)

    def _failed(self, inst: Instance, now: int, error: Exception, out: list[AlertEvent]) -> None:
        """An evaluation raised: count it, and apply the rule's `on_error`."""
        count, _ = self.errors.get(inst.rule, (0, ""))
        self.errors[inst.rule] = (count + 1, f"{type(error).__name__}: {error}"[:300])
        if inst.on_error == "keep":
            return
        active = inst.on_error == "alerting"
        values: dict[str, float | str] = {**inst.labels, "error": self.errors[inst.rule][1]}
        forced = Reading(float("nan"), active, not active, values, False, None, "error")
        self._evaluate(inst, now, out, forced=forced)

    def _evaluate(
        self, inst: Instance, now: int, out: list[AlertEvent], forced: Reading | None = None
    ) -> None:
        cond = inst.cond
        reading: Reading | None = None
        at = now
        if forced is not None:  # no data, or an error, standing for a verdict
            reading = forced
            active, cleared = forced.active, forced.cleared
            st = self.states.get(inst.key)
        # the hot path: most rules have no expiry, no active window and the default trigger
        elif inst.plain:
            verdict = cond.verdict(self.market, now)  # no Reading is built unless one is told
            if verdict is None:
                return
            active, cleared = verdict
            st = self.states.get(inst.key)
        else:
            if inst.expires_ms is not None and now >= inst.expires_ms:
                return
            if inst.active is not None and not inst.active.allows(now, self.plan.sessions):
                return
            st = self.states.get(inst.key)
            if st is not None and st.done:
                return  # trigger: once, and it has fired
            if inst.trigger == "once_per_bar_close":
                # judge each bar on its last reading, once the next bar has begun
                reading = cond.measure(self.market, now)
                bar = now // inst.bar_ms
                prev = self._bar_close.get(inst.key)
                if reading is not None:
                    self._bar_close[inst.key] = (bar, reading)
                if prev is None or prev[0] == bar:
                    return
                reading, at = prev[1], (prev[0] + 1) * inst.bar_ms
                active, cleared = reading.active, reading.cleared
            else:
                verdict = cond.verdict(self.market, now)
                if verdict is None:
                    return
                active, cleared = verdict
        self.evaluations += 1
        if st is None:
            st = self.states[inst.key] = AlertState()
        elif not active and not st.flapping and st.state in ("inactive", "resolved"):
            return  # the common case: nothing holds, so nothing changes and nothing is told
        state, seq, clearing = st.state, st.seq, st.clearing_since_ms
        repeats, flapping = st.repeats, st.flapping
        told = self._advance(inst, st, active, cleared, cond.event, at)
        # the other fields change only with a told transition, or with these (a reminder held
        # back while flapping, the end of a flap)
        if told is not None:
            self._dirty.add(inst.key)
            if reading is None:
                reading = cond.explain(self.market, now)  # the numbers behind the verdict
                assert reading is not None
            out.append(self._event(inst, st, told, reading, at))
        elif (
            st.state != state
            or st.seq != seq
            or st.clearing_since_ms != clearing
            or st.repeats != repeats
            or st.flapping != flapping
        ):
            self._dirty.add(inst.key)

    @staticmethod
    def _advance(
        inst: Instance, st: AlertState, active: bool, cleared: bool, event: bool, now: int
    ) -> Told:
        """One verdict through the rule's trigger mode and lifecycle policy."""
        p = inst.policy
        if event or inst.trigger in ("every_time", "once_per_bar", "once_per_bar_close"):
            if not active:
                return None
            if inst.trigger == "once_per_bar":
                bar = now // inst.bar_ms
                if bar == st.last_bar:
                    return None
                st.last_bar = bar
            return fire_event(st, now_ms=now, cooldown_ms=p.cooldown_ms)
        told = step(st, active=active, cleared=cleared, now_ms=now, policy=p)
        if told == "firing" and inst.trigger == "once":
            st.done = True
        return told

    def on_headline(self, h: Headline) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        for hr in self.plan.headline_rules:
            for sym, score in hr.matcher.match(h):
                labels = {"symbol": sym} if sym else {}
                key = alert_key(hr.rule, labels)
                st = self.states.get(key)
                if st is None:
                    st = self.states[key] = AlertState()
                told = fire_event(st, now_ms=h.ts_ms, cooldown_ms=hr.cooldown_ms)
                self._dirty.add(key)
                if told is not None:
                    out.append(self._headline_event(hr, key, labels, st, h, score))
        return out

    def take_dirty(self) -> dict[str, AlertState]:
        """States changed since the last call (what the runner must persist)."""
        dirty = {k: self.states[k] for k in self._dirty}
        self._dirty.clear()
        return dirty

    def _event(
        self, inst: Instance, st: AlertState, told: Told, r: Reading, now: int
    ) -> AlertEvent:
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
            values=_with_series(r.values, self.market, inst.labels.get("symbol")),
            templates=inst.templates,
            resolves=_resolves(inst),
        )
        return _with_summary(ev, inst.resolved_template if told == "resolved" else inst.template)

    def _headline_event(
        self,
        hr: HeadlineRule,
        key: str,
        labels: dict[str, str],
        st: AlertState,
        h: Headline,
        score: float | None,
    ) -> AlertEvent:
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
        )
        return _with_summary(ev, hr.template)


def _with_series(
    values: dict[str, float | str], market: Market, symbol: str | None
) -> dict[str, float | str]:
    """The symbol's recent minute prices, for channels that draw a trend (Slack's sparkline)."""
    q = market.quotes.get(symbol) if symbol else None
    if q is None or not q.spark:
        return values
    return {**values, "series": " ".join(f"{p:.6g}" for p in (*q.spark, q.price))}


def _with_summary(ev: AlertEvent, template: str) -> AlertEvent:
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
    return replace(ev, summary=render(template, ctx))
