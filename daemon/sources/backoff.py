"""Retry delays for both source bases: the feeds' full-jitter reconnect delay, REST's `Backoff`."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff", "backoff_delay"]


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Full jitter (AWS): uniform in [0, min(cap, initial * 2**attempt)], so clients spread out."""
    return rng.uniform(0.0, min(cap, initial * (2 ** min(attempt, 30))))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with equal jitter, so pollers that failed together retry apart."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before try `attempt + 1`: the server's Retry-After when given, as asked."""
        if retry_after is not None:
            return max(retry_after, 0.0)
        full = min(self.cap, self.base * 2.0 ** min(attempt, 30))
        return full / 2 + random.random() * full / 2
