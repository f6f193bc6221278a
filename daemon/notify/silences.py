"""Silences: "don't tell me about NVDA until 16:00", with an author, a reason and an end.

A silence is a set of matchers over routing labels and a time range. It lives in Redis (one hash,
id → JSON) so every process and the CLI see the same ones, and it expires by itself: the end time
is checked on every match, and expired silences are kept for a week for the record.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from daemon.notify.routing import Matcher, parse_matcher
from daemon.store.keys import Keys

__all__ = ["Silence", "SilenceStore"]

KEEP_EXPIRED_MS = 7 * 86_400_000


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[str, ...]
    author: str
    reason: str
    starts_ms: int
    ends_ms: int
    created_ms: int

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher, e.g. symbol=NVDA")
        if not self.author.strip():
            raise ValueError("a silence needs an author (--author you@desk)")
        if not self.reason.strip():
            raise ValueError("a silence needs a reason (--reason 'NVDA earnings')")
        if self.ends_ms <= self.starts_ms:
            raise ValueError("a silence must end after it starts")

    @property
    def compiled(self) -> tuple[Matcher, ...]:
        return tuple(parse_matcher(m) for m in self.matchers)

    def active(self, now_ms: int) -> bool:
        return self.starts_ms <= now_ms < self.ends_ms

    def matches(self, labels: Mapping[str, str], now_ms: int) -> bool:
        return self.active(now_ms) and all(m.matches(labels) for m in self.compiled)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Silence:
        d = json.loads(text)
        d["matchers"] = tuple(d["matchers"])
        return cls(**d)


class SilenceStore:
    """Silences in Redis; `matching` is what the router asks for each alert."""

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
