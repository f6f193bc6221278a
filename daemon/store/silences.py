"""The silences hash (id → JSON silence): the one place silences are read and written.

Raw records only: what a silence means (`notify/silences.py`) and the desk's operations on them
(`notify/silence_book.py`) sit in the notify stage, above this one.
"""

from __future__ import annotations

from redis.asyncio import Redis

from daemon.store.keys import Keys

__all__ = ["SilenceRecords"]


class SilenceRecords:
    """The silences hash, shared by every process and the CLI."""

    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.key = keys.silences

    async def put(self, silence_id: str, text: str) -> None:
        await self.redis.hset(self.key, silence_id, text)  # type: ignore[misc]

    async def get(self, silence_id: str) -> str | None:
        text: str | None = await self.redis.hget(self.key, silence_id)  # type: ignore[misc]
        return text

    async def all(self) -> dict[str, str]:
        raw: dict[str, str] = await self.redis.hgetall(self.key)  # type: ignore[misc]
        return raw

    async def drop(self, *silence_ids: str) -> None:
        if silence_ids:
            await self.redis.hdel(self.key, *silence_ids)  # type: ignore[misc]
