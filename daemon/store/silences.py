"""The silences hash (id → JSON silence): the one place silences are read and written."""

from __future__ import annotations

import secrets
import time

from redis.asyncio import Redis

from daemon.notify.routing import parse_matcher
from daemon.notify.silences import KEEP_EXPIRED_MS, Silence
from daemon.store.keys import Keys

__all__ = ["SilenceStore"]


class SilenceStore:
    """Silences in Redis, so every process and the CLI see the same ones; `active` is what the
    router asks for each batch of alerts."""

    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def add(
        self,
        matchers: list[str],
        *,
        author: str,
        reason: str,
        ends_ms: int,
        starts_ms: int | None = None,
    ) -> Silence:
        for m in matchers:
            parse_matcher(m)  # refuse a bad matcher before storing anything
        now = int(time.time() * 1000)
        s = Silence(
            id=secrets.token_hex(4),
            matchers=tuple(matchers),
            author=author,
            reason=reason,
            starts_ms=now if starts_ms is None else starts_ms,
            ends_ms=ends_ms,
            created_ms=now,
        )
        await self.redis.hset(self.keys.silences, s.id, s.to_json())  # type: ignore[misc]
        return s

    async def all(self) -> list[Silence]:
        raw: dict[str, str] = await self.redis.hgetall(self.keys.silences)  # type: ignore[misc]
        out = []
        for text in raw.values():
            try:
                out.append(Silence.from_json(text))
            except (ValueError, TypeError, KeyError):
                continue  # a hand-edited entry we cannot read never blocks the others
        return sorted(out, key=lambda s: s.starts_ms)

    async def expire(self, silence_id: str, now_ms: int | None = None) -> Silence | None:
        """End a silence now; None when there is no such id."""
        text = await self.redis.hget(self.keys.silences, silence_id)  # type: ignore[misc]
        if text is None:
            return None
        s = Silence.from_json(text)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if s.ends_ms > now:
            s = Silence(s.id, s.matchers, s.author, s.reason, min(s.starts_ms, now - 1), now,
                        s.created_ms)  # fmt: skip
            await self.redis.hset(self.keys.silences, s.id, s.to_json())  # type: ignore[misc]
        return s

    async def active(self, now_ms: int) -> list[Silence]:
        """Silences in force now; ones expired for more than a week are removed."""
        out = []
        stale = []
        for s in await self.all():
            if s.active(now_ms):
                out.append(s)
            elif s.ends_ms < now_ms - KEEP_EXPIRED_MS:
                stale.append(s.id)
        if stale:
            await self.redis.hdel(self.keys.silences, *stale)  # type: ignore[misc]
        return out
