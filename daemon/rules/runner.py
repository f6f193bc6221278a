"""The evaluator's I/O shell: ticks and headlines from Redis in, state and alerts to Redis out.

Reads the tick and news streams through a consumer group, runs the pure `Driver` (the same one
`tickwatch test` and the backtest run), and commits each batch in one MULTI/EXEC: changed alert
states, the evaluator checkpoint, new outbox entries, and the XACK of the entries it consumed.
Either all of that lands or none does, so a crash at any point replays the unacknowledged batch
against the last committed state and emits exactly the same transitions once.

A read that fills the batch may cut one event time in two; its last event time is held back
(unacknowledged) and judged with the next read, so that every tick of a step is applied before
a rule reads it. The clock steps the driver every few seconds of wall time, and right when the
next earnings reminder is due.

Here are the batch loop, its commit and the hot reload at a batch boundary; start-up (restore,
warm-up) is `daemon.rules.restore`, the wall clock and its steps `daemon.rules.wallclock`, the
checkpoint's fields `daemon.rules.checkpoint`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from daemon.alerts import AlertEvent
from daemon.events import Headline, Tick
from daemon.rules.checkpoint import checkpoint_fields
from daemon.rules.compile import Plan
from daemon.rules.driver import CLOCK_EVERY_MS, Driver
from daemon.rules.evaluate import Engine
from daemon.rules.restore import REMINDER_GRACE_MS, Restore
from daemon.store import Entry, StateStore, StreamStore

__all__ = ["Evaluator", "EvaluatorStats"]

log = logging.getLogger("tickwatch.evaluator")
#: How often time-driven conditions (staleness, bar closes) are checked against the wall clock.
CLOCK_EVERY_S = CLOCK_EVERY_MS / 1000
#: How long a read waits for new entries: also how long a reload waits for the batch
#: boundary at which it takes effect, when no ticks are coming.
BLOCK_MS = 20


@dataclass
class EvaluatorStats:
    ticks: int = 0
    headlines: int = 0
    alerts: int = 0
    batches: int = 0
    warmed: int = 0
    last_event_ms: int = 0


class Evaluator(Restore):
    """Runs `plan` over the streams of `streams`, committing through `state` (both on the
    same Redis, under the same keys; the outbox's cap is `state.maxlen`)."""

    def __init__(
        self,
        streams: StreamStore,
        state: StateStore,
        plan: Plan,
        *,
        consumer: str = "evaluator-1",
        batch: int = 1000,
        warmup_ms: int = 3_600_000,
        clock: Callable[[], int] | None = None,
    ):
        self.streams = streams
        self.state = state
        self.keys = streams.keys
        self.plan = plan
        self.consumer = consumer
        self.batch = batch
        self.warmup_ms = warmup_ms
        #: Wall-clock epoch ms (a simulation passes its own). The system's wall clock, the
        #: default, is read through `_now`, which notices when it steps; a clock passed in is
        #: taken as it is (a simulation's time jumps by design).
        self.clock: Callable[[], int] = clock or _wall_ms
        self._watch_steps = clock is None
        self._steady: tuple[int, float] | None = None  # the last reading: (wall ms, monotonic s)
        self.driver = Driver(plan, reminders_after_ms=self._now() - REMINDER_GRACE_MS)
        self.stats = EvaluatorStats()
        #: The latest transition of each alert key, for the API and the status page (one per
        #: alert the rules know, so bounded by the plan).
        self.last: dict[str, AlertEvent] = {}
        #: How far event time was behind the wall clock when ticks last arrived: a replay of
        #: old data (its bars close on its own event time), or a live feed, even a silent one.
        self._lag_ms = 0
        self.idle = asyncio.Event()
        self._next_plan: tuple[Plan, set[str]] | None = None
        #: Held while a batch or a clock step is judged, or a plan is switched: a new plan can
        #: then take effect while the loop waits in XREADGROUP, rather than when the wait ends
        #: (Redis ends a blocked read's timeout only on its 100 ms cron tick, at `hz 10`).
        self._turn = asyncio.Lock()
        self._apply_task: asyncio.Task[None] | None = None
        self._apply_error: BaseException | None = None
        self._running = False
        #: Ticks between checks for YTD rules that lack their year-start price.
        self.anchor_check_every = 20_000
        self._next_anchor_check = self.anchor_check_every
        self._anchor_warned_year = 0
        self._errors_told: dict[str, tuple[int, float]] = {}
        #: Set each time a new plan has taken effect (hot reload).
        self.plan_applied = asyncio.Event()
        #: The last event time of a full read, held back to be judged with the next read.
        self._held: list[Entry] = []

    @property
    def engine(self) -> Engine:
        return self.driver.engine

    # --- hot reload ---------------------------------------------------------------------
    def use_plan(self, plan: Plan, keep_rules: set[str]) -> None:
        """Switch to `plan` at the next batch boundary: never in the middle of a batch."""
        if self._next_plan is not None:
            # two reloads before a batch boundary: a rule is unchanged only if it is unchanged
            # since the plan running now, i.e. in both diffs (an edit, then the file watcher's
            # reload of the same edit, must not pass the edited rule off as unchanged)
            keep_rules = keep_rules & self._next_plan[1]
        self._next_plan = (plan, keep_rules)
        self.plan_applied.clear()
        if self._running and (self._apply_task is None or self._apply_task.done()):
            self._apply_task = asyncio.get_running_loop().create_task(self._apply_between_turns())

    async def _apply_between_turns(self) -> None:
        """Switch plans as soon as no batch is being judged; a failure ends the main loop."""
        try:
            async with self._turn:
                while self._next_plan is not None:  # one more may come while this one applies
                    await self._apply_next_plan()
        except Exception as e:  # e.g. Redis went away: the loop raises it, as if it had failed
            self._apply_error = e

    async def _apply_next_plan(self) -> None:
        if self._next_plan is None:
            return
        plan, keep = self._next_plan
        self._next_plan = None
        unfilled = {s for s in plan.new_market().windows if s not in self.engine.market.windows}
        old = self.driver
        self.driver, dropped = old.with_plan(plan, keep)
        self.plan = plan
        if dropped:
            now_ms = self.stats.last_event_ms or int(time.time() * 1000)  # the data's clock
            retired = old.retire(dropped, now_ms, {i.rule for i in plan.instances})
            fresh = self.engine.states
            # reset, no longer firing for delivery (inhibition), and those told resolve
            await self.state.retire({k: fresh[k].to_json() for k in dropped}, retired)
            self.stats.alerts += len(retired)
        if unfilled:
            await self._warm(unfilled)
        self.plan_applied.set()
        log.info(
            "rules reloaded: %d rule instances, %d headline rules; %d unchanged rules kept their "
            "state, %d alert states reset",
            len(plan.instances), len(plan.headline_rules), len(keep), len(dropped),
        )  # fmt: skip

    # --- main loop ----------------------------------------------------------------------
    async def run(self) -> None:
        await self.restore()
        k = self.keys
        streams = (k.ticks, k.news)
        # first whatever this consumer read but never acknowledged (a crash mid-batch)
        while True:
            entries = await self.streams.read_group(
                streams, k.EVAL_GROUP, self.consumer, count=self.batch, block_ms=None, pending=True
            )
            if not entries:
                break
            log.info("evaluator re-processing %d unacknowledged entries", len(entries))
            await self.process(entries)
        next_clock = 0.0
        self._running = True
        try:
            while True:
                async with self._turn:
                    self._raise_apply_error()
                    await self._apply_next_plan()
                    if time.monotonic() >= next_clock or self._reminder_due():
                        next_clock = time.monotonic() + CLOCK_EVERY_S
                        await self.check_clock()
                entries = await self.streams.read_group(
                    streams, k.EVAL_GROUP, self.consumer, count=self.batch, block_ms=BLOCK_MS
                )
                async with self._turn:  # a plan switched during the read judges this batch
                    self._raise_apply_error()
                    await self._apply_next_plan()
                    if entries:
                        self.idle.clear()
                        ticks_stream = k.ticks
                        full = sum(e[0] == ticks_stream for e in entries) >= self.batch
                        await self.process(entries, hold_last=full)
                    elif self._held:
                        await self.process([])  # the stream went quiet: the held time is done
                    else:
                        self.idle.set()
        finally:
            self._running = False
            if self._apply_task is not None and not self._apply_task.done():
                self._apply_task.cancel()

    def _raise_apply_error(self) -> None:
        if self._apply_error is not None:
            e, self._apply_error = self._apply_error, None
            raise e

    def _reminder_due(self) -> bool:
        due = self.driver.next_due_ms()
        return due is not None and due <= self._now()

    async def process(self, entries: list[Entry], *, hold_last: bool = False) -> list[AlertEvent]:
        """Evaluate one batch and commit its effects atomically.

        With `hold_last` (the read filled the batch, so the same event time may go on in the
        stream) the entries of the batch's last event time wait for the next call.
        """
        k = self.keys
        driver = self.driver
        acks: dict[str, list[str]] = {}
        # the driver puts ticks and headlines in event-time order; here only the hold-back
        entries = [*self._held, *entries]
        self._held = []
        if hold_last and entries:
            times = [_event_time(e) for e in entries]
            last = max(times)
            keep = [e for e, t in zip(entries, times, strict=True) if t != last]
            if keep:  # never hold everything: one event time larger than a batch goes on
                self._held = [e for e, t in zip(entries, times, strict=True) if t == last]
                entries = keep
        events: list[Tick | Headline] = []
        ticks_stream = k.ticks
        for stream, entry_id, fields in entries:
            acks.setdefault(stream, []).append(entry_id)
            try:
                if stream == ticks_stream:
                    tick = Tick.from_fields(fields)
                    events.append(tick)
                    self.stats.ticks += 1
                    self.stats.last_event_ms = max(self.stats.last_event_ms, tick.ts_ms)
                else:
                    events.append(Headline.from_fields(fields))
                    self.stats.headlines += 1
            except (KeyError, ValueError) as e:
                log.warning("evaluator skipped malformed entry %s in %s: %r", entry_id, stream, e)
        if events and self.stats.last_event_ms:
            self._lag_ms = self._now() - self.stats.last_event_ms
        alerts = driver.feed(events)
        await self._commit(alerts, acks)
        self.stats.batches += 1
        engine = driver.engine
        if engine.errors:
            self._report_errors()
        if self.stats.ticks >= self._next_anchor_check:
            self._next_anchor_check = self.stats.ticks + self.anchor_check_every
            self._warn_missing_anchors()
        return alerts

    def _report_errors(self) -> None:
        """Rules whose evaluation raised since the last report: one warning per rule a minute."""
        now = time.monotonic()
        for rule, (count, last) in self.engine.errors.items():
            seen, at = self._errors_told.get(rule, (0, 0.0))
            if count > seen and now - at >= 60:
                self._errors_told[rule] = (count, now)
                log.warning(
                    "rule %s failed %d time(s) (%d so far): %s; its on_error decides the alert",
                    rule, count - seen, count, last,
                )  # fmt: skip

    async def check_clock(self, now_ms: int | None = None) -> list[AlertEvent]:
        """Step the driver's clock to the wall clock, and commit what it tells.

        Reminders are due on the wall clock always. Staleness, silence and bar closes only
        while the feed is live: when ticks last arrived, their event time was within 15
        minutes of the wall clock (or none came yet). A replay of March data must not make
        every symbol look silent in November, and its bars close on its own event time; a live
        feed that has gone silent for an hour is still live, and its silence is what counts.
        """
        now_ms = self._now() if now_ms is None else now_ms
        if not self.driver.timed:
            return []
        replaying = self._lag_ms > 15 * 60_000
        alerts = self.driver.clock(now_ms, reminders_only=replaying)
        if alerts or not replaying:
            await self._commit(alerts, {})
        for a in alerts:
            if a.comparison == "reminder":
                log.info("reminder due: %s", a.summary)
        return alerts

    async def _commit(self, alerts: list[AlertEvent], acks: dict[str, list[str]]) -> None:
        """States, checkpoint, outbox entries and acks in one MULTI/EXEC (`StateStore.commit`)."""
        engine = self.engine
        dirty = engine.take_dirty()
        await self.state.commit(
            states={key: st.to_json() for key, st in dirty.items()},
            checkpoint=checkpoint_fields(engine),
            alerts=alerts,
            acks=acks,
        )
        self.stats.alerts += len(alerts)
        for a in alerts:
            self.last[a.key] = a
            log.debug("alert %s %s", a.state, a.key)


def _event_time(entry: Entry) -> int:
    try:
        return int(entry[2].get("t", 0))
    except ValueError:
        return 0


def _wall_ms() -> int:
    return int(time.time() * 1000)
