"""The Redis client type, for the code that holds a connection without sending it commands.

The daemon opens its connections (`daemon.store.connect`), hands them to the store objects and
closes them at stop; naming the type here keeps `redis` imported under `daemon/store/` only.
"""

from __future__ import annotations

from typing import TypeAlias

from redis.asyncio import Redis

__all__ = ["Client"]

#: A connection (pool) to Redis, as `connect` and `dedicated` return it.
Client: TypeAlias = Redis
