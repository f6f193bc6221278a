"""The daemon's own keys: its ops alerts' numbers, its heartbeat, and whether Redis answers.

Ops alerts (a refused reload, a feed gone silent, Redis restarted) go through the outbox like
any rule's alert, so they are routed, grouped and delivered the same way; numbering each one
from a counter makes every one a distinct transition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.store.keys import Keys

__all__ = ["OpsStore", "server_version"]


class OpsStore:
    """Ops alerts into the outbox, the TTL'd heartbeat, and PING for `/healthz`."""

    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def add_ops_alert(self, make: Callable[[int], AlertEvent]) -> AlertEvent:
        """Number an ops alert (`make(seq)` builds it) and put it in the outbox; returns it.

        Two commands, not a transaction: a crash between them only skips a number."""
        seq = int(await self.redis.incr(self.keys.ops_seq))
        alert = make(seq)
        await self.redis.xadd(self.keys.outbox, {"alert": alert.to_json()})
        return alert

    async def heartbeat(self, summary: str, ttl_ms: int) -> None:
        """The liveness summary, gone `ttl_ms` after the last beat (arq's `record_health`)."""
        await self.redis.set(self.keys.heartbeat, summary, px=ttl_ms)

    async def ping(self) -> bool:
        """Whether Redis answers a PING (raises when it cannot be reached)."""
        return bool(await self.redis.ping())  # type: ignore[misc]


async def server_version(redis: Redis) -> str:
    """The server's `redis_version` ("0" when it does not say): the daemon needs 6.2+."""
    info: dict[str, Any] = await redis.info("server")
    return str(info.get("redis_version", "0"))
