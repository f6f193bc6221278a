"""Quiet hours: when a channel (a phone, typically) only takes critical alerts.

Two forms. Wall-clock times in the channel's zone (New York unless told), a window that may span
midnight (`{start: "22:00", end: "07:00"}`); or exchange sessions, quiet while the NYSE is in one
of them (`{sessions: [pre, post, closed, holiday]}`, see `market_context`). Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.notify.market_context import MarketSession, check_sessions, session_at

__all__ = ["QuietHours"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class QuietHours(BaseModel):
    """`quiet_hours: {start: "22:00", end: "07:00"}` or `{sessions: [post, closed]}` on a
    channel."""

    model_config = ConfigDict(extra="forbid")

    start: dt.time | None = Field(None, description="Start, HH:MM (with end)")
    end: dt.time | None = Field(
        None, description="End, HH:MM (before start: the window spans midnight)"
    )
    timezone: str = Field("America/New_York", description="IANA zone of start and end")
    weekdays: list[Weekday] | None = Field(
        None, description="Days the window starts on; omitted: every day"
    )
    sessions: list[MarketSession] | None = Field(
        None,
        description="Instead of start/end: quiet while the NYSE is in one of these sessions "
        "(pre, regular, post, closed, holiday; New York time)",
        json_schema_extra={"minItems": 1, "uniqueItems": True},
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (KeyError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; write e.g. America/New_York") from None
        return v

    @field_validator("sessions", mode="before")
    @classmethod
    def _sessions(cls, v: object) -> object:
        return check_sessions(v, "sessions")

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        times = self.start is not None or self.end is not None
        if self.sessions is not None:
            if times or self.weekdays is not None or "timezone" in self.model_fields_set:
                raise ValueError(
                    "quiet_hours: give either sessions: [...] or start/end (with timezone and "
                    "weekdays), not both"
                )
        elif self.start is None or self.end is None:
            raise ValueError(
                'quiet_hours: give start and end (e.g. start: "22:00", end: "07:00"), or '
                "sessions: [pre, post, closed, holiday]"
            )
        return self

    def quiet(self, now_ms: int, session: str | None = None) -> bool:
        """Whether `now_ms` is quiet time; `session` is the market's then (computed if None)."""
        if self.sessions is not None:
            return (session or session_at(now_ms)) in self.sessions
        assert self.start is not None and self.end is not None
        local = dt.datetime.fromtimestamp(now_ms / 1000, ZoneInfo(self.timezone))
        t = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            inside, started = self.start <= t < self.end, local.date()
        elif t >= self.start:
            inside, started = True, local.date()
        else:
            inside, started = t < self.end, local.date() - dt.timedelta(days=1)
        return inside and (self.weekdays is None or _DAYS[started.weekday()] in self.weekdays)
