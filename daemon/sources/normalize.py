"""The edge: every event is checked here once, and refused with a named, counted reason.

Pure logic (time passed in), so sources of every kind share it and tests need no sockets.
A rule never sees a NaN, a non-positive price, a symbol nobody asked for, a timestamp from the
future, or a tick that arrives out of order beyond the tolerance.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from daemon.events import Headline, Tick

__all__ = ["REASONS", "EdgeFilter", "title_key"]

#: The same story from two providers (or twice from one, under new ids) within this span is one.
TITLE_WINDOW_MS = 24 * 3_600_000
_NOT_WORD = re.compile(r"[\W_]+")

REASONS = {
    "nan": "price is NaN or infinite",
    "non_positive": "price is zero or negative",
    "unknown_symbol": "symbol is not in any group, rule or symbols list",
    "future": "timestamp is too far in the future",
    "out_of_order": "older than the symbol's last tick beyond the tolerance",
    "bad_timestamp": "timestamp missing or unparseable",
    "bad_quote": "bid/ask is NaN, non-positive, or crossed",
    "empty_headline": "headline has no title",
    "duplicate_headline": "headline id, or the same title within 24 h, already seen",
    "malformed": "provider item missing required fields or of the wrong type",
}

#: What `tick_reasons` answers, by code (0: accepted).
_TICK_REASONS = np.array(
    [None, "nan", "non_positive", "unknown_symbol", "future", "bad_quote"], dtype=object
)


def title_key(title: str) -> str:
    """A title reduced to its words (case, punctuation, spacing and Unicode forms folded).

    Providers restyle the same wire story ("Nvidia Raises Guidance" vs "Nvidia raises
    guidance.", typographic quotes), so ids cannot tell a story we already have; this can.
    """
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NOT_WORD.sub(" ", folded).split())


@dataclass
class EdgeFilter:
    """Accept or refuse events; `rejected` counts refusals by reason."""

    universe: frozenset[str]
    future_tolerance_ms: int = 5 * 60_000
    out_of_order_ms: int = 5_000
    rejected: Counter[str] = field(default_factory=Counter)
    _last_ts: dict[str, int] = field(default_factory=dict)
    _seen_news: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _news_added: int = 0
    #: title key → ts_ms of the first headline with it (cross-provider dedupe).
    _seen_titles: OrderedDict[str, int] = field(default_factory=OrderedDict)
    #: (title key, what it mapped to before) per accepted headline, so `restore` can undo.
    _title_undo: deque[tuple[str, int | None]] = field(default_factory=lambda: deque(maxlen=50_000))

    def tick_reason(self, tick: Tick, now_ms: int) -> str | None:
        """Why `tick` must be refused, or None. Accepting it advances the symbol's clock."""
        p = tick.price
        if not math.isfinite(p):
            reason = "nan"
        elif p <= 0:
            reason = "non_positive"
        elif tick.symbol not in self.universe:
            reason = "unknown_symbol"
        elif tick.ts_ms > now_ms + self.future_tolerance_ms:
            reason = "future"
        elif tick.ts_ms < self._last_ts.get(tick.symbol, 0) - self.out_of_order_ms:
            reason = "out_of_order"
        elif not _quote_ok(tick.bid, tick.ask):
            reason = "bad_quote"
        else:
            # the clock never runs ahead of now: one skewed tick must not refuse the next ones
            clock = min(tick.ts_ms, now_ms)
            if clock > self._last_ts.get(tick.symbol, 0):
                self._last_ts[tick.symbol] = clock
            return None
        self.rejected[reason] += 1
        return reason

    def tick_reasons(
        self,
        symbols: np.ndarray,
        ts_ms: np.ndarray,
        price: np.ndarray,
        bid: np.ndarray | None,
        ask: np.ndarray | None,
        now_ms: int,
    ) -> np.ndarray:
        """`tick_reason` for whole arrays of ticks at once (a backtest checks a million): the
        reason per row, None where accepted, counted in `rejected`. A bid or ask of NaN is no
        quote, the table reader's None for a blank one (`tick_reason` refuses a NaN quote);
        None: no such column.

        Only the checks that need no memory: this neither checks nor advances the per-symbol
        clocks, so it is for ticks that cannot be out of order. The backtest's cannot: each of
        its files is checked to be in time order (a DataError otherwise) and the files are
        merged by time, with `out_of_order_ms=0`, so `tick_reason` would never say
        out_of_order there, and nothing after the check reads the clocks."""
        # once per distinct symbol, not per row (a missing one is just another unknown)
        codes, names = pd.factorize(np.asarray(symbols, dtype=object), use_na_sentinel=False)
        known = np.array([n in self.universe for n in names], dtype=bool)[codes]
        quote_bad = np.zeros(len(ts_ms), dtype=bool)
        for q in (bid, ask):
            if q is not None:
                quote_bad |= ~np.isnan(q) & ~(np.isfinite(q) & (q > 0))
        if bid is not None and ask is not None:
            quote_bad |= bid > ask  # False where either is NaN
        with np.errstate(invalid="ignore"):
            checks = [  # in tick_reason's order: the first that fails is the reason
                ~np.isfinite(price),
                price <= 0,
                ~known,
                ts_ms > now_ms + self.future_tolerance_ms,
                quote_bad,
            ]
        code = np.select(checks, list(range(1, len(_TICK_REASONS))), 0)
        counts = np.bincount(code, minlength=len(_TICK_REASONS))[1:].tolist()
        for reason, n in zip(_TICK_REASONS[1:], counts, strict=True):
            if n:
                self.rejected[reason] += n
        return _TICK_REASONS[code]  # type: ignore[no-any-return]

    def headline_reason(self, h: Headline, now_ms: int) -> str | None:
        if not h.title.strip():
            reason = "empty_headline"
        elif h.ts_ms > now_ms + self.future_tolerance_ms:
            reason = "future"
        elif h.id in self._seen_news:
            reason = "duplicate_headline"
        elif self._title_seen(key := title_key(h.title), h.ts_ms):
            reason = "duplicate_headline"  # the same story under another id (another provider)
        else:
            self._seen_news[h.id] = None
            self._news_added += 1
            if len(self._seen_news) > 50_000:
                self._seen_news.popitem(last=False)
            self._remember_title(key, h.ts_ms)
            return None
        self.rejected[reason] += 1
        return reason

    def _title_seen(self, key: str, ts_ms: int) -> bool:
        first = self._seen_titles.get(key) if key else None
        return first is not None and abs(ts_ms - first) < TITLE_WINDOW_MS

    def _remember_title(self, key: str, ts_ms: int) -> None:
        prev = self._seen_titles.pop(key, None) if key else None
        self._title_undo.append((key, prev))
        if key:
            self._seen_titles[key] = ts_ms
            if len(self._seen_titles) > 50_000:
                self._seen_titles.popitem(last=False)

    def prime(self, clocks: dict[str, int], headlines: list[Headline]) -> None:
        """Remember what was accepted before a restart (see `StreamStore.edge_memory`): a feed
        that replays its last minutes on reconnect has those ticks refused as out of order,
        and a headline seen before is a duplicate, exactly as if the daemon had never stopped."""
        for sym, ts in clocks.items():
            if ts > self._last_ts.get(sym, 0):
                self._last_ts[sym] = ts
        for h in headlines:
            if h.id not in self._seen_news:
                self._seen_news[h.id] = None
                if len(self._seen_news) > 50_000:
                    self._seen_news.popitem(last=False)
            key = title_key(h.title)
            if key and not self._title_seen(key, h.ts_ms):
                self._seen_titles[key] = h.ts_ms
                if len(self._seen_titles) > 50_000:
                    self._seen_titles.popitem(last=False)

    def snapshot(self) -> tuple[dict[str, int], int]:
        """What `restore` needs to undo accepting a batch that then failed to be written."""
        return dict(self._last_ts), self._news_added

    def restore(self, snap: tuple[dict[str, int], int]) -> None:
        clock, news_added = snap
        self._last_ts = clock
        for _ in range(min(self._news_added - news_added, len(self._seen_news))):
            self._seen_news.popitem(last=True)
        for _ in range(min(self._news_added - news_added, len(self._title_undo))):
            key, prev = self._title_undo.pop()
            if key:
                self._seen_titles.pop(key, None)
                if prev is not None:
                    self._seen_titles[key] = prev
        self._news_added = news_added

    def reset_clock(self) -> None:
        """Forget per-symbol clocks (a replay starting a new loop moves time on by itself)."""
        self._last_ts.clear()


def _quote_ok(bid: float | None, ask: float | None) -> bool:
    for v in (bid, ask):
        if v is not None and (not math.isfinite(v) or v <= 0):
            return False
    return not (bid is not None and ask is not None and bid > ask)
