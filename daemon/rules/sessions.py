"""NYSE trading sessions, and when a rule is active.

Two questions come up on every tick: "which session is this instant in" (rules may be active
only in the regular session; staleness checks must not call silence after the close an outage)
and "is this rule active now". Both are pure functions of a timestamp passed in by the caller.

Why a calendar library and not a hand-written list of holidays: exchange hours change (early
closes on the day after Thanksgiving and Christmas Eve, one-off closures such as national days
of mourning), and `exchange_calendars` tracks them and extrapolates the standing rules into the
future. We read its XNYS schedule in bulk, once per range of years, and keep only plain ints.

Why cached per day: `session_at` runs once per tick. The first call for a New York date builds a
small record of epoch-ms boundaries (pre-market start, open, close, post-market end, next
midnight); every later call that day is one dict lookup keyed by an integer day number plus a
few integer compares. Building the calendar takes a second or so, so there is one
`Sessions` per process, from the cached factory `nyse()`, passed to whoever needs it.

Session boundaries (New York time, half-open intervals ``[start, end)``):

* ``pre``: 04:00 to the exchange's open, on trading days;
* ``regular``: the exchange's real open to its real close for that day, so 09:30-13:00 on an
  early-close day;
* ``post``: the close to 20:00 on trading days. On an early-close day post runs from the early
  close (13:00) to 20:00: the exchange is shut, but venues keep quoting, and a rule that asks
  for ``post`` means "after the bell", whenever the bell rang;
* ``closed``: everything else, all day on weekends and holidays.

Dates outside the years the calendar can compute (before 1900, after 2200) have no sessions:
`session_at` says ``closed``, `is_trading_day` says False, and `next_open`/`next_close` raise
`ValueError`. Timestamps beyond what `datetime` can represent are clamped, never raised on.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import warnings
from typing import Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from daemon.events import NEW_YORK

__all__ = ["ActiveWindow", "SessionName", "Sessions", "WeekdayName", "nyse"]

SessionName = Literal["pre", "regular", "post", "closed"]
WeekdayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

CALENDAR = "XNYS"
PRE_START = dt.time(4, 0)
POST_END = dt.time(20, 0)

_DAY_MS = 86_400_000
_EPOCH = dt.date(1970, 1, 1)
#: Ticks are bucketed by ``(ts_ms - _SHIFT_MS) // _DAY_MS``. Bucket n starts at 05:00 UTC on
#: day n (midnight EST, 01:00 EDT), so all of New York date n's 04:00-20:00 falls inside it,
#: in winter and in summer; the NY date changes inside a bucket only in summer (at 04:00 UTC),
#: which the record's `midnight_ms` settles.
_SHIFT_MS = 5 * 3_600_000
#: Years whose schedule is loaded up front on first use; others are loaded on demand.
_PRELOAD = (dt.date(2000, 1, 1), dt.date(2035, 12, 31))
#: How far around an out-of-range date one on-demand load reaches (each load costs ~0.3 s).
_EXTEND = dt.timedelta(days=10 * 366)
#: What the calendar can compute (pandas timestamps are bounded; older XNYS history is noise).
_SUPPORTED = (dt.date(1900, 1, 1), dt.date(2200, 12, 31))
#: Clamp for nonsense timestamps, inside `datetime`'s range with a day's margin.
_MIN_DAY = (dt.date(1, 1, 2) - _EPOCH).days
_MAX_DAY = (dt.date(9999, 12, 30) - _EPOCH).days
#: Longest gap between sessions searched by next_open/next_close (the 1914 closure was 4.5
#: months).
_MAX_GAP_DAYS = 200
#: Boundary value below every timestamp: a day whose four boundaries are all this is closed.
_NEVER = -(2**63)

_WEEKDAYS: tuple[WeekdayName, ...] = get_args(WeekdayName)
_SESSIONS: tuple[SessionName, ...] = get_args(SessionName)


def _day_number(day: dt.date) -> int:
    return (day - _EPOCH).days


def _ny_ms(day: dt.date, at: dt.time) -> int:
    return int(dt.datetime.combine(day, at, NEW_YORK).timestamp()) * 1000


class _Day:
    """Boundaries of one New York date, as epoch ms; pre/open/close/post are `_NEVER` if closed."""

    __slots__ = ("close_ms", "date", "midnight_ms", "next_date", "open_ms", "post_ms", "pre_ms")

    def __init__(self, date: dt.date, hours: tuple[int, int] | None) -> None:
        self.date = date
        self.next_date = date + dt.timedelta(days=1)
        self.midnight_ms = _ny_ms(self.next_date, dt.time(0))
        if hours is None:
            self.pre_ms = self.open_ms = self.close_ms = self.post_ms = _NEVER
        else:
            self.open_ms, self.close_ms = hours
            self.pre_ms = min(_ny_ms(date, PRE_START), self.open_ms)
            self.post_ms = max(_ny_ms(date, POST_END), self.close_ms)


def _session_in(day: _Day, ts_ms: int) -> SessionName:
    """Which session of `day` holds `ts_ms` (which must fall in that day's bucket)."""
    if ts_ms < day.open_ms:
        return "pre" if ts_ms >= day.pre_ms else "closed"
    if ts_ms < day.close_ms:
        return "regular"
    return "post" if ts_ms < day.post_ms else "closed"


class Sessions:
    """The NYSE schedule as plain ints, loaded lazily and cached per day.

    Get the process-wide instance from `nyse()`; constructing one is cheap, but the first
    question it answers loads the calendar (about a second, with the import): call `load()`
    at startup to pay that before the first tick. Safe to share between threads: loads are
    serialised by a lock, and the caches only ever gain entries whose values never change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Trading days (epoch day number) -> (open_ms, close_ms), for every loaded range.
        self._hours: dict[int, tuple[int, int]] = {}
        #: Loaded ranges of day numbers, inclusive.
        self._loaded: list[tuple[int, int]] = []
        #: Bucket (see `_SHIFT_MS`) -> that date's boundaries. The hot path.
        self._days: dict[int, _Day] = {}
        #: (bucket, past its open, past its close) -> (next open, next close): `next_edges`.
        self._edges: dict[tuple[int, bool, bool], tuple[int, int]] = {}

    # -- the hot path -------------------------------------------------------------------------

    def session_at(self, ts_ms: int) -> SessionName:
        """The session at `ts_ms` (epoch ms): ``pre``, ``regular``, ``post`` or ``closed``."""
        day = self._days.get((ts_ms - _SHIFT_MS) // _DAY_MS)
        if day is None:
            day = self._day_at(ts_ms)
        # Same as `_session_in(day, ts_ms)`, inlined: this runs per tick.
        if ts_ms < day.open_ms:
            return "pre" if ts_ms >= day.pre_ms else "closed"
        if ts_ms < day.close_ms:
            return "regular"
        return "post" if ts_ms < day.post_ms else "closed"

    def regular_open(self, ts_ms: int) -> int | None:
        """The open of the regular session under way at `ts_ms`, or None outside one.

        One lookup for what staleness asks on every evaluation: "is it open, since when".
        """
        day = self._days.get((ts_ms - _SHIFT_MS) // _DAY_MS)
        if day is None:
            day = self._day_at(ts_ms)
        return day.open_ms if day.open_ms <= ts_ms < day.close_ms else None

    def next_edges(self, ts_ms: int) -> tuple[int, int]:
        """`(next_open(ts_ms), next_close(ts_ms))`, remembered: both only change at a
        boundary, and a simulation asks at every clock step (`daemon.rules.wake`)."""
        bucket = (ts_ms - _SHIFT_MS) // _DAY_MS
        day = self._days.get(bucket)
        if day is None:
            day = self._day_at(ts_ms)
        key = (bucket, ts_ms >= day.open_ms, ts_ms >= day.close_ms)
        hit = self._edges.get(key)
        if hit is None:
            hit = self._edges[key] = (self.next_open(ts_ms), self.next_close(ts_ms))
        return hit

    def is_regular(self, ts_ms: int) -> bool:
        """Whether the regular session is open at `ts_ms` (for staleness checks)."""
        return self.session_at(ts_ms) == "regular"

    def ny_date(self, ts_ms: int) -> dt.date:
        """The New York calendar date at `ts_ms`."""
        day = self._day(ts_ms)
        return day.date if ts_ms < day.midnight_ms else day.next_date

    # -- per-date questions -------------------------------------------------------------------

    def is_trading_day(self, date: dt.date) -> bool:
        """Whether the exchange has a regular session on `date` (a New York date)."""
        return self.regular_hours(date) is not None

    def regular_hours(self, date: dt.date) -> tuple[int, int] | None:
        """``(open_ms, close_ms)`` of the regular session on `date`, or None if closed all day."""
        n = _day_number(date)
        self._ensure(n)
        return self._hours.get(n)

    def next_open(self, ts_ms: int) -> int:
        """The first regular-session open strictly after `ts_ms`, in epoch ms.

        During a session this is the next trading day's open. Raises `ValueError` if there is
        none within the calendar's supported years.
        """
        return self._next(ts_ms, 0)

    def next_close(self, ts_ms: int) -> int:
        """The first regular-session close strictly after `ts_ms`, in epoch ms.

        During a session (or before it, the same day) this is that day's close. Raises
        `ValueError` if there is none within the calendar's supported years.
        """
        return self._next(ts_ms, 1)

    def load(self) -> Self:
        """Load the default range of years now rather than on the first question."""
        self._ensure(_day_number(_PRELOAD[0]))
        return self

    # -- internals ----------------------------------------------------------------------------

    def _next(self, ts_ms: int, which: Literal[0, 1]) -> int:
        date = self.ny_date(ts_ms)
        for _ in range(_MAX_GAP_DAYS):
            hours = self.regular_hours(date)
            if hours is not None and hours[which] > ts_ms:
                return hours[which]
            date += dt.timedelta(days=1)
        what = "open" if which == 0 else "close"
        raise ValueError(
            f"no NYSE {what} within {_MAX_GAP_DAYS} days after {ts_ms} ms "
            f"(the calendar covers {_SUPPORTED[0]:%Y}-{_SUPPORTED[1]:%Y})"
        )

    def _day(self, ts_ms: int) -> _Day:
        """The record of the New York date around `ts_ms` (cached)."""
        day = self._days.get((ts_ms - _SHIFT_MS) // _DAY_MS)
        return self._day_at(ts_ms) if day is None else day

    def _day_at(self, ts_ms: int) -> _Day:
        """Slow path: build (and cache, inside the supported years) the record for a bucket."""
        bucket = (ts_ms - _SHIFT_MS) // _DAY_MS
        n = min(max(bucket, _MIN_DAY), _MAX_DAY)
        date = _EPOCH + dt.timedelta(days=n)
        if not (_SUPPORTED[0] <= date <= _SUPPORTED[1]):
            return _Day(date, None)  # not cached: keeps nonsense timestamps from growing it
        self._ensure(n)
        day = _Day(date, self._hours.get(n))
        self._days[bucket] = day
        return day

    def _ensure(self, n: int) -> None:
        """Make sure the schedule around day number `n` is loaded (no-op outside support)."""
        if self._covers(n):
            return
        date = _EPOCH + dt.timedelta(days=min(max(n, _MIN_DAY), _MAX_DAY))
        if not (_SUPPORTED[0] <= date <= _SUPPORTED[1]):
            return
        with self._lock:
            if not self._loaded:
                self._load(*_PRELOAD)
            if not self._covers(n):
                self._load(max(date - _EXTEND, _SUPPORTED[0]), min(date + _EXTEND, _SUPPORTED[1]))

    def _covers(self, n: int) -> bool:
        return any(lo <= n <= hi for lo, hi in self._loaded)

    def _load(self, start: dt.date, end: dt.date) -> None:
        """Read the exchange's schedule for ``[start, end]`` into `_hours` (under the lock)."""
        import exchange_calendars  # slow to import too; only the first load pays
        import numpy as np
        from pandas.errors import Pandas4Warning

        with warnings.catch_warnings():
            # exchange_calendars 4.13 uses pandas APIs that pandas 3 deprecates; not ours to fix.
            warnings.simplefilter("ignore", Pandas4Warning)
            cal = exchange_calendars.get_calendar(
                CALENDAR, start=start.isoformat(), end=end.isoformat()
            )
            schedule = cal.schedule
            days = schedule.index.to_numpy(dtype="datetime64[D]").astype(np.int64)
            opens = schedule["open"].dt.tz_convert(None).to_numpy(dtype="datetime64[ms]")
            closes = schedule["close"].dt.tz_convert(None).to_numpy(dtype="datetime64[ms]")
        hours: dict[int, tuple[int, int]] = {
            int(n): (int(o), int(c))
            for n, o, c in zip(
                days.tolist(),
                opens.astype(np.int64).tolist(),
                closes.astype(np.int64).tolist(),
                strict=True,
            )
        }
        self._hours.update(hours)
        self._loaded.append((_day_number(start), _day_number(end)))


@functools.cache
def nyse() -> Sessions:
    """The process-wide NYSE `Sessions` (the calendar is loaded on first use, not here)."""
    return Sessions()


class ActiveWindow(BaseModel):
    """When a rule is active. Every field is optional; all given ones must hold.

    Weekdays and dates are New York ones; `from` and `until` are inclusive. Leaving out
    ``active`` (or a field of it) means always.

    Example::

        active:
          sessions: [pre, regular]        # any of: pre, regular, post, closed
          weekdays: [mon, tue, wed, thu, fri]
          from: 2026-01-05
          until: 2026-12-31
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    sessions: list[SessionName] | None = Field(
        None,
        description=(
            "Active only in these NYSE sessions (New York time): pre = 04:00 to the open, "
            "regular = the exchange's open to its close (13:00 on early-close days), "
            "post = the close to 20:00, closed = nights, weekends and holidays. "
            "Default: every session."
        ),
        json_schema_extra={"minItems": 1, "uniqueItems": True},
    )
    weekdays: list[WeekdayName] | None = Field(
        None,
        description="Active only on these New York weekdays (mon..sun). Default: every day.",
        json_schema_extra={"minItems": 1, "uniqueItems": True},
    )
    from_: dt.date | None = Field(
        None,
        alias="from",
        description="First New York date the rule is active (inclusive), e.g. 2026-01-05.",
    )
    until: dt.date | None = Field(
        None,
        description="Last New York date the rule is active (inclusive), e.g. 2026-12-31.",
    )

    @field_validator("sessions", "weekdays")
    @classmethod
    def _non_empty_unique(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if v is None:
            return v
        name = info.field_name
        choices = ", ".join(_SESSIONS if name == "sessions" else _WEEKDAYS)
        if not v:
            raise ValueError(
                f"`{name}` is empty: list at least one of {choices}, or leave it out for all"
            )
        seen: set[str] = set()
        for item in v:
            if item in seen:
                raise ValueError(f"`{name}` lists {item!r} twice")
            seen.add(item)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.from_ is not None and self.until is not None and self.from_ > self.until:
            raise ValueError(
                f"`from` ({self.from_}) is after `until` ({self.until}): the rule would never "
                "be active"
            )
        return self

    def allows(self, ts_ms: int, sessions: Sessions) -> bool:
        """Whether a rule with this window is active at `ts_ms` (epoch ms)."""
        # One day-record lookup serves both the session and the date; fields read once.
        only_in, weekdays, first, last = self.sessions, self.weekdays, self.from_, self.until
        day = sessions._day(ts_ms)
        if only_in is not None and _session_in(day, ts_ms) not in only_in:
            return False
        if weekdays is None and first is None and last is None:
            return True
        date = day.date if ts_ms < day.midnight_ms else day.next_date
        if weekdays is not None and _WEEKDAYS[date.weekday()] not in weekdays:
            return False
        return (first is None or first <= date) and (last is None or date <= last)
