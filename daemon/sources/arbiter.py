"""Which live feed speaks for a symbol when several carry it: hot fallback by priority.

Every feed subscribes to its symbols all the time, so a backup is already streaming when the
preferred feed fails and the switch costs no reconnect. The arbiter only decides, per tick,
whether to keep it: a tick for S from feed X is dropped ("standby") while a feed with a better
(lower) priority that covers S is healthy for S. Healthy for S means up (connected) and either

* it delivered S within `standby_after`, or
* S is quiet everywhere (no feed delivered S within `standby_after`) and it delivered anything
  within `standby_after`: a quiet symbol is no sign of trouble, and the preferred feed will most
  likely carry the same print a moment later.

So when the preferred feed drops, its ticks stop counting at once (`down`); when it stays
connected but stops carrying S while a backup does, the backup takes S over after
`standby_after`. Feeds of equal priority never hold each other back.

Pure logic with time passed in (monotonic seconds): no sockets, no clock of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["WILDCARD", "FeedArbiter"]

#: A feed subscribed to "*" covers every symbol.
WILDCARD = "*"
_NEVER = float("-inf")


@dataclass(slots=True)
class _Feed:
    name: str
    priority: int
    symbols: frozenset[str] = frozenset()
    up: bool = False
    last_any: float = _NEVER
    last: dict[str, float] = field(default_factory=dict)
    #: Feeds with a better priority, best first; rebuilt when feeds join.
    better: list[_Feed] = field(default_factory=list)

    def covers(self, symbol: str) -> bool:
        return symbol in self.symbols or WILDCARD in self.symbols


class FeedArbiter:
    """Shared by the daemon's feeds; each feed calls `cover`, `up`/`down` and `admit`."""

    def __init__(self, standby_after: float = 10.0) -> None:
        self.standby_after = standby_after
        self._feeds: dict[str, _Feed] = {}

    # -- membership ---------------------------------------------------------------------------
    def cover(self, name: str, priority: int, symbols: Iterable[str]) -> None:
        """Register feed `name` (or update it) with the symbols it is subscribed to."""
        feed = self._feeds.get(name)
        if feed is None or feed.priority != priority:
            if feed is None:
                feed = self._feeds[name] = _Feed(name, priority)
            feed.priority = priority
            for f in self._feeds.values():
                f.better = sorted(
                    (o for o in self._feeds.values() if o.priority < f.priority),
                    key=lambda o: o.priority,
                )
        feed.symbols = frozenset(symbols)

    def up(self, name: str) -> None:
        """The feed is connected and subscribed: its messages now count as health."""
        if name in self._feeds:
            self._feeds[name].up = True

    def down(self, name: str) -> None:
        """The feed lost its connection: it holds nothing back from now on."""
        feed = self._feeds.get(name)
        if feed is not None:
            feed.up = False
            feed.last_any = _NEVER
            feed.last.clear()

    # -- per message --------------------------------------------------------------------------
    def alive(self, name: str, now: float) -> None:
        """Feed `name` delivered a message (data or heartbeat) at `now`."""
        feed = self._feeds.get(name)
        if feed is not None:
            feed.last_any = now

    def admit(self, name: str, symbol: str, now: float) -> bool:
        """Record that `name` delivered `symbol` at `now`; False = drop it (standby)."""
        feed = self._feeds.get(name)
        if feed is None:
            return True
        feed.last_any = now
        keep = True
        if feed.better:
            horizon = now - self.standby_after
            quiet: bool | None = None
            for b in feed.better:
                if not b.up or not b.covers(symbol):
                    continue
                if b.last.get(symbol, _NEVER) >= horizon:
                    keep = False
                    break
                if b.last_any >= horizon:
                    if quiet is None:
                        quiet = all(
                            f.last.get(symbol, _NEVER) < horizon for f in self._feeds.values()
                        )
                    if quiet:
                        keep = False
                        break
        feed.last[symbol] = now
        return keep

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Per feed: priority, up, how many symbols it covers (for status pages)."""
        return {
            f.name: {"priority": f.priority, "up": f.up, "symbols": len(f.symbols)}
            for f in self._feeds.values()
        }
