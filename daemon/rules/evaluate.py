"""The engine: judge rules on event-time steps, get alert transitions back.

Pure: no I/O, no clock (event time comes with each step). A step is every tick that carries
one event time: all of them are applied before any rule that reads them is judged, so a rule
over several symbols never sees one leg's new price against another leg's old one. Such a rule
is judged only while its legs are aligned (each leg's last price at most `max_skew` older than
the newest: by default the same bar for bars, five minutes for trades and quotes); a leg silent
for `stale_after` during the regular session makes it "no data". Rules with `evaluate:
bar_close` are judged once per bar, at its end, on the prices as they stood then (which bar
is open and due is `daemon.rules.bars`).

`daemon.rules.driver.Driver` feeds this engine from a stream of events and clock steps; the
daemon's runner, `tickwatch test`, the backtest and `make bench` all go through it. What a rule
reload carries over to the next engine is `daemon.rules.carry`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet

from daemon.alerts import AlertEvent, alert_key
from daemon.events import Headline, Tick
from daemon.rules.bars import BarBook, bar_end
from daemon.rules.carry import carry_over, retired_events, rule_of
from daemon.rules.compile import Instance, Plan
from daemon.rules.conditions import NoDataGuard, Reading
from daemon.rules.lifecycle import AlertState, Told, fire_event, step
from daemon.rules.market import Market
from daemon.rules.tell import ONE_SHOT_TRIGGERS, headline_event, transition_event

__all__ = [
    "BAR_GRACE_MS",
    "DEFAULT_MAX_SKEW_MS",
    "DEFAULT_STALE_AFTER_MS",
    "Engine",
    "bar_end",
    "rule_of",
]

#: Legs of a multi-symbol rule on trades or quotes are judged together while each one's last
#: price is at most this much older than the newest: a thin ETF trades minutes apart, and its
#: last trade is still its price. Bars must be the same bar (a skew of 0).
DEFAULT_MAX_SKEW_MS = 5 * 60_000
#: A leg silent this long during the regular session makes a multi-symbol rule "no data".
DEFAULT_STALE_AFTER_MS = 15 * 60_000
#: The clock closes a bar this long after its end, so that ticks of the bar still on their way
#: (feed latency) are in it. The first tick after the end closes it at once.
BAR_GRACE_MS = 2_000


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
        #: `evaluate: bar_close` instances: their open and judged bars.
        self.bars = BarBook(plan.bar_instances)
        #: `plan.by_symbol` split into one-symbol instances and those over several (a step of
        #: many ticks lists the latter once, however many of their legs it carries).
        self._single: dict[str, list[Instance]] = {}
        self._multi: dict[str, list[Instance]] = {}
        for sym, insts in plan.by_symbol.items():
            self._single[sym] = [i for i in insts if not i.legs]
            self._multi[sym] = [i for i in insts if i.legs]
        #: Event time at which time-driven conditions were last evaluated.
        self._clock_ms = 0
        #: rule → (evaluations that raised, the last error): the runner reports them.
        self.errors: dict[str, tuple[int, str]] = {}

    def with_plan(self, plan: Plan, keep_rules: set[str]) -> tuple[Engine, list[str]]:
        """An engine on a new plan (a rule reload), and the alert keys whose state it reset:
        what carries over is `daemon.rules.carry.carry_over`."""
        market, states, dropped = carry_over(self, plan, keep_rules)
        engine = Engine(plan, states, market)
        engine.evaluations = self.evaluations
        engine._clock_ms = self._clock_ms
        self.bars.carry_to(engine.bars, keep_rules, rule_of)
        return engine, dropped

    def retire(self, keys: Iterable[str], now_ms: int, rules_left: set[str]) -> list[AlertEvent]:
        """Resolved events for the firing alerts among `keys`, which a reload stops tracking
        (`daemon.rules.carry.retired_events`)."""
        return retired_events(self, keys, now_ms, rules_left)

    def warm(self, ticks: Tick | Sequence[Tick]) -> None:
        """Replay history (one step): prices, windows and expressions' rolling state; nothing
        is judged and no alert is told."""
        if isinstance(ticks, Tick):
            ticks = (ticks,)
        market = self.market
        for t in ticks:
            market.record(t)
        now = max(market.quotes[t.symbol].ts_ms for t in ticks)
        for inst in self._instances_of(ticks):
            if inst.warms:
                inst.cond.measure(market, now)

    def on_tick(self, tick: Tick) -> list[AlertEvent]:
        """A step of one tick (the live common case)."""
        return self.step((tick,))

    def step(self, ticks: Sequence[Tick]) -> list[AlertEvent]:
        """Apply every tick of one event time, then judge each rule that reads any of them once.

        The caller groups ticks by event time (`Driver` does); the result does not depend on
        their order inside the step, except between two ticks of one symbol (the later wins,
        as the feed sent them). A tick older than its symbol's latest (a feed that replays
        what came before a restart, or out of order) warms windows but is never judged: a
        restart neither re-tells nor invents a transition from data it already judged.
        """
        market = self.market
        plan = self.plan
        out: list[AlertEvent] = []
        quotes = market.quotes
        if len(ticks) == 1:
            q = quotes.get(ticks[0].symbol)
            if q is not None and ticks[0].ts_ms < q.ts_ms:
                market.record(ticks[0])  # older than what was judged: it warms, no more
                return out
        else:
            is_late = [(q := quotes.get(t.symbol)) is not None and t.ts_ms < q.ts_ms for t in ticks]
            if any(is_late):
                for t, old in zip(ticks, is_late, strict=True):
                    if old:
                        market.record(t)
                ticks = [t for t, old in zip(ticks, is_late, strict=True) if not old]
                if not ticks:
                    return out
        if self.bars:  # bars that ended by this step: judged on the state before it
            bars = all(t.kind == "bar" for t in ticks)  # a bar tick at E still belongs to E's
            self._close_bars(max(t.ts_ms for t in ticks), out, inclusive=not bars)
        for t in ticks:
            market.record(t)
        if len(ticks) == 1:
            now = ticks[0].ts_ms
            instances = plan.by_symbol.get(ticks[0].symbol)
        else:
            now = max(market.quotes[t.symbol].ts_ms for t in ticks)
            instances = self._instances_of(ticks)
        if instances:
            for inst in instances:
                try:
                    if inst.legs:
                        self._judge_legs(inst, now, out)
                    else:
                        self._evaluate(inst, now, out)
                except Exception as e:  # one rule's failure must not stop the others
                    self._failed(inst, now, e, out)
        if plan.bar_by_symbol:
            quotes = market.quotes
            for t in ticks:
                for inst in plan.bar_by_symbol.get(t.symbol, ()):
                    self.bars.ticked(inst, quotes[t.symbol].ts_ms, t.kind)
            if self.bars:
                self._close_bars(now, out, inclusive=True)
        if (plan.clock_instances or plan.silence_watch) and now - self._clock_ms >= 1000:
            self._clock_ms = now  # event time moved on: time-driven conditions may have changed
            # the step's symbols were just judged: the clock judges the others (once a second,
            # so the set is made here, not per tick)
            self._tick_clock(now, out, skip={t.symbol for t in ticks})
        return out

    def _instances_of(self, ticks: Sequence[Tick]) -> list[Instance]:
        """The tick-judged instances reading any of these ticks' symbols, each once, in a
        fixed order (symbols sorted, then plan order) whatever the order of the ticks.

        Only an instance over several symbols can be listed twice (under each leg), so the
        one-symbol ones are copied a list at a time and only the others are de-duplicated.
        """
        if len(ticks) == 1:
            return self.plan.by_symbol.get(ticks[0].symbol, [])
        single, multi = self._single, self._multi
        out: list[Instance] = []
        legged: dict[str, Instance] = {}
        for sym in sorted({t.symbol for t in ticks}):
            one = single.get(sym)
            if one:
                out.extend(one)
            several = multi.get(sym)
            if several:
                for inst in several:
                    legged[inst.key] = inst
        if legged:
            out.extend(legged.values())
        return out

    def _judge_legs(self, inst: Instance, now: int, out: list[AlertEvent]) -> None:
        """A rule over several symbols: judged only while its legs are aligned."""
        quotes = self.market.quotes
        oldest = newest = now
        bars = True
        for sym in inst.legs:
            q = quotes.get(sym)
            if q is None:
                continue  # the condition itself says whether it can be judged without it
            ts = q.ts_ms
            if ts < oldest:
                oldest = ts
            elif ts > newest:
                newest = ts
            if q.kind != "bar":
                bars = False
        if now - oldest > inst.stale_after_ms and self._no_data_if_stale(inst, now, out):
            return
        max_skew = inst.max_skew_ms
        if max_skew is None:
            max_skew = 0 if bars else DEFAULT_MAX_SKEW_MS
        if newest - oldest <= max_skew:
            self._evaluate(inst, now, out)
        # else legs of different instants: wait for the others

    def _no_data_if_stale(self, inst: Instance, now: int, out: list[AlertEvent]) -> bool:
        """Whether a leg has been silent `stale_after` during the session: then the rule has
        no data, and `on_no_data` says what that stands for (keep: nothing is judged)."""
        opened = self.plan.sessions.regular_open(now)
        if opened is None:
            return False  # outside the session silence is normal
        quotes = self.market.quotes
        after = inst.stale_after_ms
        stale = [
            sym
            for sym in inst.legs
            if (q := quotes.get(sym)) is not None and now - max(q.ts_ms, opened) > after
        ]
        if not stale:
            return False
        guard = inst.cond
        if isinstance(guard, NoDataGuard) and guard.stands_for is not None:
            self._evaluate(inst, now, out, forced=guard.no_data(stale))
        return True

    def _legs_stale(self, inst: Instance, now: int) -> bool:
        """A cheap first look: is any leg older than `stale_after` at all?"""
        quotes = self.market.quotes
        after = inst.stale_after_ms
        return any((q := quotes.get(s)) is not None and now - q.ts_ms > after for s in inst.legs)

    # --- evaluate: bar_close ----------------------------------------------------------------
    def _close_bars(self, upto: int, out: list[AlertEvent], *, inclusive: bool) -> None:
        """Judge every open bar that ended before `upto` (or at it, when `inclusive`)."""
        for end, inst in self.bars.due(upto, inclusive=inclusive):
            try:
                if not (inst.legs and self._legs_stale(inst, end) and
                        self._no_data_if_stale(inst, end, out)):  # fmt: skip
                    self._evaluate(inst, end, out)
            except Exception as e:
                self._failed(inst, end, e, out)

    def on_clock(self, now_ms: int) -> list[AlertEvent]:
        """Evaluate what time alone can change (staleness, silence, bars that have ended),
        with no tick arriving: event time has reached `now_ms`."""
        out: list[AlertEvent] = []
        if not self.market.first_ms:
            self.market.first_ms = now_ms  # "silent since" starts with the first event of any kind
        if self.bars:
            self._close_bars(now_ms - BAR_GRACE_MS, out, inclusive=True)
        if now_ms > self._clock_ms:
            self._clock_ms = now_ms
            self._tick_clock(now_ms, out)
        return out

    def idle_until(self, now_ms: int) -> None:
        """Clock steps up to `now_ms` were skipped as idle (`daemon.rules.wake`): the time
        they would have judged to counts as judged."""
        if not self.market.first_ms:
            self.market.first_ms = now_ms
        if now_ms > self._clock_ms:
            self._clock_ms = now_ms

    def clock_stepped_back(self, now_ms: int) -> None:
        """The wall clock stepped back to `now_ms`: let `on_clock` judge time-driven conditions
        from there on, instead of waiting until it passes the time already judged. Never below
        the newest event time, which ticks have judged already."""
        newest = max((q.ts_ms for q in self.market.quotes.values()), default=0)
        self._clock_ms = min(self._clock_ms, max(now_ms, newest))

    def _tick_clock(
        self, now: int, out: list[AlertEvent], skip: AbstractSet[str] = frozenset()
    ) -> None:
        for inst in self.plan.clock_instances:
            if skip.isdisjoint(inst.cond.symbols):
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
            out.append(transition_event(inst, st, told, reading, at, self.market))
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
        if event or inst.trigger in ONE_SHOT_TRIGGERS:
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
                    out.append(headline_event(hr, key, labels, st, h, score))
        return out

    def take_dirty(self) -> dict[str, AlertState]:
        """States changed since the last call (what the runner must persist)."""
        dirty = {k: self.states[k] for k in self._dirty}
        self._dirty.clear()
        return dirty
