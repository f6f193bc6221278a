"""The rule model (`Rule`: a condition and how it fires, clears and notifies) and `RuleFile`."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from daemon.alerts import Severity
from daemon.durations import Duration
from daemon.rules.schema.conditions import CrossesCond
from daemon.rules.schema.fields import NAME_PATTERN, _Model
from daemon.rules.schema.when import When
from daemon.rules.sessions import ActiveWindow

NoDataAction = Literal["keep", "ok", "alerting"]


class FlapPolicy(_Model):
    """`transitions` fires/resolves within `within` mark the alert flapping: notifications are
    held until it has been quiet for `within`."""

    transitions: int = Field(ge=2, le=100)
    within: Duration


class Escalate(_Model):
    """`escalate: {after: 10m, to: [sms_oncall], repeat: 3}`: an alert still firing and not
    acknowledged `after` it fired is sent on to `to`; again every `after`, `repeat` times in
    all. An ack anywhere (Slack, SMS, the CLI, the API) ends it everywhere."""

    after: Duration = Field(description="How long a firing may go unacknowledged, e.g. 10m")
    to: list[str] = Field(min_length=1, description="Channels the escalation goes to")
    repeat: int = Field(1, ge=1, le=20, description="Escalations at most, `after` apart")

    @field_validator("after")
    @classmethod
    def _after(cls, v: dt.timedelta) -> dt.timedelta:
        if v < dt.timedelta(seconds=1):
            raise ValueError("escalate.after must be at least 1s (e.g. 10m)")
        return v


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
    escalate: Escalate | None = Field(
        None, description="Send on to other channels while firing and not acknowledged"
    )

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
