"""The earnings calendar hash: each provider's reports per symbol, as calendar sources wrote them.

One hash, a field per (symbol, source) — `SYMBOL|source` → that provider's JSON list for the
symbol — so two providers never overwrite each other, and a restart starts with the last
calendar fetched. The JSON is the earnings source's own (`daemon.sources.earnings`); this module
only knows where it lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from redis.asyncio import Redis

from daemon.store.keys import Keys

__all__ = ["CalendarField", "CalendarStore"]


class CalendarField(NamedTuple):
    """One field of the calendar hash: its name, the symbol it is about, and its JSON."""

    field: str
    symbol: str
    value: str


class CalendarStore:
    """Reads and replaces the providers' parts of the earnings calendar hash."""

    def __init__(self, redis: Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    async def replace(self, source: str, by_symbol: Mapping[str, str]) -> None:
        """Make `by_symbol` (symbol → JSON) all of `source`'s part of the calendar: its fields
        for other symbols are removed, in the same MULTI/EXEC as the new ones are written, so a
        reader never sees a provider's calendar half replaced."""
        key = self.keys.earnings_calendar
        suffix = f"|{source}"
        fields = [_text(f) for f in await self.redis.hkeys(key)]  # type: ignore[misc]
        stale = [f for f in fields if f.endswith(suffix) and f[: -len(suffix)] not in by_symbol]
        pipe = self.redis.pipeline(transaction=True)
        if stale:
            pipe.hdel(key, *stale)
        if by_symbol:
            pipe.hset(key, mapping={f"{s}{suffix}": v for s, v in by_symbol.items()})
        await pipe.execute()

    async def read(self) -> list[CalendarField]:
        """Every provider's fields, sorted by field name (so merges are deterministic)."""
        raw = await self.redis.hgetall(self.keys.earnings_calendar)  # type: ignore[misc]
        out = []
        for field, value in sorted((_text(f), _text(v)) for f, v in raw.items()):
            out.append(CalendarField(field, field.split("|", 1)[0], value))
        return out


def _text(value: str | bytes) -> str:
    """A reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
