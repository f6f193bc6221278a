"""The daemon's APScheduler jobs: the sources' polls and feeds (after a backfill), the heartbeat.

Time-driven work runs here, on the daemon's event loop: each source schedules its own job
(`Source.schedule`), a backfill source first fills the minute bars and only then are the live
sources scheduled, and the heartbeat writes a one-line activity summary to Redis every
`HEARTBEAT_S` seconds (logged when it changes). With `deadman:` configured, the dead-man's
switch (`deadman.py`) pings its URL every minute while `/healthz` says the daemon is up.
`app.Daemon` builds one `Jobs`, starts it once everything it reads is running, and shuts it down
at stop, after the sources are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from daemon.deadman import Deadman, DeadmanSettings, HealthCheck
from daemon.durations import format_duration
from daemon.notify import Delivery
from daemon.rules import Evaluator
from daemon.sources import AlpacaBackfillSource, Source, run_backfills
from daemon.store import REDIS_DOWN, OpsStore

__all__ = ["HEARTBEAT_S", "Jobs"]

log = logging.getLogger("tickwatch")
HEARTBEAT_S = 10

#: Starts a long-running task the daemon owns (its `_spawn`: a failure stops the daemon).
Spawn = Callable[[Coroutine[Any, Any, None], str], None]


class _CancelledJobFilter(logging.Filter):
    """APScheduler logs a job cancelled by its shutdown as an error, with a traceback. The
    daemon stops its scheduler with jobs still running (a poll under way), so that is expected
    at stop, not an error: drop those records; any other failure of a job is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


_JOB_LOG = logging.getLogger("apscheduler.executors.default")
if not any(isinstance(f, _CancelledJobFilter) for f in _JOB_LOG.filters):
    _JOB_LOG.addFilter(_CancelledJobFilter())


class Jobs:
    """One scheduler (UTC) with the sources' jobs, the heartbeat and the dead-man's switch.

    `deadman` (alerts.yaml's `deadman:`, off when None or its url is empty) needs `health`, what
    `/healthz` answers (`daemon.web.health.health` bound to the daemon): pings go out only while it
    says 200 with Redis answering."""

    def __init__(
        self,
        sources: Sequence[Source],
        ops_store: OpsStore,
        evaluator: Evaluator,
        delivery: Delivery | None,
        *,
        started_at: float,
        deadman: DeadmanSettings | None = None,
        health: HealthCheck | None = None,
    ):
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.sources = sources
        self.ops_store = ops_store
        self.evaluator = evaluator
        self.delivery = delivery
        self.started_at = started_at
        self._last_activity = ""
        self.deadman: Deadman | None = None
        if deadman is not None and deadman.enabled:
            if health is None:
                raise ValueError("the dead-man's switch needs the daemon's health check")
            self.deadman = Deadman(deadman, health)

    def start(self, spawn: Spawn) -> None:
        """Schedule the sources (a backfill first, as a task of `spawn`'s), the heartbeat and
        the dead-man's switch."""
        if any(isinstance(src, AlpacaBackfillSource) for src in self.sources):
            # minute bars first, so windows and anchors are right before live ticks arrive
            spawn(self._backfill_then_stream(), "backfill")
        else:
            self._schedule_sources()
        self.scheduler.add_job(self._heartbeat, "interval", seconds=HEARTBEAT_S, id="heartbeat",
                               max_instances=1, coalesce=True)  # fmt: skip
        if self.deadman is not None:
            # the first ping at once: the service hears a restarted daemon is back
            self.scheduler.add_job(self._deadman, "interval", seconds=self.deadman.every_s,
                                   id="deadman", max_instances=1, coalesce=True,
                                   next_run_time=datetime.now(UTC))  # fmt: skip
            log.info(
                "deadman: pinging %s every %s while the daemon is healthy",
                self.deadman.host,
                format_duration(self.deadman.settings.every),
            )
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop the scheduler without waiting: a job still running (a poll) is cancelled."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _schedule_sources(self, skip: tuple[type[Source], ...] = ()) -> None:
        for src in self.sources:
            if not isinstance(src, skip):
                src.schedule(self.scheduler)

    async def _backfill_then_stream(self) -> None:
        n = await run_backfills(self.sources)
        log.info("backfill wrote %d bar(s); starting the live sources", n)
        self._schedule_sources(skip=(AlpacaBackfillSource,))

    async def _deadman(self) -> None:
        if self.deadman is not None:
            with contextlib.suppress(asyncio.CancelledError):  # cancelled: at stop
                await self.deadman.ping()

    async def _heartbeat(self) -> None:
        with contextlib.suppress(*REDIS_DOWN, asyncio.CancelledError):  # cancelled: at stop
            await self._beat()

    async def _beat(self) -> None:
        st = self.evaluator.stats
        sent = self.delivery.sent if self.delivery else {}
        activity = (
            f"ticks={st.ticks} headlines={st.headlines} alerts={st.alerts} "
            f"sent={sum(sent.values())} dead={self.delivery.dead if self.delivery else 0}"
        )
        summary = f"{activity} uptime={time.monotonic() - self.started_at:.0f}s"
        await self.ops_store.heartbeat(summary, ttl_ms=HEARTBEAT_S * 1000 + 1000)
        if activity != self._last_activity:  # quiet while idle; Redis has the live summary
            self._last_activity = activity
            log.info("heartbeat: %s", summary)
