"""The live feeds' status hash: one JSON document per feed, what an operator reads of it.

Written by each websocket feed every few seconds (and on a change of state), read by
`tickwatch status` and `/status`; best effort, so a write that fails is simply the next one's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from daemon.store.keys import Keys

__all__ = ["FeedStatusStore"]


class FeedStatusStore:
    """Feed name → its status (`FeedSource.status()`), in the `sources_status` hash."""

    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def write(self, name: str, status: Mapping[str, Any]) -> None:
        """Replace `name`'s status (JSON with sorted keys, so equal statuses read the same)."""
        await self.redis.hset(  # type: ignore[misc]
            self.keys.sources_status, name, json.dumps(status, sort_keys=True)
        )

    async def read(self) -> dict[str, dict[str, Any]]:
        """Every feed's last status; a field that is not JSON is left out."""
        raw = await self.redis.hgetall(self.keys.sources_status)  # type: ignore[misc]
        out: dict[str, dict[str, Any]] = {}
        for name, value in raw.items():
            try:
                out[name] = json.loads(value)
            except ValueError:
                continue
        return out
