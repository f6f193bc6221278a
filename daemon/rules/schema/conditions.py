"""The rule schema's condition models, one per condition kind (`threshold:`, `pct_move:`, ...)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal, Self

import regex
from pydantic import Field, model_validator

from daemon.durations import Duration
from daemon.events import sentiment_label
from daemon.rules.schema.fields import Symbols, _Legs, _Level, _Model

if TYPE_CHECKING:
    from daemon.rules.schema.when import When  # BreadthCond.of: rebuilt once `When` exists


class ThresholdCond(_Level):
    """A symbol's price above or below a level."""

    symbols: Symbols
    price: Literal["last", "mid", "bid", "ask"] = "last"


class SpreadCond(_Legs, _Level):
    """`a` minus `b` as a price difference, a price ratio, or a return since an anchor date."""


class PctMoveCond(_Model):
    """A percent move of a symbol's price within a trailing window, or since an anchor."""

    symbols: Symbols
    window: Duration | None = Field(None, description="Trailing window, e.g. 30m")
    since: Literal["prev_close", "ytd"] | dt.date | None = Field(
        None, description="Or measure from the previous close, Jan 1, or a date (New York)"
    )
    up: float | None = Field(None, gt=0, description="Fire on a rise of at least this many %")
    down: float | None = Field(None, gt=0, description="Fire on a fall of at least this many %")
    either: float | None = Field(None, gt=0, description="Fire on a move either way of this %")
    clear: float | None = Field(
        None, ge=0, description="Resolve once the move is back within this many %"
    )

    @model_validator(mode="after")
    def _one_direction(self) -> Self:
        given = [k for k in ("up", "down", "either") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'up', 'down' or 'either' (a percent, e.g. 3)")
        if (self.window is None) == (self.since is None):
            raise ValueError("give a window (e.g. window: 30m) or an anchor (since: prev_close)")
        if self.window is not None and self.window.total_seconds() <= 0:
            raise ValueError("window must be longer than 0s")
        if self.clear is not None and self.clear > self.magnitude:
            raise ValueError(f"clear {self.clear} must not exceed the move {self.magnitude}")
        return self

    @property
    def direction(self) -> Literal["up", "down", "either"]:
        return "up" if self.up is not None else "down" if self.down is not None else "either"

    @property
    def magnitude(self) -> float:
        value = self.up or self.down or self.either
        assert value is not None
        return value


SentimentLabel = Literal["Bearish", "Somewhat-Bearish", "Neutral", "Somewhat-Bullish", "Bullish"]


class SentimentFilter(_Model):
    """Bounds on the -1..1 sentiment score (per-ticker where the provider scored the ticker)."""

    min: float | None = Field(None, ge=-1, le=1)
    max: float | None = Field(None, ge=-1, le=1)
    min_abs: float | None = Field(None, ge=0, le=1, description="Skip neutral news: |score| >= x")
    label: list[SentimentLabel] | None = Field(
        None,
        min_length=1,
        description="Alpha Vantage's bands on the score: Bearish (<= -0.35), Somewhat-Bearish, "
        "Neutral (-0.15..0.15), Somewhat-Bullish, Bullish (>= 0.35)",
    )

    def accepts(self, score: float | None) -> bool:
        if score is None:
            return self.min is None and self.max is None and self.min_abs is None and not self.label
        if self.min is not None and score < self.min:
            return False
        if self.max is not None and score > self.max:
            return False
        if self.label and sentiment_label(score) not in self.label:
            return False
        return not (self.min_abs is not None and abs(score) < self.min_abs)


class HeadlineCond(_Model):
    """A headline about the symbols whose title or summary matches the keywords.

    Each keyword entry may list alternatives with `|`: `"raises|lifts|boosts"`.
    """

    symbols: Symbols | None = None
    any_of: list[str] = Field(default_factory=list)
    all_of: list[str] = Field(default_factory=list)
    none_of: list[str] = Field(default_factory=list)
    regex: str | None = Field(
        None,
        max_length=300,
        description="A regular expression the title or summary must match (case-insensitive)",
    )
    sentiment: SentimentFilter | None = None
    sources: list[str] | None = None
    per: Literal["symbol", "headline"] = Field(
        "symbol",
        description="symbol: one alert per tagged symbol, each with its own sentiment and "
        "cooldown; headline: one alert per headline, under its first symbol",
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not (self.any_of or self.all_of or self.symbols or self.regex):
            raise ValueError(
                "give keywords (any_of / all_of), a regex or symbols to match headlines on"
            )
        if self.regex is not None:
            try:
                regex.compile(self.regex)
            except regex.error as e:
                raise ValueError(f"regex {self.regex!r} does not compile: {e}") from None
        for field_name in ("any_of", "all_of", "none_of"):
            for word in getattr(self, field_name):
                if not word.strip() or any(not alt.strip() for alt in word.split("|")):
                    raise ValueError(f"{field_name} has an empty keyword in {word!r}")
        return self


class SeriesSpread(_Legs):
    """A spread as a series to cross (no level of its own): `a` against `b`."""


class CrossesCond(_Model):
    """A series crossing a level: an event on the step that crosses, like TradingView's Crossing.

    The series is a symbol's price (`symbols`), a spread or ratio (`spread`), or an expression's
    value (`expr`); the edge is between two consecutive judged steps.
    """

    symbols: Symbols | None = None
    spread: SeriesSpread | None = None
    expr: str | None = Field(None, max_length=1000, description="A safe expression's value")
    level: float
    direction: Literal["up", "down", "any"] = "any"
    price: Literal["last", "mid", "bid", "ask"] = "last"

    @model_validator(mode="after")
    def _one_series(self) -> Self:
        given = [k for k in ("symbols", "spread", "expr") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "cross one series: give exactly one of symbols (a price), spread "
                "({a: XMAG, b: MAGS, as: ratio}) or expr"
                + (f"; found {', '.join(given)}" if given else "")
            )
        return self


class BandCond(_Model):
    """A price against a channel [lower, upper]: inside/outside (states), enters/exits (events)."""

    symbols: Symbols
    lower: float
    upper: float
    on: Literal["inside", "outside", "enters", "exits"] = Field(
        description="inside/outside hold while true; enters/exits fire on the crossing tick"
    )
    price: Literal["last", "mid", "bid", "ask"] = "last"

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.lower >= self.upper:
            raise ValueError(f"lower {self.lower} must be below upper {self.upper}")
        return self


class EarningsCond(_Model):
    """Inside a symbol's earnings window: from `before` the report meets the market to `after`.

    The report meets the market at the open for BMO reports and at the close for AMC ones.
    Combine it: `all: [{pct_move: ...}, {earnings: ...}]` is "a sharp move around earnings".
    """

    symbols: Symbols
    before: Duration = Field(default=dt.timedelta(days=1))
    after: Duration = Field(default=dt.timedelta(days=1))


class Reminder(_Model):
    """`before: 15m` (before the open for BMO, the close for AMC), or `days_before` + `at`."""

    before: Duration | None = None
    days_before: int | None = Field(None, ge=0, le=30)
    at: str | None = Field(
        None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, New York time"
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if (self.before is None) == (self.days_before is None and self.at is None):
            raise ValueError(
                "write either before: 15m, or days_before: 1 with at: '18:00' (New York time)"
            )
        if self.before is None and (self.days_before is None or self.at is None):
            raise ValueError("days_before and at go together, e.g. days_before: 1, at: '18:00'")
        return self


class EarningsReminderCond(_Model):
    """Time-driven: fires at set times before each report of the symbols (no tick needed)."""

    symbols: Symbols
    remind: list[Reminder] = Field(min_length=1)


class StaleCond(_Model):
    """No tick from a symbol for `after` while the regular session is open.

    Silence after the close, on weekends and holidays is not an outage, and the clock starts
    at the open: a feed that was quiet overnight is not stale at 09:31.
    """

    symbols: Symbols
    after: Duration

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.after.total_seconds() <= 0:
            raise ValueError("after must be longer than 0s, e.g. 5m")
        return self


class VolumeSpikeCond(_Model):
    """Volume in this time-of-day slot today vs the same slot's average over recent days."""

    symbols: Symbols
    slot: Duration = Field(default=dt.timedelta(minutes=5), description="Slot length, e.g. 5m")
    days: int = Field(20, ge=1, le=250, description="Earlier sessions in the baseline")
    ratio: float = Field(gt=1, description="Fire at this multiple of the usual volume, e.g. 3")
    min_days: int = Field(5, ge=1, description="Baseline sessions needed before judging")


class BreadthCond(_Model):
    """How many symbols of a group meet a condition: `at_least: 5` of mag7 down 2% today."""

    at_least: int = Field(ge=1)
    clear_below: int | None = Field(
        None, ge=0, description="Resolve once fewer than this many meet it (default at_least)"
    )
    of: When

    @model_validator(mode="after")
    def _levels(self) -> Self:
        if self.clear_below is not None and self.clear_below > self.at_least:
            raise ValueError(f"clear_below {self.clear_below} must not exceed at_least")
        flat = [w.kind for w in self.of.walk()]
        if any(k in ("spread", "expr", "headline", "earnings_reminder", "breadth") for k in flat):
            raise ValueError(
                "breadth counts symbols: its `of` must be a per-symbol condition such as "
                "pct_move or threshold over a group"
            )
        return self


class ExprCond(_Model):
    """A condition in the safe expression language: `ytd_return(XMAG) - ytd_return(MAGS) < 8`."""

    expr: str = Field(max_length=1000)


Condition = (
    ThresholdCond | SpreadCond | PctMoveCond | HeadlineCond | CrossesCond | BandCond | ExprCond
    | EarningsCond | EarningsReminderCond | StaleCond | BreadthCond | VolumeSpikeCond
)  # fmt: skip
