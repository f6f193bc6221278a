"""Provider timestamp parsing: RFC-3339 text to epoch milliseconds, cached per second for ticks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["TimestampParser"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


class TimestampParser:
    """RFC-3339 text (up to nanoseconds, `Z` or an offset) → epoch ms, truncated.

    Ticks within one second share their first 19 characters, so the date-time part is parsed
    once per second and cached; the fraction's first three digits are the milliseconds. Other
    shapes (offsets, odd spacing) take the exact but slower `fromisoformat` path.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self._cache: dict[str, int] = {}
        self._cache_size = cache_size

    def ms(self, text: str) -> int:
        sec = self._cache.get(text[:19])
        if sec is None:
            sec = self._seconds(text[:19])
        tail = text[19:]
        if tail[:1] == "." and tail[-1:] == "Z":
            frac = tail[1:-1]
            if not frac.isdigit():
                raise ValueError(f"bad timestamp {text!r}")
            if len(frac) >= 3:
                return sec * 1000 + int(frac[:3])
            return sec * 1000 + int(frac) * (10 if len(frac) == 2 else 100)
        if tail == "Z":
            return sec * 1000
        return self._slow(text)

    def _seconds(self, head: str) -> int:
        if len(head) != 19 or head[10] not in "Tt":
            raise ValueError(f"bad timestamp {head!r}")
        dt = datetime.fromisoformat(head).replace(tzinfo=UTC)
        s = (dt - _EPOCH) // timedelta(seconds=1)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[head] = s
        return s

    @staticmethod
    def _slow(text: str) -> int:
        dt = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
        if dt.tzinfo is None:
            raise ValueError(f"timestamp {text!r} has no zone")
        return (dt - _EPOCH) // timedelta(milliseconds=1)
