"""Normalized market events: the one shape every source produces and every rule reads.

Events are plain slotted dataclasses rather than pydantic models because they are created and
read once per tick on the hot path; validation happens once, at the edge (`sources.normalize`).
Timestamps are timezone-aware UTC datetimes at the edges and integer epoch milliseconds inside
(`ts_ms`), which is what windows compare and what Redis stores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "NEW_YORK",
    "SENTIMENT_LABELS",
    "Headline",
    "Tick",
    "TickKind",
    "dt_to_ms",
    "ms_to_dt",
    "sentiment_label",
]

TickKind = Literal["trade", "quote", "bar"]
#: The market's time zone: sessions, trading days and reports are New York time.
NEW_YORK = ZoneInfo("America/New_York")


def dt_to_ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime (naive datetimes are refused: no guessing zones)."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: timestamps must be timezone-aware")
    return int(dt.timestamp() * 1000)


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(slots=True, frozen=True)
class Tick:
    """One price observation. For bars, `price` is the close and `ts_ms` the bar's end.

    `history`: a price from the past (a backfill, or a replay before its `start`) that warms
    prices, windows and anchors but is never judged, so it can never fire an alert.
    """

    symbol: str
    ts_ms: int
    price: float
    size: float = 0.0
    bid: float | None = None
    ask: float | None = None
    kind: TickKind = "trade"
    source: str = ""
    history: bool = False

    @property
    def ts(self) -> datetime:
        return ms_to_dt(self.ts_ms)

    def to_fields(self) -> dict[str, str]:
        """String fields for a Redis stream entry (compact: one-letter keys)."""
        f = self.flat_fields()
        return dict(zip(f[::2], f[1::2], strict=True))

    def flat_fields(self) -> list[str]:
        """`to_fields` as `[field, value, ...]`: what XADD takes, without a dict per tick."""
        f = ["s", self.symbol, "t", str(self.ts_ms), "p", repr(self.price), "k", self.kind,
             "src", self.source]  # fmt: skip
        if self.size:
            f += ("v", repr(self.size))
        if self.bid is not None:
            f += ("b", repr(self.bid))
        if self.ask is not None:
            f += ("a", repr(self.ask))
        if self.history:
            f += ("h", "1")
        return f

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> Tick:
        bid = f.get("b")
        ask = f.get("a")
        return cls(
            symbol=f["s"],
            ts_ms=int(f["t"]),
            price=float(f["p"]),
            size=float(f.get("v", 0.0)),
            bid=float(bid) if bid is not None else None,
            ask=float(ask) if ask is not None else None,
            kind=f.get("k", "trade"),  # type: ignore[arg-type]
            source=f.get("src", ""),
            history=f.get("h") == "1",
        )


#: Alpha Vantage's bands on the -1..1 score, used for every source's score (and the local one),
#: so `label: [Bullish]` in a rule means the same whichever provider the headline came from.
SENTIMENT_LABELS = ("Bearish", "Somewhat-Bearish", "Neutral", "Somewhat-Bullish", "Bullish")


def sentiment_label(score: float) -> str:
    if score <= -0.35:
        return "Bearish"
    if score <= -0.15:
        return "Somewhat-Bearish"
    if score < 0.15:
        return "Neutral"
    if score < 0.35:
        return "Somewhat-Bullish"
    return "Bullish"


@dataclass(slots=True, frozen=True)
class Headline:
    """A news item with a -1..1 sentiment: the provider's, or the local scorer's (`scored_by`)."""

    id: str
    ts_ms: int
    title: str
    summary: str = ""
    symbols: tuple[str, ...] = ()
    source: str = ""
    url: str = ""
    sentiment: float | None = None
    ticker_sentiment: dict[str, float] = field(default_factory=dict)
    #: "" when the provider scored the headline; the local scorer's name when it did.
    scored_by: str = ""

    @property
    def ts(self) -> datetime:
        return ms_to_dt(self.ts_ms)

    def sentiment_for(self, symbol: str) -> float | None:
        """Per-ticker sentiment when the provider scored this symbol, else the overall score."""
        return self.ticker_sentiment.get(symbol, self.sentiment)

    def to_fields(self) -> dict[str, str]:
        f = {
            "id": self.id,
            "t": str(self.ts_ms),
            "title": self.title,
            "summary": self.summary,
            "symbols": ",".join(self.symbols),
            "src": self.source,
            "url": self.url,
        }
        if self.sentiment is not None:
            f["sent"] = repr(self.sentiment)
        if self.ticker_sentiment:
            f["tsent"] = json.dumps(self.ticker_sentiment, sort_keys=True)
        if self.scored_by:
            f["sby"] = self.scored_by
        return f

    def flat_fields(self) -> list[str]:
        return [x for kv in self.to_fields().items() for x in kv]

    @classmethod
    def from_fields(cls, f: dict[str, str]) -> Headline:
        sent = f.get("sent")
        tsent = f.get("tsent")
        symbols = f.get("symbols", "")
        return cls(
            id=f["id"],
            ts_ms=int(f["t"]),
            title=f.get("title", ""),
            summary=f.get("summary", ""),
            symbols=tuple(s for s in symbols.split(",") if s),
            source=f.get("src", ""),
            url=f.get("url", ""),
            sentiment=float(sent) if sent is not None else None,
            ticker_sentiment={k: float(v) for k, v in json.loads(tsent).items()} if tsent else {},
            scored_by=f.get("sby", ""),
        )


ReportTime = Literal["bmo", "amc", "unknown"]


@dataclass(slots=True, frozen=True)
class EarningsEvent:
    """A company's scheduled report: before the open (bmo), after the close (amc), or unknown."""

    symbol: str
    date: date
    when: ReportTime = "unknown"
    note: str = ""

    @property
    def market_ms(self) -> int:
        """The moment the report meets the market: the open for BMO, the close otherwise.

        Unknown timing is treated as after the close, the common case for US mega-caps.
        """
        at = time(9, 30) if self.when == "bmo" else time(16, 0)
        return int(datetime.combine(self.date, at, NEW_YORK).timestamp() * 1000)

    @property
    def when_text(self) -> str:
        return {"bmo": "before the open", "amc": "after the close"}.get(self.when, "(time tbc)")
