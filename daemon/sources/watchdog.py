"""A live feed's health as operators see it: silence watchdog, status, ops alerts, parse warnings.

A silent feed is told from a quiet market by the NYSE regular session: only inside it does no
data for `silent_after` raise one ops alert and force a reconnect. A frame we cannot read is
counted and warned about at most every 10 s, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import abstractmethod
from collections import Counter, deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from websockets.frames import CloseCode

from daemon.sources.base import Source
from daemon.sources.feed_types import FeedConfig, FeedState
from daemon.sources.meter import RateMeter
from daemon.store import REDIS_DOWN

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["LOG_EVERY_S", "FeedWatch"]

log = logging.getLogger("tickwatch.sources.feed")

#: How many parse-error and refusal warnings a feed may log: one per this many seconds.
LOG_EVERY_S = 10.0


class FeedWatch(Source):
    """The health half of `FeedSource`, which sets this state up and keeps it current."""

    config: FeedConfig
    provider: ClassVar[str]
    state: FeedState
    reconnects: int
    parse_errors: Counter[str]
    standby: int
    duplicates: int
    ignored: int
    last_error: str
    _in_session: Callable[[int], bool] | None
    _rate: RateMeter
    _last_msg: float
    _last_data: float
    _connected_at: float
    _silent: bool
    _forced: str
    _last_parse_log: float
    _ws: ClientConnection | None
    _wanted: frozenset[str]
    _status_kick: asyncio.Event
    _ops_sent: set[tuple[str, str]]
    _background: set[asyncio.Task[None]]
    _latency: deque[float]

    @abstractmethod
    def endpoint(self) -> str: ...

    @abstractmethod
    def redact(self, text: str) -> str: ...

    def ops_once(self, problem: str, summary: str, key: str = "") -> None:
        """One ops alert per distinct (`problem`, `key`): a refusal may repeat, the page won't."""
        if (problem, key) in self._ops_sent:
            return
        self._ops_sent.add((problem, key))
        self._spawn(self._ops(summary, problem))

    def parse_error(self, reason: str) -> None:
        """Count a message we could not use; warn at most every 10 s with the totals."""
        self.parse_errors[reason] += 1
        now = time.monotonic()
        if self._last_parse_log and now - self._last_parse_log < LOG_EVERY_S:
            return
        self._last_parse_log = now
        detail = ", ".join(f"{n} {r}" for r, n in self.parse_errors.most_common())
        log.warning("source %s: unreadable messages so far: %s", self.name, detail)

    # -- silence ------------------------------------------------------------------------------
    async def _watch_silence(self) -> None:
        assert self.config.silent_after is not None
        limit = self.config.silent_after.total_seconds()
        every = min(max(limit / 4, 0.01), 5.0)
        while True:
            await asyncio.sleep(every)
            ws = self._ws
            if ws is None or self.state != "connected" or not self._wanted:
                continue
            quiet = time.monotonic() - max(self._last_data, self._connected_at)
            if quiet < limit:
                continue
            assert self._in_session is not None
            if not self._in_session(int(time.time() * 1000)):
                continue
            if not self._silent:
                self._silent = True
                summary = (
                    f"source {self.name} ({self.provider}) sent no data for {quiet:.0f}s during "
                    f"the regular session; reconnecting"
                )
                log.warning("%s", summary)
                await self._ops(summary, "silent")
            else:
                log.info("source %s: still silent; reconnecting again", self.name)
            self._forced = f"no data for {quiet:.0f}s"
            with contextlib.suppress(Exception):
                await ws.close(CloseCode.GOING_AWAY, "silent feed")

    # -- status and ops -----------------------------------------------------------------------
    def _set_state(self, state: FeedState) -> None:
        if state != self.state:
            self.state = state
            self._status_kick.set()

    @property
    def fresh(self) -> bool:
        """Connected, and not silent in the session: its prices can be trusted now."""
        return self.state == "connected" and not self._silent

    def status(self) -> dict[str, Any]:
        """What an operator needs to see at a glance (also written to Redis)."""
        now = time.monotonic()
        lat = sorted(self._latency)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else None

        return {
            "name": self.name,
            "type": self.kind,
            "state": self.state,
            "url": self.redact(self.endpoint()),
            "priority": self.config.priority,
            "symbols": len(self._wanted),
            "last_message_age_s": round(now - self._last_msg, 3) if self._last_msg else None,
            "last_data_age_s": round(now - self._last_data, 3) if self._last_data else None,
            "messages_per_s": round(self._rate.rate(now), 2),
            "reconnects": self.reconnects,
            "parse_errors": sum(self.parse_errors.values()),
            "parse_error_reasons": dict(self.parse_errors),
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "rejected_reasons": dict(self.rejected),
            "standby": self.standby,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "silent": self._silent,
            "last_error": self.last_error,
            "write_latency_ms": {"p50": pct(0.5), "p99": pct(0.99)},
        }

    async def _write_status(self) -> None:
        await self.ctx.feed_status.write(self.name, self.status())

    async def _status_loop(self) -> None:
        every = self.config.status_every.total_seconds()
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._status_kick.wait()
            self._status_kick.clear()
            with contextlib.suppress(*REDIS_DOWN):  # best effort: the writer notices Redis away
                await self._write_status()

    async def _ops(self, summary: str, problem: str) -> None:
        try:
            await self.ctx.ops(summary, {"source": self.name, "problem": problem})
        except Exception as e:  # an ops alert that fails must not stop the feed
            log.warning("source %s: could not raise an ops alert: %s", self.name, e)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
