"""The desk's short alert numbers (1-999, reused in turn): "ACK 12" instead of an alert key.

One hash holds both directions and the counter; a firing gets its number once (a re-read of the
same outbox entry, a reminder or its resolve find the same one), by one script, so two routers
never hand out the same number for different firings.
"""

from __future__ import annotations

from redis.asyncio import Redis

from daemon.store.keys import Keys

__all__ = ["MAX_NUMBER", "AlertNumbers"]

#: Numbers run 1..MAX_NUMBER and then start again: short enough to type on a phone.
MAX_NUMBER = 999

# KEYS: the hash. ARGV: "alert key#seq", MAX_NUMBER, "1" to assign one when it has none.
_NUMBER = """
local n = redis.call('HGET', KEYS[1], 'k:' .. ARGV[1])
if n then return tonumber(n) end
if ARGV[3] ~= '1' then return 0 end
local c = redis.call('HINCRBY', KEYS[1], 'next', 1)
n = (c - 1) % tonumber(ARGV[2]) + 1
local old = redis.call('HGET', KEYS[1], 'n:' .. n)
if old then redis.call('HDEL', KEYS[1], 'k:' .. old) end
redis.call('HSET', KEYS[1], 'n:' .. n, ARGV[1], 'k:' .. ARGV[1], n)
return n
"""


class AlertNumbers:
    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.key = keys.numbers
        self._number = redis.register_script(_NUMBER)

    async def number(self, firing: str, *, assign: bool) -> int:
        """The number of `firing` ("alert key#seq"); with `assign`, a new one if it has none;
        0 when it has none."""
        n = await self._number(keys=[self.key], args=[firing, MAX_NUMBER, "1" if assign else "0"])
        return int(n)

    async def firing(self, number: int) -> str | None:
        """The firing ("alert key#seq") that `number` stands for now, or None."""
        text: str | None = await self.redis.hget(self.key, f"n:{number}")  # type: ignore[misc]
        return text

    async def all(self) -> dict[int, str]:
        """Number → the firing ("alert key#seq") it stands for now."""
        raw: dict[str, str] = await self.redis.hgetall(self.key)  # type: ignore[misc]
        return {int(k[2:]): v for k, v in raw.items() if k.startswith("n:") and k[2:].isdigit()}
