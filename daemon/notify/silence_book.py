"""The silences as the desk and the router see them: add, list, expire, and the ones in force.

The logic over `daemon.store.silences.SilenceRecords` (the raw hash): what a silence is stays
pure in `notify/silences.py`, and the store knows only ids and JSON, so no stage below this
one imports an upper stage's model.
"""

from __future__ import annotations

import secrets
import time

from daemon.notify.route_tree import parse_matcher
from daemon.notify.silences import KEEP_EXPIRED_MS, Silence
from daemon.store import Client, Keys, SilenceRecords

__all__ = ["SilenceStore"]


class SilenceStore:
    """Silences in Redis, so every process and the CLI see the same ones; `active` is what the
    router asks for each batch of alerts."""

    def __init__(self, redis: Client, keys: Keys):
        self.records = SilenceRecords(redis, keys)

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
        await self.records.put(s.id, s.to_json())
        return s

    async def all(self) -> list[Silence]:
        out = []
        for text in (await self.records.all()).values():
            try:
                out.append(Silence.from_json(text))
            except (ValueError, TypeError, KeyError):
                continue  # a hand-edited entry we cannot read never blocks the others
        return sorted(out, key=lambda s: s.starts_ms)

    async def expire(self, silence_id: str, now_ms: int | None = None) -> Silence | None:
        """End a silence now; None when there is no such id."""
        text = await self.records.get(silence_id)
        if text is None:
            return None
        s = Silence.from_json(text)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if s.ends_ms > now:
            s = Silence(s.id, s.matchers, s.author, s.reason, min(s.starts_ms, now - 1), now,
                        s.created_ms)  # fmt: skip
            await self.records.put(s.id, s.to_json())
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
            await self.records.drop(*stale)
        return out
