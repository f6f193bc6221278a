"""Running a live feed source in a test: a real Redis context, recorded ops alerts and fatals.

`FeedHarness.start(source)` runs the source the way the daemon does (`Source._run_guarded`, so a
`FatalSourceError` reaches `on_fatal`), and `stop()` cancels whatever is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from daemon.events import Headline, Tick
from daemon.sources.arbiter import FeedArbiter
from daemon.sources.base import FatalSourceError, Source, SourceContext
from daemon.sources.normalize import EdgeFilter
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.helpers import wait_until

__all__ = ["FAST", "UNIVERSE", "FeedHarness"]

UNIVERSE = frozenset({"AAPL", "MSFT", "NVDA", "TSLA"})

#: Config fields that keep tests fast: quick reconnects, no silence check unless asked.
FAST: dict[str, Any] = {
    "backoff_initial": timedelta(milliseconds=20),
    "backoff_max": timedelta(milliseconds=100),
    "silent_after": None,
    "status_every": timedelta(milliseconds=100),
}


@dataclass
class FeedHarness:
    redis: Redis
    keys: Keys
    universe: frozenset[str] = UNIVERSE
    ops: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    fatal: list[tuple[str, FatalSourceError]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def ctx(self, arbiter: FeedArbiter | None = None) -> SourceContext:
        async def ops(summary: str, labels: Mapping[str, str]) -> None:
            self.ops.append((summary, dict(labels)))

        def on_fatal(source: Source, error: FatalSourceError) -> None:
            self.fatal.append((source.name, error))

        return SourceContext(
            StreamStore(self.redis, self.keys),
            EdgeFilter(self.universe),
            Path("."),
            symbols=self.universe,
            ops=ops,
            on_fatal=on_fatal,
            arbiter=arbiter,
        )

    def start(self, source: Source) -> asyncio.Task[None]:
        task = asyncio.create_task(source._run_guarded())
        self.tasks.append(task)
        return task

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def ticks(self) -> list[Tick]:
        return [Tick.from_fields(f) for _, f in await self.redis.xrange(self.keys.ticks)]

    async def headlines(self) -> list[Headline]:
        return [Headline.from_fields(f) for _, f in await self.redis.xrange(self.keys.news)]

    async def wait_ticks(self, n: int, timeout: float = 5.0) -> list[Tick]:
        """Until the ticks stream holds at least `n` entries."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (count := await self.redis.xlen(self.keys.ticks)) < n:
            if loop.time() > deadline:
                raise AssertionError(f"{count} ticks in Redis after {timeout}s, wanted {n}")
            await asyncio.sleep(0.01)
        return await self.ticks()

    async def wait_fatal(self, timeout: float = 5.0) -> FatalSourceError:
        await wait_until(lambda: bool(self.fatal), timeout, "a fatal source error")
        return self.fatal[0][1]
