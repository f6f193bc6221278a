"""Phone numbers that replied STOP (Twilio's opt-out): number → JSON (when, which channel)."""

from __future__ import annotations

from redis.asyncio import Redis

from daemon.store.keys import Keys

__all__ = ["OptOutRecords"]


class OptOutRecords:
    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.key = keys.sms_opt_outs

    async def put(self, phone: str, text: str) -> None:
        await self.redis.hset(self.key, phone, text)  # type: ignore[misc]

    async def drop(self, phone: str) -> bool:
        return bool(await self.redis.hdel(self.key, phone))  # type: ignore[misc]

    async def all(self) -> dict[str, str]:
        raw: dict[str, str] = await self.redis.hgetall(self.key)  # type: ignore[misc]
        return raw
