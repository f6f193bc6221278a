"""The evaluator's start-up: alert states and checkpoint restored, windows warmed from history."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from daemon.events import NEW_YORK, Tick
from daemon.rules.checkpoint import load_checkpoint
from daemon.rules.driver import Driver
from daemon.rules.lifecycle import AlertState
from daemon.rules.wallclock import WallClock
from daemon.store import Entry

if TYPE_CHECKING:
    from daemon.rules.compile import Plan
    from daemon.rules.runner import EvaluatorStats
    from daemon.store import Keys, StateStore, StreamStore

__all__ = ["REMINDER_GRACE_MS", "Restore"]

log = logging.getLogger("tickwatch.evaluator")
#: A reminder that fell due while the daemon was down is still told this late (its id is
#: stable, so one told before the restart is not delivered twice).
REMINDER_GRACE_MS = 300_000


class Restore(WallClock):
    """Base of `daemon.rules.runner.Evaluator`: `restore` at start-up, and the warm-up of
    windows from the tick stream (at start-up, and for a reload's new windows). The
    attributes are set by `Evaluator.__init__`."""

    streams: StreamStore
    state: StateStore
    keys: Keys
    plan: Plan
    stats: EvaluatorStats
    warmup_ms: int
    _anchor_warned_year: int

    async def restore(self) -> None:
        """Load persisted alert states and checkpoint, then warm windows from stream history."""
        k = self.keys
        for stream in (k.ticks, k.news):
            await self.streams.ensure_group(stream, k.EVAL_GROUP)
        raw_states = await self.state.states()
        states = {key: AlertState.from_json(v) for key, v in raw_states.items()}
        market = self.plan.new_market()
        self.driver = Driver(
            self.plan, states, market, reminders_after_ms=self._now() - REMINDER_GRACE_MS
        )
        firing = sum(s.state == "firing" for s in states.values())
        pending = sum(s.state == "pending" for s in states.values())
        await self._warm()  # history first: windows and expression state
        # then the exact prices and anchors
        load_checkpoint(self.driver.engine, await self.state.checkpoint())
        # symbols not heard from yet count as silent from now on, not from the open:
        # a daemon started at noon must not report every feed as hours overdue
        market.first_ms = self._now()
        # and until ticks arrive, the data's lag is what it was when they stopped: a daemon
        # restarted on a replay of April must not call the replayed symbols silent today
        newest = max((q.ts_ms for q in market.quotes.values()), default=0)
        if newest:
            self._lag_ms = self._now() - newest
        log.info(
            "evaluator ready: %d rule instances, %d headline rules; restored %d alert states "
            "(%d firing, %d pending); warmed windows with %d ticks",
            len(self.plan.instances),
            len(self.plan.headline_rules),
            len(states),
            firing,
            pending,
            self.stats.warmed,
        )

    def _warn_missing_anchors(self) -> None:
        """A YTD rule without its year-start price is silent; say so instead of staying quiet.

        Checked after every 20,000 ticks rather than at start-up, when a replay or backfill
        that brings the year-end price may simply not have run yet; said once per year.
        """
        m = self.driver.engine.market
        latest = max((q.ts_ms for q in m.quotes.values()), default=None)
        if latest is None:
            return
        year = dt.datetime.fromtimestamp(latest / 1000, NEW_YORK).year
        missing = sorted(s for s in m.ytd_symbols if m.anchors.get(s, dt.date(year, 1, 1)) is None)
        if missing and year != self._anchor_warned_year:
            self._anchor_warned_year = year
            log.warning(
                "no %d year-start price yet for %s: their YTD rules stay silent until a price "
                "from before Jan 1 arrives (replay a year-end bar, or backfill)",
                year,
                ", ".join(missing),
            )

    async def _warm(self, only: set[str] | None = None) -> None:
        """Replay already-processed ticks from the last `warmup_ms` into windows only.

        Prices and anchors then come from the checkpoint, which is exact; windows (and the
        rolling state of expressions) are too big to checkpoint every batch, and the stream
        already holds their history.
        """
        k = self.keys
        boundary = await self.streams.first_unprocessed(k.ticks, k.EVAL_GROUP)
        if boundary is None:
            return
        chunks: list[list[Entry]] = []
        before, newest_ts, done = boundary, None, False
        while not done:
            rows = await self.streams.history(k.ticks, before, 5000)
            if not rows:
                break
            chunks.append(rows)
            before = rows[0][1]
            first_ts = int(rows[0][2]["t"])
            newest_ts = newest_ts if newest_ts is not None else int(rows[-1][2]["t"])
            done = newest_ts - first_ts > self.warmup_ms or len(rows) < 5000
        windows = self.driver.engine.market.windows
        for rows in reversed(chunks):
            if only is None:  # start-up: prices, windows and expression state, in steps
                self.driver.warm(Tick.from_fields(fields) for _, _, fields in rows)
                self.stats.warmed += len(rows)
                continue
            for _, _, fields in rows:
                if fields["s"] in only:  # a reload: only windows that are new
                    windows[fields["s"]].add(int(fields["t"]), float(fields["p"]))
                    self.stats.warmed += 1
