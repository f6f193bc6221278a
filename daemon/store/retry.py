"""Riding out Redis outages: which errors mean "Redis is away", and a backoff to wait for it.

A stage that loses Redis stops its loop, waits, and starts again from what Redis holds: the
evaluator reloads state and re-reads its unacknowledged entries, the dispatcher likewise, a replay
resumes from its cursor. Nothing is kept only in memory across the gap, so nothing is lost.

When the daemon itself brings Redis back (it restarted its embedded server), it says so through
`Reconnect.back()`: every stage waiting to retry tries again at once, with its backoff reset,
instead of sleeping out a delay that grew while the server was down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["REDIS_DOWN", "Reconnect", "run_resilient"]

REDIS_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionError,
    OSError,
)

#: The first retry delay, and what it goes back to once a stage ran this long without trouble.
FIRST_DELAY_S = 0.5
HEALTHY_AFTER_S = 10.0


class Reconnect:
    """Shared by a daemon's stages: `back()` wakes every stage waiting to retry Redis."""

    def __init__(self) -> None:
        self._back = asyncio.Event()
        #: True while the daemon is restarting its embedded server (a stage need not say more).
        self.restarting = False

    def back(self) -> None:
        self.restarting = False
        woken, self._back = self._back, asyncio.Event()
        woken.set()

    async def wait(self, delay: float) -> bool:
        """Sleep `delay` seconds, or less if Redis is back first; True when woken by `back()`."""
        back = self._back
        try:
            async with asyncio.timeout(delay):
                await back.wait()
        except TimeoutError:
            return False
        return True


async def run_resilient(
    name: str,
    run: Callable[[], Awaitable[None]],
    log: logging.Logger,
    *,
    max_delay: float = 30.0,
    reconnect: Reconnect | None = None,
) -> None:
    """Run `run()`; while it fails because Redis is unreachable, back off and run it again."""
    delay = FIRST_DELAY_S
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except REDIS_DOWN as e:
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                delay = FIRST_DELAY_S  # a new outage, not the same one going on
            if reconnect is not None and reconnect.restarting:
                log.debug("%s waits for the embedded Redis to restart (%s)", name, e)
            else:
                log.warning(
                    "%s lost Redis (%s); retrying in %.1fs", name, e or type(e).__name__, delay
                )
            pause = delay * (0.75 + random.random() / 2)
            woken = await reconnect.wait(pause) if reconnect else await _sleep(pause)
            delay = FIRST_DELAY_S if woken else min(delay * 2, max_delay)


async def _sleep(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return False
