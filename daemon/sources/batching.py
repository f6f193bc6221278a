"""The live feeds' batch writer: one task drains all the reader has queued into one `emit`.

Latency: the reader parses each frame into events and queues them; a single writer task drains
the whole queue into one `emit` (one MULTI/EXEC) as soon as it is idle. Under load, frames pile up
while a write is in flight and go out together in the next one; at low rates each frame is written
as soon as it is parsed. No timer adds delay, and Redis round trips never stall the socket.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from daemon.events import Headline, Tick
from daemon.sources.base import Source
from daemon.sources.feed_types import FeedConfig

__all__ = ["MAX_PENDING", "FeedBatching"]

#: Events queued but not yet written beyond which the reader waits for the writer.
MAX_PENDING = 200_000


class FeedBatching(Source):
    """The writer half of `FeedSource` (which sets this state up and runs the reader)."""

    config: FeedConfig
    _ticks: list[Tick]
    _news: list[Headline]
    _recv_times: list[float]  # when each queued frame was read (monotonic)
    _wake: asyncio.Event  # set by the reader: something is queued
    _drained: asyncio.Event  # set by the writer: the reader may queue beyond MAX_PENDING again
    _latency: deque[float]

    async def _writer(self) -> None:
        """Drain everything queued into `emit`, as soon as the previous write is acknowledged.

        A batch that fails (Redis away) goes back to the front of the queue: `run` ends, the
        daemon waits for Redis, and the next `run` writes it first.
        """
        step = self.config.batch_max
        if self._ticks or self._news:
            self._wake.set()  # left over from a write that failed
        while True:
            await self._wake.wait()
            self._wake.clear()
            ticks, news, recv = self._ticks, self._news, self._recv_times
            if not ticks and not news:
                continue
            self._ticks, self._news, self._recv_times = [], [], []
            self._drained.set()
            at_t = at_n = 0
            try:
                while at_t < len(ticks) or at_n < len(news):
                    end_t = min(len(ticks), at_t + step)
                    end_n = min(len(news), at_n + step - (end_t - at_t))
                    await self.emit(ticks[at_t:end_t], news[at_n:end_n])
                    at_t, at_n = end_t, end_n
            except BaseException:
                self._ticks[:0] = ticks[at_t:]
                self._news[:0] = news[at_n:]
                self._recv_times[:0] = recv
                raise
            self.written(recv, time.monotonic())

    def written(self, recv_times: list[float], done: float) -> None:
        """A batch is in Redis: note frame-received → write-acknowledged latency."""
        self._latency.extend(done - t for t in recv_times)
