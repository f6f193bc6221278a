"""The one loop that runs rules: events and clock steps in, alert transitions out. Pure.

Everything that judges rules goes through `Driver`: the daemon's evaluator (a Redis wrapper
around it, `rules/runner.py`), `tickwatch test`, and the backtest on simulated time. It owns
what used to be written once per caller:

- grouping events into event-time steps: every tick carrying one time is applied before any
  rule reads it (`Engine.step`), whatever order the ticks came in;
- the clock: staleness, silent inputs and bars that have ended change with time alone;
- earnings reminders, due at a time whether or not anything trades.

Time is passed in (event time with each event, `clock(now_ms)` for the rest); nothing here
reads a clock, sleeps or does I/O, so a test of this class is a test of the daemon's judgement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from daemon.alerts import AlertEvent
from daemon.events import Headline, Tick
from daemon.rules.compile import Plan
from daemon.rules.evaluate import Engine
from daemon.rules.lifecycle import AlertState
from daemon.rules.market import Market
from daemon.rules.timers import Timer, timers_after
from daemon.rules.wake import Wake

__all__ = ["CLOCK_EVERY_MS", "Driver", "ordered_steps", "simulate", "steps"]

#: How often the daemon's clock steps (staleness, silence, bar closes, reminders); simulated
#: runs step at the same cadence so that they tell what the daemon would, when it would.
CLOCK_EVERY_MS = 5_000

Event = Tick | Headline


def _order(ev: Event) -> tuple[int, int]:
    # at one instant ticks come first: a headline is judged on the prices of its moment
    return (ev.ts_ms, 0 if isinstance(ev, Tick) else 1)


def steps(events: Iterable[Event]) -> Iterator[Sequence[Tick] | Headline]:
    """Events in event-time order as steps: each run of ticks with one time is one step."""
    return ordered_steps(sorted(events, key=_order))


def ordered_steps(events: Iterable[Event]) -> Iterator[Sequence[Tick] | Headline]:
    """`steps` of events already in `steps`' order (time, then ticks before headlines), read
    lazily: a backtest streams a year of data through this without holding it."""
    run: list[Tick] = []
    for ev in events:
        if isinstance(ev, Headline):
            if run:
                yield run
                run = []
            yield ev
        elif run and ev.ts_ms != run[0].ts_ms:
            yield run
            run = [ev]
        else:
            run.append(ev)
    if run:
        yield run


class Driver:
    """Rules over a plan, judged on steps of events and of the clock."""

    def __init__(
        self,
        plan: Plan,
        states: dict[str, AlertState] | None = None,
        market: Market | None = None,
        *,
        reminders_after_ms: int | None = None,
    ):
        self.engine = Engine(plan, states, market)
        #: Reminders due after this time are told as time passes them; None: from the first
        #: time this driver sees (a reminder that was due before it started is not told).
        self._reminded_ms = reminders_after_ms
        self._timers: list[Timer] = []
        self._wake: Wake | None = None
        self._load_timers()

    @classmethod
    def around(cls, engine: Engine, *, reminders_after_ms: int | None = None) -> Driver:
        """A driver over an engine that already holds state (a reload, a benchmark)."""
        d = cls.__new__(cls)
        d.engine = engine
        d._reminded_ms = reminders_after_ms
        d._timers = []
        d._wake = None
        d._load_timers()
        return d

    @property
    def plan(self) -> Plan:
        return self.engine.plan

    @property
    def timed(self) -> bool:
        """Whether clock steps can tell anything (if not, a simulation skips them)."""
        p = self.plan
        return bool(p.clock_instances or p.silence_watch or p.bar_instances or self._timers)

    def upcoming(self) -> list[Timer]:
        """The reminders still to come, in time order."""
        return list(self._timers)

    def next_due_ms(self) -> int | None:
        """When the next reminder is due, so the daemon can step its clock right then."""
        return self._timers[0].fire_ms if self._timers else None

    # --- input ----------------------------------------------------------------------------
    def feed(self, events: Iterable[Event]) -> list[AlertEvent]:
        """Judge a batch of events (any order inside it); the transitions they cause."""
        out: list[AlertEvent] = []
        for st in steps(events):
            self.feed_step(st, out)
        return out

    def feed_step(self, st: Sequence[Tick] | Headline, out: list[AlertEvent]) -> None:
        """Judge one of `steps`' steps, adding what it tells to `out` (a simulation, whose
        events are in steps already, calls this directly)."""
        engine = self.engine
        if isinstance(st, Headline):
            self._remind(st.ts_ms, out)
            out += engine.on_headline(st)
            return
        ts = st[0].ts_ms
        if self._timers or self._reminded_ms is None:
            self._remind(ts - 1, out)  # reminders due before this step come first
        if len(st) == 1:
            if st[0].history:
                engine.warm(st)  # the past warms, and is never judged
            else:
                out += engine.on_tick(st[0])
            return
        past = [t for t in st if t.history]
        if past:
            engine.warm(past)
            st = [t for t in st if not t.history]
        if st:
            out += engine.step(st)

    def clock(self, now_ms: int, *, reminders_only: bool = False) -> list[AlertEvent]:
        """Time has reached `now_ms`: reminders due by then, and (unless `reminders_only`, as
        while the daemon replays old data) staleness, silence and bars that have ended."""
        out: list[AlertEvent] = []
        self._remind(now_ms, out)
        if not reminders_only:
            out += self.engine.on_clock(now_ms)
        return out

    def clock_stepped_back(self, now_ms: int) -> None:
        """The daemon's wall clock stepped back to `now_ms` (a simulated clock never does):
        staleness, silence and bars are judged from there, not once it is past where it was.
        Reminders told stay told; those still to come are due when they are due."""
        self.engine.clock_stepped_back(now_ms)

    def quiet_until(self, now_ms: int) -> int:
        """The earliest time after `now_ms` at which a clock step could tell or change
        anything (`daemon.rules.wake`); simulations skip the steps before it."""
        wake = self._wake
        if wake is None or wake.plan is not self.engine.plan:
            wake = self._wake = Wake(self.engine.plan)
        return wake.until(self.engine, now_ms, self._timers[0].fire_ms if self._timers else None)

    def idle_until(self, now_ms: int) -> None:
        """Clock steps up to `now_ms` were skipped as idle (`quiet_until`): keep the little
        bookkeeping they would have done, so what follows is judged as if they had run."""
        if self._reminded_ms is not None and now_ms > self._reminded_ms:
            self._reminded_ms = now_ms
        self.engine.idle_until(now_ms)

    def warm(self, ticks: Iterable[Tick]) -> None:
        """History: rebuild prices, windows and rolling state in steps; tell nothing."""
        for st in steps(ticks):
            if not isinstance(st, Headline):
                self.engine.warm(st)

    # --- reload ---------------------------------------------------------------------------
    def with_plan(self, plan: Plan, keep_rules: set[str]) -> tuple[Driver, list[str]]:
        """A driver on a new plan (a rule reload or a new calendar): see `Engine.with_plan`.
        Reminders already told stay told."""
        engine, dropped = self.engine.with_plan(plan, keep_rules)
        return Driver.around(engine, reminders_after_ms=self._reminded_ms), dropped

    def retire(self, keys: Iterable[str], now_ms: int, rules_left: set[str]) -> list[AlertEvent]:
        return self.engine.retire(keys, now_ms, rules_left)

    # --- reminders ------------------------------------------------------------------------
    def _load_timers(self) -> None:
        if self._reminded_ms is not None:
            p = self.plan
            self._timers = timers_after(p.reminder_rules, p.earnings, self._reminded_ms)

    def _remind(self, now_ms: int, out: list[AlertEvent]) -> None:
        if self._reminded_ms is None:
            self._reminded_ms = now_ms
            self._load_timers()
            return
        if now_ms <= self._reminded_ms:
            return
        self._reminded_ms = now_ms
        timers = self._timers
        n = 0
        while n < len(timers) and timers[n].fire_ms <= now_ms:
            out.append(timers[n].alert())
            n += 1
        if n:
            del timers[:n]


def simulate(
    driver: Driver,
    events: Iterable[Event],
    *,
    start_ms: int | None,
    until_ms: int | None,
    clock_every_ms: int = CLOCK_EVERY_MS,
    ordered: bool = False,
    skip_idle: bool = True,
    on_step: Callable[[Sequence[Tick] | Headline, list[AlertEvent]], None] | None = None,
) -> list[AlertEvent]:
    """Run events through `driver` on simulated time, the clock stepping every
    `clock_every_ms` from `start_ms` to `until_ms` as the daemon's would (at one instant the
    events come first). What `tickwatch test` and the backtest tell.

    `ordered`: the events are already in `steps` order and are read lazily. `skip_idle`: grid
    points before `Driver.quiet_until` are not stepped, which tells the same (see
    `daemon.rules.wake`) in a fraction of the time. `on_step(step, told)` is called after each
    event step (a backtest samples what its rules judge there). `start_ms` None: the clock
    starts at the first event; `until_ms` None: it stops at the last.
    """
    out: list[AlertEvent] = []
    timed = driver.timed
    every = clock_every_ms
    tick = start_ms if start_ms is not None else -1
    last_ts = start_ms

    def run_clock(upto: int, *, inclusive: bool) -> None:
        nonlocal tick
        while tick < upto or (inclusive and tick == upto):
            out.extend(driver.clock(tick))
            tick += every
            if skip_idle and (tick < upto or (inclusive and tick == upto)):
                wake = driver.quiet_until(tick - every)
                if wake > tick:  # the grid points before `wake` would tell nothing
                    first = tick + -(-(wake - tick) // every) * every  # on the grid
                    last = upto if inclusive else upto - 1  # the last grid point allowed
                    stop = min(first, tick + ((last - tick) // every + 1) * every)
                    if stop > tick:
                        driver.idle_until(stop - every)
                        tick = stop

    for st in ordered_steps(events) if ordered else steps(events):
        ts = st.ts_ms if isinstance(st, Headline) else st[0].ts_ms
        if start_ms is None:
            start_ms = tick = ts
        last_ts = ts
        if timed:
            run_clock(ts, inclusive=False)
        if on_step is None:
            driver.feed_step(st, out)
        else:
            told: list[AlertEvent] = []
            driver.feed_step(st, told)
            out += told
            on_step(st, told)
    if until_ms is None:
        if last_ts is None:
            return out  # no events, no time
        until_ms = last_ts
    if timed:
        run_clock(until_ms, inclusive=True)
    out += driver.clock(until_ms)
    return out
