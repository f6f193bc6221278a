"""Quiet hours: when a channel (a phone, typically) only takes critical alerts.

Times are wall-clock in the channel's zone (New York unless told), and a window may span
midnight (22:00-07:00). Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["QuietHours"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class QuietHours(BaseModel):
    """`quiet_hours: {start: "22:00", end: "07:00"}` on a channel."""

    model_config = ConfigDict(extra="forbid")

    start: dt.time = Field(description="Start, HH:MM")
    end: dt.time = Field(description="End, HH:MM (before start: the window spans midnight)")
    timezone: str = Field("America/New_York", description="IANA zone of start and end")
    weekdays: list[Weekday] | None = Field(
        None, description="Days the window starts on; omitted: every day"
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (KeyError, ValueError):
            raise ValueError(f"unknown time zone {v!r}; write e.g. America/New_York") from None
        return v

    def quiet(self, now_ms: int) -> bool:
        local = dt.datetime.fromtimestamp(now_ms / 1000, ZoneInfo(self.timezone))
        t = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            inside, started = self.start <= t < self.end, local.date()
        elif t >= self.start:
            inside, started = True, local.date()
        else:
            inside, started = t < self.end, local.date() - dt.timedelta(days=1)
        return inside and (self.weekdays is None or _DAYS[started.weekday()] in self.weekdays)
