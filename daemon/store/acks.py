"""The acknowledgements hash (alert key → JSON ack): who saw a firing alert, how and when.

Raw records, shared by every process, the CLI, Slack buttons and SMS replies: what an ack means
(it stops an escalation of a firing that started before it) is the notify stage's.
"""

from __future__ import annotations

from redis.asyncio import Redis

from daemon.store.keys import Keys

__all__ = ["AckRecords"]


class AckRecords:
    """The acks hash."""

    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.key = keys.acks

    async def put(self, alert_key: str, text: str) -> None:
        await self.redis.hset(self.key, alert_key, text)  # type: ignore[misc]

    async def get(self, alert_key: str) -> str | None:
        text: str | None = await self.redis.hget(self.key, alert_key)  # type: ignore[misc]
        return text

    async def all(self) -> dict[str, str]:
        raw: dict[str, str] = await self.redis.hgetall(self.key)  # type: ignore[misc]
        return raw

    async def drop(self, alert_key: str) -> None:
        await self.redis.hdel(self.key, alert_key)  # type: ignore[misc]
