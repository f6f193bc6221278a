"""A channel's pace: `TokenBucket`, the async token bucket behind `Notifier.rate_limit`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """An async token bucket: `rate` messages per second, up to `burst` at once.

    A caller reserves its token at once and then waits out its turn, so callers go in the order
    they came and no lock is needed. `clock` is injectable for tests.
    """

    def __init__(
        self, rate: float, burst: float = 1, *, clock: Callable[[], float] = time.monotonic
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    def reserve(self, cost: float = 1) -> float:
        """Take `cost` tokens; return how long to wait before using them (0 when saved up)."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= cost
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self, cost: float = 1, stop: asyncio.Event | None = None) -> float:
        """Wait for `cost` tokens, or until `stop` is set; returns the seconds waited for."""
        delay = self.reserve(cost)
        if delay > 0:
            if stop is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        return delay
