"""Riding out Redis outages: which errors mean "Redis is away", and a backoff to wait for it.

A stage that loses Redis stops its loop, waits, and starts again from what Redis holds: the
evaluator reloads state and re-reads its unacknowledged entries, the dispatcher likewise, a replay
resumes from its cursor. Nothing is kept only in memory across the gap, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["REDIS_DOWN", "run_resilient"]

REDIS_DOWN: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ConnectionError,
    OSError,
)


async def run_resilient(
    name: str,
    run: Callable[[], Awaitable[None]],
    log: logging.Logger,
    *,
    max_delay: float = 30.0,
) -> None:
    """Run `run()`; while it fails because Redis is unreachable, back off and run it again."""
    delay = 0.5
    while True:
        try:
            await run()
            return
        except REDIS_DOWN as e:
            log.warning("%s lost Redis (%s); retrying in %.1fs", name, e or type(e).__name__, delay)
            await asyncio.sleep(delay * (0.75 + random.random() / 2))
            delay = min(delay * 2, max_delay)
