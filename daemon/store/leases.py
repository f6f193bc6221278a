"""Leases: a name one instance holds at a time, expiring unless its holder renews it.

A lease is a key whose value is its holder, set with NX and a TTL (`SET NX PX`); renewing and
releasing are scripts that act only while the value is still ours, so an instance never extends
or drops a lease another took over. `fenced` is the guard for a holder's writes: a MULTI/EXEC
under WATCH of the lease key that runs only while the lease is still the caller's, so a holder
that was paused past its TTL (a GC pause, a stopped VM) and resumes cannot write over the one
that took over: its commit raises `LeaseLost` instead. This is redis-py's `Lock` pattern with the
check moved into every commit, which a lock alone cannot do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

__all__ = ["InstanceRoster", "Lease", "LeaseLost", "commit"]

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: Commits retried when only our own renewal touched the lease between WATCH and EXEC.
_WATCH_RETRIES = 5


class LeaseLost(RuntimeError):
    """The lease is another instance's now: this one must stop doing the holder's work."""


class Lease:
    def __init__(self, redis: Redis, key: str, owner: str, ttl_ms: int):
        self.redis = redis
        self.key = key
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def take(self) -> bool:
        """Take the lease if it is free (or already ours); True when ours now."""
        if await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend our lease; False when it is not ours (it expired and another took it)."""
        return bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def release(self) -> None:
        """Give the lease up now (a clean stop), so a standby takes over at once."""
        await self._release(keys=[self.key], args=[self.owner])

    async def holder(self) -> tuple[str | None, int]:
        """(who holds it, ms left); (None, 0) when free."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.key)
        pipe.pttl(self.key)
        owner, ttl = await pipe.execute()
        return owner, max(0, int(ttl)) if owner else 0

    async def fenced(self, build: Callable[[Pipeline], Any]) -> list[Any]:
        """Run the commands `build` queues as one MULTI/EXEC, only while the lease is ours."""
        for _ in range(_WATCH_RETRIES):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(self.key)
                    if await pipe.get(self.key) != self.owner:
                        raise LeaseLost(f"{self.key} is no longer held by {self.owner}")
                    pipe.multi()  # type: ignore[no-untyped-call]
                    build(pipe)
                    result: list[Any] = await pipe.execute()
                    return result
                except WatchError:
                    continue  # our own renewal touched the key: check again
        raise LeaseLost(f"{self.key}: could not commit under the lease (it keeps changing)")


async def commit(redis: Redis, lease: Lease | None, build: Callable[[Pipeline], Any]) -> list[Any]:
    """`build`'s commands as one MULTI/EXEC: fenced by `lease` when one is held (several
    instances share the Redis), plain otherwise (one instance: nothing to fence)."""
    if lease is not None:
        return await lease.fenced(build)
    pipe = redis.pipeline(transaction=True)
    build(pipe)
    result: list[Any] = await pipe.execute()
    return result


class InstanceRoster:
    """Which instances run on this Redis and as what: each says so every few seconds, so
    `tickwatch status` lists the live ones (an instance not heard from in 15 s is gone)."""

    def __init__(self, redis: Redis, key: str):
        self.redis = redis
        self.key = key

    async def say(self, name: str, text: str) -> None:
        await self.redis.hset(self.key, name, text)  # type: ignore[misc]

    async def all(self) -> dict[str, str]:
        raw: dict[str, str] = await self.redis.hgetall(self.key)  # type: ignore[misc]
        return raw

    async def forget(self, *names: str) -> None:
        if names:
            await self.redis.hdel(self.key, *names)  # type: ignore[misc]
