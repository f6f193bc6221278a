"""When a failed send is tried again: `RetryPolicy`, `Clock`, `Wait`.

The worker (`channel_worker.py`) applies them; this module only decides and measures.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from daemon.durations import format_duration

__all__ = ["Clock", "RetryPolicy", "Wait", "queued_at", "wait_text"]


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed send again, and when to give up on the message.

    A service's `Retry-After` is taken at its word, however long (Slack disables apps that call
    again too soon). Without one the wait is exponential backoff with equal jitter: `base_delay`
    doubling per attempt, at most `max_delay`. A message is dead-lettered on a permanent error,
    or once `give_up_after` seconds have passed since it was queued, never after a number of
    tries.
    """

    base_delay: float = 0.5
    max_delay: float = 60.0
    give_up_after: float = 3600.0

    def backoff(self, attempt: int) -> float:
        """Seconds after failed attempt `attempt` (1-based): 0.25-0.5 s, 0.5-1 s, ... to the cap."""
        full = min(self.base_delay * 2.0 ** min(attempt - 1, 60), self.max_delay)
        return full * (0.5 + random.random() / 2)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The service's `Retry-After` when it gave one (never less than 0), else `backoff`."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return self.backoff(attempt)


class Clock:
    """Wall time and waiting as the worker sees them. Tests pass one whose `sleep` moves its
    `now` (and `monotonic`) on at once, to show a 45 s Retry-After honoured without spending
    45 s.

    `now` (wall, epoch seconds) dates things: a message's age from its stream entry id, what
    status shows. `monotonic` measures time passing while a message is retried, so that a step
    of the wall clock (NTP, an operator, a VM resumed) does not make a wait or the budget huge or
    zero."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Wait:
    """A channel worker between a failed send and its next try."""

    #: Short: "rate limited by Slack", "Twilio server error (HTTP 500)".
    reason: str
    #: When the next try is due (epoch seconds, the worker's clock).
    until: float
    #: What the service asked for; None: backoff of our own.
    retry_after: float | None
    #: The attempt that failed (1 = the first).
    attempt: int
    key: str
    #: When the message is dead-lettered if still failing (epoch seconds).
    give_up_at: float

    def to_json(self, channel: str, consumer: str) -> str:
        return json.dumps({
            "channel": channel, "consumer": consumer, "reason": self.reason,
            "until_ms": int(self.until * 1000), "retry_after": self.retry_after,
            "attempt": self.attempt, "key": self.key,
            "give_up_at_ms": int(self.give_up_at * 1000),
        }, separators=(",", ":"))  # fmt: skip


def queued_at(entry_id: str, default: float) -> float:
    """When a stream entry was added (epoch seconds): the ms part of its id."""
    try:
        return int(str(entry_id).split("-", 1)[0]) / 1000
    except ValueError:
        return default


def wait_text(seconds: float) -> str:
    """`45s`, `1h`, `2m30s`; under a second in ms (`300ms`)."""
    s = max(0.0, seconds)
    return format_duration(timedelta(seconds=round(s) if s >= 1 else round(s, 3)))
