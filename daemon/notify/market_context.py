"""What routing knows about the market at an instant: the exchange session and earnings nearby.

Routes, silences and quiet hours may depend on the market as well as on an alert's labels:
"SMS only during the session, Slack after hours, the on-call phone around a mega-cap report".
`MarketContext.at(now_ms)` answers, once per alert, with a `MarketNow`:

* ``session``: the NYSE session at that instant, from the calendar the rules use
  (`daemon.rules.nyse`), with its boundaries: ``pre`` 04:00 to the open, ``regular`` the open to
  the close, ``post`` the close to 20:00, ``closed`` nights and weekends, and ``holiday`` all day
  on a weekday the exchange does not open (2026-07-03, 2026-11-26). Routing tells a holiday
  apart from a weekend; rules' `active: sessions` say ``closed`` for both.
* ``early_close``: whether that New York date's regular session closes before 16:00 (the day
  after Thanksgiving, Christmas Eve), true all that day. The session names do not change on
  such a day: ``regular`` until the early close (13:00), then ``post`` until 20:00.

Both reach matchers as the virtual labels ``session`` and ``early_close`` (``"true"`` or
``"false"``), so `match: {session: regular}` works in routes, silences and inhibitions, and
quiet hours can follow sessions. Whether a symbol reports within a duration of now is
`MarketNow.earnings_within`: the rules' own earnings window (`EarningsWindow` of
`daemon.rules`, [report - d, report + d]) around the moment the report meets the market.

Pure: the earnings are handed in (the router merges the config's with Redis's); the session is
cached for the current minute (every boundary is on a whole minute).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, get_args

from daemon.events import NEW_YORK, EarningsEvent, ms_to_dt

if TYPE_CHECKING:
    from daemon.rules import EarningsWindow, Sessions

__all__ = ["MARKET_SESSIONS", "MarketContext", "MarketNow", "MarketSession", "check_sessions",
           "session_at"]  # fmt: skip

MarketSession = Literal["pre", "regular", "post", "closed", "holiday"]
MARKET_SESSIONS: tuple[MarketSession, ...] = get_args(MarketSession)


def check_sessions(v: object, field: str) -> object:
    """A `session:` list as written (one name alone allowed), or ValueError naming `field`
    and the sessions there are: what routes and quiet hours both validate with."""
    if v is None:
        return v
    items = [v] if isinstance(v, str) else v
    allowed = ", ".join(MARKET_SESSIONS)
    if not isinstance(items, list) or not items:
        raise ValueError(f"{field}: list one or more of {allowed}")
    for item in items:
        if item not in MARKET_SESSIONS:
            raise ValueError(f"{field}: {item!r} is not a session; use {allowed}")
    if len(set(items)) != len(items):
        raise ValueError(f"{field}: a session is listed twice")
    return items


_MINUTE_MS = 60_000
#: A regular session closing before this (New York time) is an early close.
_FULL_CLOSE_MINUTES = 16 * 60


@dataclass(frozen=True, slots=True)
class MarketNow:
    """The market at one instant, as routing sees it (computed once per alert)."""

    now_ms: int
    session: MarketSession
    early_close: bool
    context: MarketContext | None = field(default=None, compare=False, repr=False)

    @property
    def labels(self) -> dict[str, str]:
        """The virtual labels matchers see: ``session`` and ``early_close``."""
        return {"session": self.session, "early_close": "true" if self.early_close else "false"}

    def earnings_within(self, symbol: str, within_ms: int) -> bool:
        """Whether `symbol` has a report meeting the market within `within_ms` of now."""
        ctx = self.context
        return ctx is not None and ctx.earnings_within(symbol, within_ms, self.now_ms)


class MarketContext:
    """Sessions from the exchange calendar, earnings from what it is given; one per dispatcher.

    `set_earnings` replaces the calendar (the router does, when Redis has new dates); the
    per-symbol windows are rebuilt on demand.
    """

    def __init__(
        self, earnings: Iterable[EarningsEvent] = (), sessions: Sessions | None = None
    ) -> None:
        if sessions is None:
            from daemon.rules import nyse

            sessions = nyse()
        self.sessions = sessions
        self.earnings: tuple[EarningsEvent, ...] = ()
        self._windows: dict[tuple[str, int], EarningsWindow] = {}
        self._by_symbol: dict[str, list[EarningsEvent]] = {}
        self._minute = -1
        self._now: tuple[MarketSession, bool] = ("closed", False)
        self.set_earnings(earnings)

    def set_earnings(self, events: Iterable[EarningsEvent]) -> bool:
        """Use these reports from now on; False (and nothing rebuilt) if they are the same."""
        events = tuple(events)
        if events == self.earnings:
            return False
        self.earnings = events
        by_symbol: dict[str, list[EarningsEvent]] = {}
        for e in events:
            by_symbol.setdefault(e.symbol, []).append(e)
        self._by_symbol = by_symbol
        self._windows = {}
        return True

    def at(self, now_ms: int) -> MarketNow:
        """The session and early-close flag at `now_ms`, with this context's earnings."""
        minute = now_ms // _MINUTE_MS
        if minute != self._minute:
            self._now = self._compute(now_ms)
            self._minute = minute
        session, early = self._now
        return MarketNow(now_ms, session, early, self)

    def earnings_within(self, symbol: str, within_ms: int, now_ms: int) -> bool:
        """Whether one of `symbol`'s reports meets the market within `within_ms` of `now_ms`."""
        events = self._by_symbol.get(symbol)
        if not events:
            return False
        key = (symbol, within_ms)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _window(symbol, within_ms, events)
        return window.inside(now_ms)

    def _compute(self, now_ms: int) -> tuple[MarketSession, bool]:
        s = self.sessions
        date = s.ny_date(now_ms)
        hours = s.regular_hours(date)
        if hours is None:
            return ("holiday" if date.weekday() < 5 else "closed"), False
        close = _ny_minutes(hours[1])
        return s.session_at(now_ms), close < _FULL_CLOSE_MINUTES


def _ny_minutes(ts_ms: int) -> int:
    """Minutes after New York midnight of `ts_ms`."""
    local = ms_to_dt(ts_ms).astimezone(NEW_YORK)
    return local.hour * 60 + local.minute


def _window(symbol: str, within_ms: int, events: list[EarningsEvent]) -> EarningsWindow:
    """The rules' earnings window, `within_ms` either side of each report of `symbol`."""
    from daemon.rules import EarningsCond, EarningsWindow

    d = timedelta(milliseconds=within_ms)
    return EarningsWindow(EarningsCond(symbols=symbol, before=d, after=d), symbol, events)


_DEFAULT: list[MarketContext] = []


def session_at(now_ms: int) -> MarketSession:
    """The session at `now_ms` from the process calendar (for callers with no context)."""
    if not _DEFAULT:
        _DEFAULT.append(MarketContext())
    return _DEFAULT[0].at(now_ms).session
