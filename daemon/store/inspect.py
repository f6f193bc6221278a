"""Read-only looks at delivery's state in Redis, for `tickwatch status`, `/status` and the API."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from daemon.store.keys import Keys

__all__ = ["InspectStore"]


class InspectStore:
    """Nothing here writes: status is safe to run against a production daemon."""

    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def heartbeat(self) -> str | None:
        """The daemon's TTL'd liveness summary; None when it is not running (or is wedged)."""
        beat: str | None = await self.redis.get(self.keys.heartbeat)
        return beat

    async def suppressed(self) -> dict[str, str]:
        """Field "outcome:channel" → count of transitions recorded but not sent."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.suppressed)  # type: ignore[misc]
        return raw

    async def delivery_waits(self) -> dict[str, str]:
        """Field "channel|consumer" → JSON of a worker waiting to retry a failed send."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.delivery_waits)  # type: ignore[misc]
        return raw

    async def channel_queue(self, channel: str) -> tuple[int, int]:
        """(waiting, in flight) on a channel's delivery stream: entries its workers have not
        read yet, and ones read and not acknowledged. (0, 0) before the stream exists."""
        k = self.keys
        stream = k.deliver(channel)
        waiting = pending = 0
        if await self.redis.exists(stream):
            groups: Any = await self.redis.xinfo_groups(stream)
            g = next((x for x in groups if x["name"] == k.DELIVER_GROUP), None)
            pending = int(g["pending"]) if g else 0
            last = (await self.redis.xinfo_stream(stream))["last-generated-id"]
            if g is not None and g["last-delivered-id"] != last:
                waiting = len(await self.redis.xrange(stream, f"({g['last-delivered-id']}", "+"))
        return waiting, pending

    async def recent_alerts(self, count: int) -> list[tuple[str, str]]:
        """The newest `count` alert transitions in the outbox, newest first: (id, JSON)."""
        rows: Any = await self.redis.xrevrange(self.keys.outbox, count=count)
        return [(entry_id, fields["alert"]) for entry_id, fields in rows if "alert" in fields]
