"""What every source shares: its config fields, the edge check, batched writes, scheduling.

Providers differ only in how they obtain events; everything after that (refusing bad events with
a counted reason, writing a batch atomically with its resume cursor, logging refusals without
flooding the log) happens here, once, for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from daemon.events import Headline, Tick
from daemon.sources.arbiter import FeedArbiter
from daemon.sources.normalize import REASONS, EdgeFilter
from daemon.sources.sentiment import with_local_score
from daemon.sources.source_config import SourceConfig
from daemon.store import CalendarStore, FeedStatusStore, Reconnect, StreamStore, run_resilient

__all__ = ["FatalSourceError", "Source", "SourceConfig", "SourceContext"]

log = logging.getLogger("tickwatch.sources")


class FatalSourceError(Exception):
    """A problem retrying cannot fix (a wrong API key, a feed outside the plan): stop the daemon.

    The message is shown to the operator as is, so it must say what to do and hold no secret.
    """


async def _no_ops(summary: str, labels: Mapping[str, str]) -> None:
    log.warning("ops alert (no ops channel configured): %s", summary)


def _no_fatal(source: Source, error: FatalSourceError) -> None:
    log.error("source %s cannot run: %s", source.name, error)


@dataclass
class SourceContext:
    """What a source needs from the daemon: where to write, how strict to be, and whom to tell.

    `symbols` is what the loaded rules (plus `symbols:` in alerts.yaml) need; live feeds subscribe
    to it and get `Source.resubscribe` when a reload changes it. `ops` raises an ops alert on the
    daemon's ops channels (a silent feed, a refused subscription); `on_fatal` is how a source
    that cannot work (bad credentials) makes the daemon exit non-zero instead of looping.
    `calendar` and `feed_status` are the other stores a source writes, on `store`'s connection.
    """

    store: StreamStore
    edge: EdgeFilter
    base_dir: Path
    symbols: frozenset[str] = frozenset()
    ops: Callable[[str, Mapping[str, str]], Awaitable[None]] = _no_ops
    on_fatal: Callable[[Source, FatalSourceError], None] = field(default=_no_fatal)
    #: Shared by every live feed of the daemon: picks which feed speaks for a symbol.
    arbiter: FeedArbiter | None = None
    #: The daemon's word that Redis is back (it restarted its embedded server): retry now.
    reconnect: Reconnect | None = None
    #: Where calendar sources write the earnings calendar.
    calendar: CalendarStore = field(init=False)
    #: Where live feeds write their status.
    feed_status: FeedStatusStore = field(init=False)

    def __post_init__(self) -> None:
        self.calendar = CalendarStore(self.store.redis, self.store.keys)
        self.feed_status = FeedStatusStore(self.store.redis, self.store.keys)


class Source(ABC):
    kind: ClassVar[str]
    config_model: ClassVar[type[SourceConfig]]

    def __init__(self, config: SourceConfig, ctx: SourceContext):
        self.config = config
        self.name = config.name
        self.ctx = ctx
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.done = asyncio.Event()
        self._last_reject_log = 0.0

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        """Default: run once, now, for as long as the source streams."""
        scheduler.add_job(
            self._run_guarded,
            "date",
            run_date=datetime.now(UTC),
            id=f"source:{self.name}",
            name=f"source {self.name}",
            misfire_grace_time=None,
        )

    async def _run_guarded(self) -> None:
        """The scheduler's job: `run` through Redis outages; a fatal error stops the daemon."""
        try:
            await run_resilient(f"source {self.name}", self.run, log,
                                reconnect=self.ctx.reconnect)  # fmt: skip
        except asyncio.CancelledError:
            # The daemon is stopping (the scheduler cancels the jobs still running when it
            # shuts down): the job ends here as finished, so APScheduler logs no traceback.
            log.debug("source %s stopped", self.name)
        except FatalSourceError as e:
            self.ctx.on_fatal(self, e)
        except Exception:
            log.exception("source %s stopped on an error", self.name)
        finally:
            self.done.set()

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections and sessions when the daemon stops."""

    async def resubscribe(self, symbols: frozenset[str]) -> None:  # noqa: B027 - optional hook
        """The symbols the rules need changed (a reload): live feeds adjust their subscription."""

    @abstractmethod
    async def run(self) -> None:
        """Stream events into `emit` until done or cancelled."""

    async def emit(
        self,
        ticks: Sequence[Tick] = (),
        headlines: Sequence[Headline] = (),
        *,
        cursor: Mapping[str, str] | None = None,
        pre_rejected: Mapping[str, int] | None = None,
    ) -> int:
        """Check a batch at the edge and write what passes; returns how many were accepted."""
        now_ms = int(time.time() * 1000)
        edge = self.ctx.edge
        clock = edge.snapshot()
        rejects: Counter[str] = Counter(pre_rejected or {})
        good_ticks = []
        for t in ticks:
            reason = edge.tick_reason(t, now_ms)
            if reason is None:
                good_ticks.append(t)
            else:
                rejects[reason] += 1
                log.debug("refused tick %s: %s", t, reason)
        good_news = []
        for h in headlines:
            reason = edge.headline_reason(h, now_ms)
            if reason is None:
                good_news.append(with_local_score(h))
            else:
                rejects[reason] += 1
        try:
            await self.ctx.store.write(
                good_ticks,
                good_news,
                rejects=rejects,
                cursor=(self.name, cursor) if cursor is not None else None,
            )
        except BaseException:
            edge.restore(clock)  # nothing was written: the batch will come again
            raise
        n = len(good_ticks) + len(good_news)
        self.accepted += n
        if rejects:
            self.rejected.update(rejects)
            self._log_rejects(rejects)
        return n

    def _log_rejects(self, batch: Counter[str]) -> None:
        """At most one warning per source per 10 s, with totals, so bad feeds can't flood logs."""
        now = time.monotonic()
        if now - self._last_reject_log < 10 and self._last_reject_log:
            return
        self._last_reject_log = now
        detail = ", ".join(f"{n} {r} ({REASONS.get(r, r)})" for r, n in sorted(batch.items()))
        total = sum(self.rejected.values())
        log.warning("source %s refused %s; %d refused so far", self.name, detail, total)
