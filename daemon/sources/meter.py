"""Per-frame bookkeeping of a live feed: the sliding message-rate meter and the recent-key set."""

from __future__ import annotations

__all__ = ["RateMeter", "RecentKeys"]


class RateMeter:
    """Events per second over the last `window` seconds, in per-second buckets."""

    def __init__(self, window: int = 60) -> None:
        self.window = window
        self._counts = [0] * window
        self._secs = [-1] * window

    def add(self, n: int, now: float) -> None:
        sec = int(now)
        i = sec % self.window
        if self._secs[i] != sec:
            self._secs[i] = sec
            self._counts[i] = 0
        self._counts[i] += n

    def rate(self, now: float) -> float:
        sec = int(now)
        lo = sec - self.window
        total = sum(c for c, s in zip(self._counts, self._secs, strict=True) if lo < s <= sec)
        return total / self.window


class RecentKeys:
    """Remembers the last `size`..2×`size` keys: `seen(k)` is True for a repeat (two sets, O(1))."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._new: set[object] = set()
        self._old: set[object] = set()

    def seen(self, key: object) -> bool:
        if key in self._new or key in self._old:
            return True
        self._new.add(key)
        if len(self._new) >= self.size:
            self._old, self._new = self._new, set()
        return False
