"""What a trader may write in a rule file, as pydantic models.

The models only check shape and local consistency (one comparison, a `clear` level on the right
side of the threshold). Cross-file facts, such as whether a symbol or channel exists, are
checked by `daemon.config`, which knows the whole configuration.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from typing import Annotated, Any, Literal, Self

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.alerts import Severity
from daemon.durations import Duration
from daemon.events import sentiment_label
from daemon.rules.sessions import ActiveWindow

__all__ = [
    "CONDITION_KINDS",
    "BandCond",
    "BreadthCond",
    "Condition",
    "CrossesCond",
    "EarningsCond",
    "EarningsReminderCond",
    "ExprCond",
    "FlapPolicy",
    "HeadlineCond",
    "PctMoveCond",
    "Reminder",
    "Rule",
    "RuleFile",
    "SentimentFilter",
    "SpreadCond",
    "StaleCond",
    "ThresholdCond",
    "VolumeSpikeCond",
    "When",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,79}$"
Symbols = Annotated[
    str | list[str],
    Field(description="A symbol (NVDA), a group name (mag7), or a list of either"),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class _Level(_Model):
    """`above` or `below` a level; `clear` is the level that resolves it (hysteresis)."""

    above: float | None = None
    below: float | None = None
    clear: float | None = Field(
        None, description="Resolve only once the value is back past this level (hysteresis)"
    )

    @model_validator(mode="after")
    def _one_side(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError(
                    f"clear {self.clear} must be at or below the 'above' level {self.above}"
                )
            if self.below is not None and self.clear < self.below:
                raise ValueError(
                    f"clear {self.clear} must be at or above the 'below' level {self.below}"
                )
        return self

    @property
    def comparison(self) -> Literal["above", "below"]:
        return "above" if self.above is not None else "below"

    @property
    def level(self) -> float:
        value = self.above if self.above is not None else self.below
        assert value is not None
        return value


class ThresholdCond(_Level):
    """A symbol's price above or below a level."""

    symbols: Symbols
    price: Literal["last", "mid", "bid", "ask"] = "last"


class _Legs(_Model):
    """Two symbols' prices as one series: a difference, a ratio, or a return since a date."""

    a: str
    b: str
    as_: Literal["difference", "ratio", "return"] = Field("difference", alias="as")
    since: Literal["ytd"] | dt.date | None = Field(
        None, description="Anchor for `as: return`: 'ytd' or a date (YYYY-MM-DD)"
    )

    @model_validator(mode="after")
    def _anchor(self) -> Self:
        if self.as_ == "return" and self.since is None:
            raise ValueError("'as: return' needs 'since': write since: ytd or since: 2026-01-02")
        if self.as_ != "return" and self.since is not None:
            raise ValueError(f"'since' only applies to 'as: return' (this spread is {self.as_})")
        if self.a == self.b:
            raise ValueError(f"a and b are both {self.a}; a spread needs two symbols")
        return self

    def anchor_date(self, today: dt.date) -> dt.date | None:
        """First day of the return period (Jan 1 of `today`'s year for ytd)."""
        if self.since == "ytd":
            return dt.date(today.year, 1, 1)
        return self.since if isinstance(self.since, dt.date) else None


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
CONDITION_KINDS = (
    "threshold", "spread", "pct_move", "headline", "crosses", "band", "expr", "earnings",
    "earnings_reminder", "stale", "breadth", "volume_spike", "all", "any", "not",
)  # fmt: skip
#: The words traders know from TradingView, accepted as condition names.
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "crossing": ("crosses", {"direction": "any"}),
    "crossing_up": ("crosses", {"direction": "up"}),
    "crossing_down": ("crosses", {"direction": "down"}),
    "entering_channel": ("band", {"on": "enters"}),
    "exiting_channel": ("band", {"on": "exits"}),
    "inside_channel": ("band", {"on": "inside"}),
    "outside_channel": ("band", {"on": "outside"}),
    "moving_up_pct": ("pct_move", {}),
    "moving_down_pct": ("pct_move", {}),
}


def _alias_properties(schema: dict[str, Any]) -> None:
    """Let editors accept the TradingView words too (validated in full by the daemon)."""
    props = schema.setdefault("properties", {})
    for alias, (kind, implied) in ALIASES.items():
        given = ", ".join(f"{k}: {v}" for k, v in implied.items())
        props[alias] = {
            "type": "object",
            "description": f"Same as `{kind}`"
            + (f" with {given}" if given else "")
            + (" (write by: N for the percent)" if alias.startswith("moving_") else ""),
        }


