"""The dead-letter stream as operators see it: listed, and put back on a channel's stream."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from daemon.store.keys import Keys

__all__ = ["DEADLETTER_MAXLEN", "DeadLetter", "DeadLetterStore"]

#: The dead letters kept (approximately): the router's and the workers' XADDs trim to it.
DEADLETTER_MAXLEN = 100_000

DeadLetter = tuple[str, dict[str, str]]  # (entry id, fields)


class DeadLetterStore:
    """Reads of the dead letters (written by the router and the workers, in their commits)."""

    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def newest(self, count: int) -> list[DeadLetter]:
        """The latest `count` dead letters, newest first (`tickwatch deadletter list`)."""
        rows: Any = await self.redis.xrevrange(self.keys.deadletter, count=count)
        return list(rows)

    async def all(self) -> list[DeadLetter]:
        """Every dead letter, oldest first (a retry of all, the counts in status)."""
        rows: Any = await self.redis.xrange(self.keys.deadletter)
        return list(rows)

    async def requeue(self, entry_id: str, channel: str, key: str, body: str) -> None:
        """Put a dead letter back on its channel's stream, as a fresh attempt (its idempotency
        marker dropped, else the worker would skip it as a duplicate), and out of the dead
        letters: one MULTI/EXEC, so it is never in both or neither."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(k.delivered(key, channel))
        pipe.xadd(k.deliver(channel), {"n": body})
        pipe.xdel(k.deadletter, entry_id)
        await pipe.execute()
