"""What the evaluator knows about the market: last prices, trailing windows, anchor prices.

Pure and bounded: windows keep only what the longest rule window over that symbol needs, and
anchors are single prices. Rules read from here; only `Engine` writes. Everything here can be
rebuilt from the tick stream (warm-up) plus the small checkpoint the runner persists.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from functools import lru_cache

from daemon.events import NEW_YORK, Tick

__all__ = [
    "NEW_YORK",
    "Anchors",
    "Market",
    "Quote",
    "VolumeProfile",
    "Window",
    "anchor_start_ms",
    "ny_date",
]


def anchor_start_ms(day: dt.date) -> int:
    """Midnight in New York starting `day`: prices before it belong to the previous period."""
    return int(dt.datetime.combine(day, dt.time(0), NEW_YORK).timestamp() * 1000)


def ny_date(ts_ms: int) -> dt.date:
    """The New York date at `ts_ms`. Rules ask on every tick (a YTD spread's anchor), and
    a zone conversion costs more than the rest of a verdict; New York's midnight falls on
    a UTC hour, so one answer holds for a whole hour."""
    return _ny_date_of_hour(ts_ms // 3_600_000)


@lru_cache(maxsize=1 << 14)
def _ny_date_of_hour(hour: int) -> dt.date:
    return dt.datetime.fromtimestamp(hour * 3600, NEW_YORK).date()


SPARK_POINTS = 30


@dataclass(slots=True)
class Quote:
    price: float
    ts_ms: int
    bid: float | None = None
    ask: float | None = None
    #: The quote before the latest tick, for edge conditions (crossings). After a restart it
    #: is the checkpointed last price, so a cross spanning the restart is still seen once.
    prev_price: float | None = None
    prev_bid: float | None = None
    prev_ask: float | None = None
    #: The closing price of each of the latest `SPARK_POINTS` finished minutes (the current
    #: one's is `price`): the trend a notification draws, e.g. a Slack sparkline. Kept on the
    #: quote, appended only when the minute changes, so the hot path pays one compare.
    spark: list[float] = field(default_factory=list)
    spark_minute: int = 0
    #: What the latest price was (trade, quote or bar) and which feed sent it: alignment of
    #: multi-symbol rules depends on the kind, and every alert says what it was judged on.
    kind: str = "trade"
    source: str = ""

    def read(self, which: str) -> float | None:
        return _pick(which, self.price, self.bid, self.ask)

    def read_prev(self, which: str) -> float | None:
        if self.prev_price is None:
            return None
        return _pick(which, self.prev_price, self.prev_bid, self.prev_ask)


def _pick(which: str, last: float, bid: float | None, ask: float | None) -> float | None:
    if which == "last":
        return last
    if which == "bid":
        return bid
    if which == "ask":
        return ask
    if bid is not None and ask is not None:  # mid
        return (bid + ask) / 2
    return last


class Window:
    """Prices of one symbol over the trailing `span_ms`, plus the one observation just before.

    The extra observation is what makes "the price 30 minutes ago" answerable exactly. Plain
    lists with a moving head (compacted now and then) instead of deques: `bisect` needs O(1)
    indexing.
    """

    __slots__ = ("_p", "_t", "span_ms")

    def __init__(self, span_ms: int):
        self.span_ms = span_ms
        self._t: list[int] = []
        self._p: list[float] = []

    def add(self, ts_ms: int, price: float) -> None:
        t = self._t
        if t and ts_ms < t[-1]:
            ts_ms = t[-1]  # late within tolerance: count it as now
        t.append(ts_ms)
        self._p.append(price)
        # keep one observation at or before (now - 2 spans); drop older ones in chunks
        cutoff = ts_ms - 2 * self.span_ms
        if len(t) > 64 and t[32] <= cutoff:
            drop = bisect_right(t, cutoff) - 1
            del t[:drop]
            del self._p[:drop]

    def reference(self, now_ms: int, span_ms: int) -> float | None:
        """The price `span_ms` before `now_ms`: the last observation at or before then.

        If that observation is older than two spans (the data has a gap: a night, a weekend,
        a feed outage), a move across the gap is not a move "within" the window, so the oldest
        observation inside the window is used instead.
        """
        if not self._t:
            return None
        cutoff = now_ms - span_ms
        i = bisect_right(self._t, cutoff)
        if i > 0 and self._t[i - 1] >= cutoff - span_ms:
            return self._p[i - 1]
        return self._p[i] if i < len(self._t) else self._p[-1]

    def __len__(self) -> int:
        return len(self._t)


class VolumeProfile:
    """Volume per time-of-day slot per New York day, to compare now with the same time on
    earlier sessions (volume at 09:35 always beats 13:00's; a flat average would call it a spike).

    `days` counts sessions (days the symbol traded), not calendar days: "the last 20 days" is
    what a trader means by it, weekends and holidays excluded. Bounded: `days` + 1 sessions of
    slots are kept.
    """

    __slots__ = ("_days", "_slots", "days", "slot_ms")

    def __init__(self, slot_ms: int, days: int):
        self.slot_ms = slot_ms
        self.days = days
        self._slots: dict[tuple[int, int], float] = {}
        #: the sessions seen (New York day ordinals with volume), in order
        self._days: list[int] = []

    @staticmethod
    def _day_and_offset(ts_ms: int) -> tuple[int, int]:
        local = dt.datetime.fromtimestamp(ts_ms / 1000, NEW_YORK)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return local.toordinal(), int((local - midnight).total_seconds() * 1000)

    def add(self, ts_ms: int, size: float) -> None:
        day, offset = self._day_and_offset(ts_ms)
        key = (day, offset // self.slot_ms)
        self._slots[key] = self._slots.get(key, 0.0) + size
        days = self._days
        if not days or day > days[-1]:
            days.append(day)
            if len(days) > self.days + 1:  # forget the sessions no baseline reaches any more
                del days[: len(days) - self.days - 1]
                self._slots = {k: v for k, v in self._slots.items() if k[0] >= days[0]}
        elif day not in days:
            insort(days, day)  # a late tick from an earlier day: rare

    def now_and_usual(self, ts_ms: int) -> tuple[float, float | None, int]:
        """(volume in this slot so far today, mean of the same slot over the last `days`
        sessions that traded in it, how many such sessions)."""
        day, offset = self._day_and_offset(ts_ms)
        slot = offset // self.slot_ms
        earlier = self._days[: bisect_left(self._days, day)][-self.days :]
        slots = self._slots
        past = [slots[d, slot] for d in earlier if (d, slot) in slots]
        usual = sum(past) / len(past) if past else None
        return slots.get((day, slot), 0.0), usual, len(past)


@dataclass
class Anchors:
    """Anchor prices: each symbol's last price before the start of an anchor date (e.g. Jan 1).

    `prices` are taken from history (the last tick before the date); `configured` ones come
    from `anchors:` in alerts.yaml and stand in where history has none, e.g. a replay or a
    backfill that starts after Jan 1.
    """

    prices: dict[tuple[str, dt.date], float] = field(default_factory=dict)
    configured: dict[tuple[str, dt.date], float] = field(default_factory=dict)

    def observe(self, sym: str, day: dt.date, prev: Quote | None, tick_ts_ms: int) -> None:
        """Call before recording a tick: the first tick on/after `day` freezes the anchor."""
        key = (sym, day)
        if key in self.prices or prev is None:
            return
        start = anchor_start_ms(day)
        if prev.ts_ms < start <= tick_ts_ms:
            self.prices[key] = prev.price

    def get(self, sym: str, day: dt.date) -> float | None:
        price = self.prices.get((sym, day))
        return price if price is not None else self.configured.get((sym, day))


@dataclass
class Market:
    """Quotes, windows and anchors for the symbols the rules care about."""

    quotes: dict[str, Quote] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)
    anchors: Anchors = field(default_factory=Anchors)
    #: symbol → anchor dates to track (explicit dates; YTD is derived from the tick's year).
    anchor_days: dict[str, set[dt.date]] = field(default_factory=dict)
    ytd_symbols: set[str] = field(default_factory=set)
    #: Symbols whose previous close (last price before each New York midnight) is tracked.
    daily_symbols: set[str] = field(default_factory=set)
    volumes: dict[str, VolumeProfile] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    #: Event time of the first tick this view saw: a symbol never seen since then has been
    #: silent only since then, not since the open (no alarm storm at start-up).
    first_ms: int = 0

    def need_window(self, sym: str, span_ms: int) -> None:
        w = self.windows.get(sym)
        if w is None:
            self.windows[sym] = Window(span_ms)
        elif w.span_ms < span_ms:
            w.span_ms = span_ms

    def record(self, t: Tick) -> None:
        sym = t.symbol
        prev = self.quotes.get(sym)
        if prev is not None and t.ts_ms < prev.ts_ms:
            self._record_late(t, prev)
            return
        ts = t.ts_ms
        if prev is None:
            if not self.first_ms:
                self.first_ms = t.ts_ms
        elif ts // 3_600_000 != prev.ts_ms // 3_600_000 and self._anchored(sym):
            self._observe_anchors(sym, prev, ts)  # only when the hour changes: days start there
        if prev is None:
            self.quotes[t.symbol] = Quote(
                t.price, ts, t.bid, t.ask, spark_minute=ts // 60_000, kind=t.kind, source=t.source
            )
        else:
            if ts // 60_000 != prev.spark_minute:  # a new minute: the last one closed
                prev.spark_minute = ts // 60_000
                prev.spark.append(prev.price)
                if len(prev.spark) > SPARK_POINTS:
                    del prev.spark[0]
            prev.prev_price, prev.prev_bid, prev.prev_ask = prev.price, prev.bid, prev.ask
            prev.price, prev.ts_ms, prev.kind, prev.source = t.price, ts, t.kind, t.source
            if t.bid is not None:
                prev.bid = t.bid
            if t.ask is not None:
                prev.ask = t.ask
        w = self.windows.get(t.symbol)
        if w is not None:
            w.add(ts, t.price)
        if self.volumes:
            vol = self.volumes.get(t.symbol)
            if vol is not None and t.size > 0:
                vol.add(ts, t.size)
        self.dirty.add(t.symbol)

    def _record_late(self, t: Tick, q: Quote) -> None:
        """A tick older than the symbol's latest (a feed replaying after a restart, or one
        out of order within the edge's tolerance): it is not the price now, but windows and
        volumes keep it, counted at the latest time (the clock never runs back)."""
        w = self.windows.get(t.symbol)
        if w is not None:
            w.add(q.ts_ms, t.price)
        if self.volumes:
            vol = self.volumes.get(t.symbol)
            if vol is not None and t.size > 0:
                vol.add(t.ts_ms, t.size)

    def _anchored(self, sym: str) -> bool:
        return sym in self.ytd_symbols or sym in self.daily_symbols or sym in self.anchor_days

    def _observe_anchors(self, sym: str, prev: Quote, ts: int) -> None:
        today = ny_date(ts)
        if sym in self.ytd_symbols:
            self.anchors.observe(sym, dt.date(today.year, 1, 1), prev, ts)
        if sym in self.daily_symbols:
            self.anchors.observe(sym, today, prev, ts)
        for day in self.anchor_days.get(sym, ()):
            self.anchors.observe(sym, day, prev, ts)