class When(_Model):
    """Exactly one condition, named by its kind; `all`/`any`/`not` combine conditions."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, json_schema_extra=_alias_properties
    )

    threshold: ThresholdCond | None = None
    spread: SpreadCond | None = None
    pct_move: PctMoveCond | None = None
    headline: HeadlineCond | None = None
    crosses: CrossesCond | None = None
    band: BandCond | None = None
    expr: str | None = Field(None, max_length=1000, description="A safe expression")
    earnings: EarningsCond | None = None
    earnings_reminder: EarningsReminderCond | None = None
    stale: StaleCond | None = None
    breadth: BreadthCond | None = None
    volume_spike: VolumeSpikeCond | None = None
    all: list[When] | None = Field(None, min_length=1, description="Every condition holds")
    any: list[When] | None = Field(None, min_length=1, description="At least one holds")
    not_: When | None = Field(None, alias="not", description="The condition does not hold")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, (kind, implied) in ALIASES.items():
            if alias in data and isinstance(data[alias], dict):
                body = dict(data.pop(alias))
                if alias.startswith("moving_") and "by" in body:
                    body["up" if alias == "moving_up_pct" else "down"] = body.pop("by")
                data[kind] = {**body, **implied}
        kinds = [k for k in data if k in CONDITION_KINDS]
        if len(kinds) > 1:
            raise ValueError(
                f"one condition per `when`, found {', '.join(kinds)}; "
                "combine them with all: [...] or any: [...]"
            )
        if not data:
            raise ValueError(f"name a condition: one of {', '.join(CONDITION_KINDS)}")
        return data

    @functools.cached_property
    def kind(self) -> str:
        """Which condition this is (computed once: compiling 1,000 rules asks ~8,000 times)."""
        k = next(
            k for k in CONDITION_KINDS if getattr(self, "not_" if k == "not" else k) is not None
        )
        return k

    @property
    def children(self) -> list[When]:
        if self.all is not None:
            return self.all
        if self.any is not None:
            return self.any
        return [self.not_] if self.not_ is not None else []

    @property
    def condition(self) -> Condition:
        if self.expr is not None:
            return ExprCond(expr=self.expr)
        cond: Condition = getattr(self, self.kind)
        return cond

    def walk(self) -> list[When]:
        """This condition and every condition nested in it."""
        return [w for _, w in self.walk_paths(())]

    def walk_paths(self, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], When]]:
        """(path in the file, condition) for this and every nested condition."""
        out: list[tuple[tuple[str | int, ...], When]] = [(path, self)]
        kind = self.kind
        if kind in ("all", "any"):
            for i, child in enumerate(self.children):
                out.extend(child.walk_paths((*path, kind, i)))
        elif kind == "not" and self.not_ is not None:
            out.extend(self.not_.walk_paths((*path, "not")))
        elif kind == "breadth" and self.breadth is not None:
            out.extend(self.breadth.of.walk_paths((*path, "breadth", "of")))
        return out

    @property
    def is_event(self) -> bool:
        """Fires on a single tick (a crossing, a headline), with no pending or resolve."""
        if self.kind in ("all", "any"):
            return any(c.is_event for c in self.children)
        if self.kind == "not":
            return False
        if self.kind in ("crosses", "headline", "earnings_reminder"):
            return True
        return self.kind == "band" and self.band is not None and self.band.on in ("enters", "exits")


NoDataAction = Literal["keep", "ok", "alerting"]


class FlapPolicy(_Model):
    """`transitions` fires/resolves within `within` mark the alert flapping: notifications are
    held until it has been quiet for `within`."""

    transitions: int = Field(ge=2, le=100)
    within: Duration


class Rule(_Model):
    """One trigger: a condition, how long it must hold, how it clears, who hears about it."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique id: lower-case, digits, - _ .")
    description: str = ""
    enabled: bool = True
    when: When
    for_: Duration = Field(
        default=dt.timedelta(0), alias="for", description="How long it must hold before firing"
    )
    cooldown: Duration = Field(
        default=dt.timedelta(0), description="Minimum time between two firings of one alert"
    )
    keep_firing_for: Duration = Field(
        default=dt.timedelta(0), description="Stay firing until clear has held this long"
    )
    repeat: Duration = Field(
        default=dt.timedelta(0), description="Remind every so often while still firing"
    )
    notify_resolved: bool = Field(True, description="Tell when the alert resolves")
    trigger: Literal["change", "once", "once_per_bar", "once_per_bar_close", "every_time"] = Field(
        "change",
        description="change: on state changes (default); TradingView's once, once_per_bar, "
        "once_per_bar_close, every_time (each bounded by cooldown)",
    )
    bar: Duration = Field(
        default=dt.timedelta(minutes=1),
        description="Bar length for evaluate: bar_close and the per-bar triggers",
    )
    evaluate: Literal["tick", "bar_close"] = Field(
        "tick",
        description="tick: judged on every event time (default); bar_close: once per `bar`, "
        "at its end, on the prices as they stood then",
    )
    max_skew: Duration | None = Field(
        None,
        description="Rules over several symbols: judged only while each leg's last price is "
        "at most this much older than the newest (default: the same bar for bars, 5m for "
        "trades and quotes)",
    )
    stale_after: Duration = Field(
        default=dt.timedelta(minutes=15),
        description="Rules over several symbols: a leg silent this long during the regular "
        "session is no data (on_no_data decides)",
    )
    expires: dt.datetime | None = Field(None, description="Stop evaluating after this time")
    active: ActiveWindow | None = Field(
        None, description="When the rule is evaluated: sessions, weekdays, from/until dates"
    )
    flap: FlapPolicy | None = None
    on_no_data: NoDataAction = Field(
        "keep",
        description="When the rule cannot be judged (a price, anchor or window history is "
        "missing, or an input is older than no_data_after): keep the alert as it is, treat "
        "the condition as ok (resolves), or as alerting (fires)",
    )
    no_data_after: Duration | None = Field(
        None,
        description="During the regular session, an input silent this long counts as no data "
        "(checked as the clock moves, not only on ticks)",
    )
    on_error: NoDataAction = Field(
        "keep",
        description="When evaluating the rule fails: keep the alert as it is, ok, or alerting",
    )
    severity: Severity = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    message: str | None = Field(None, description="Template, e.g. '{symbol} {value:.2f}'")
    resolved_message: str | None = Field(None, description="Template for the resolve notice")
    messages: dict[str, str] = Field(
        default_factory=dict,
        description="Per-channel message in Jinja2, keyed by channel name or type, e.g. "
        "{sms: '{{ symbol }} {{ value | num }}'}; it replaces `message` on that channel",
    )
    channels: list[str] = Field(min_length=1)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if not key.isidentifier():
                raise ValueError(f"label name {key!r} must be a plain identifier")
        return labels

    @field_validator("expires")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("expires needs a zone, e.g. 2026-12-31T16:00:00-05:00")
        return v

    @functools.cached_property
    def symbol_refs(self) -> tuple[str, ...]:
        """The symbols and groups this rule names (groups not expanded; an expression's
        symbols included), computed once: the daemon's universe is their union."""
        from daemon.rules.expr import ExprError, compile_expr  # the parser is heavier

        refs: list[str] = []
        for w in self.when.walk():
            if w.kind in ("all", "any", "not"):
                continue
            if w.kind == "expr":
                with contextlib.suppress(ExprError):  # reported by the config's cross-check
                    refs.extend(sorted(compile_expr(w.expr or "").symbols))
                continue
            cond = w.condition
            if isinstance(cond, CrossesCond) and cond.expr is not None:
                with contextlib.suppress(ExprError):
                    refs.extend(sorted(compile_expr(cond.expr, condition=False).symbols))
            for part in (cond, getattr(cond, "spread", None)):
                for attr in ("symbols", "a", "b"):
                    v = getattr(part, attr, None)
                    if isinstance(v, str):
                        refs.append(v)
                    elif v is not None:
                        refs.extend(v)
        return tuple(refs)

    @model_validator(mode="after")
    def _events_have_no_for(self) -> Self:
        if self.when.is_event and self.for_.total_seconds() > 0:
            raise ValueError(
                f"{self.when.kind} rules fire on a single tick or headline; remove 'for'"
            )
        if (
            self.when.headline is not None
            or any(w.headline is not None for w in self.when.walk()[1:])
        ) and self.when.kind != "headline":
            raise ValueError("headline conditions cannot be combined with price conditions yet")
        if self.when.kind != "earnings_reminder" and any(
            w.earnings_reminder is not None for w in self.when.walk()
        ):
            raise ValueError("earnings_reminder is time-driven and cannot be combined")
        no_data = self.on_no_data != "keep" or self.no_data_after is not None
        if self.when.kind in ("headline", "earnings_reminder") and (
            no_data or self.on_error != "keep"
        ):
            raise ValueError(
                f"on_no_data, no_data_after and on_error apply to price conditions, "
                f"not to {self.when.kind} rules; remove them"
            )
        if self.when.is_event and self.on_no_data == "alerting":
            raise ValueError(
                f"{self.when.kind} rules fire on a single tick; on_no_data: alerting would fire "
                "on every tick without data. Use a stale condition to alert on silence"
            )
        return self


class RuleFile(_Model):
    """A file under rules/: a list of rules (groups live in alerts.yaml)."""

    rules: list[Rule] = Field(default_factory=list)


BreadthCond.model_rebuild()
