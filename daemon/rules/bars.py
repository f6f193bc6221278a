"""Which bar each `evaluate: bar_close` instance has open, and which it judged last. Pure.

Kept apart from the engine because it owns only time bookkeeping: when a bar opens (a tick of
one of the rule's symbols), when it has ended (event time or the clock passed its end), and
that a late tick of a bar already judged opens nothing. The engine judges what comes due.
A bar holds the trades and quotes stamped in [start, end); a provider's bar is stamped at its
end (its close is the price as the bar ended), so a bar tick stamped E counts for the bar
ending at E.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daemon.rules.compile import Instance

__all__ = ["BarBook", "bar_end"]


def bar_end(ts_ms: int, bar_ms: int, kind: str = "trade") -> int:
    """End of the bar holding a price stamped `ts_ms` (see the module doc)."""
    if kind == "bar":
        return -(-ts_ms // bar_ms) * bar_ms
    return (ts_ms // bar_ms + 1) * bar_ms


class BarBook:
    def __init__(self, instances: Sequence[Instance]):
        self._by_key = {inst.key: (i, inst) for i, inst in enumerate(instances)}
        #: instance key → end of the bar its inputs ticked in, not judged yet
        self.open: dict[str, int] = {}
        #: instance key → end of the last bar judged
        self.judged: dict[str, int] = {}
        self._heap: list[tuple[int, int, str]] = []

    def __bool__(self) -> bool:
        """Whether any bar is open (the hot path's one check)."""
        return bool(self._heap)

    def next_end(self) -> int:
        """The end of the earliest open bar (or of one superseded since: never later)."""
        return self._heap[0][0]

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def open_bar(self, key: str, end: int) -> None:
        """Mark the bar ending at `end` as one to judge for instance `key` (KeyError: no such
        bar-close instance)."""
        pos, _ = self._by_key[key]
        if self.open.get(key) != end:
            self.open[key] = end
            heapq.heappush(self._heap, (end, pos, key))

    def ticked(self, inst: Instance, ts_ms: int, kind: str) -> None:
        end = bar_end(ts_ms, inst.bar_ms, kind)
        if self.judged.get(inst.key, -1) < end:  # a late tick of a judged bar opens nothing
            self.open_bar(inst.key, end)

    def due(self, upto: int, *, inclusive: bool) -> Iterator[tuple[int, Instance]]:
        """(bar end, instance) for every open bar that ended before `upto` (or at it, when
        `inclusive`), in time order; each is marked judged as it is handed out."""
        heap = self._heap
        while heap and (heap[0][0] < upto or (inclusive and heap[0][0] == upto)):
            end, _, key = heapq.heappop(heap)
            if self.open.get(key) != end:
                continue  # superseded
            del self.open[key]
            self.judged[key] = end
            yield end, self._by_key[key][1]

    def carry_to(self, new: BarBook, keep: set[str], rule_of: Any) -> None:
        """A reload: open bars of unchanged rules stay open in `new`; judged ends carry."""
        for key, end in self.open.items():
            if rule_of(key) in keep and key in new:
                new.open_bar(key, end)
        new.judged = {k: v for k, v in self.judged.items() if k in new}

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {"open": self.open, "judged": self.judged}

    def load(self, data: dict[str, Any]) -> None:
        """Restore `to_dict`'s output (bars of rules since removed are dropped)."""
        self.judged.update({k: int(v) for k, v in data.get("judged", {}).items()})
        for key, end in data.get("open", {}).items():
            if key in self:
                self.open_bar(key, int(end))
