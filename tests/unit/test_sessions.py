"""NYSE sessions and rule activity windows.

Expected instants come from explicit New York wall-clock datetimes (zoneinfo), or from UTC
datetimes where the point is the DST offset, never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from daemon.rules.sessions import ActiveWindow, Sessions, nyse

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
MINUTE = 60_000


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ms: int = 0) -> int:
    """Epoch ms of a New York wall-clock time."""
    return int(dt.datetime(y, mo, d, h, mi, s, tzinfo=NY).timestamp()) * 1000 + ms


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()) * 1000


@pytest.fixture(scope="module")
def sessions() -> Sessions:
    return nyse().load()


def test_factory_returns_one_instance() -> None:
    assert nyse() is nyse()


# -- session_at at known instants ------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [dt.date(2026, 3, 6), dt.date(2026, 3, 9)],  # Friday in EST, Monday in EDT
    ids=["est", "edt"],
)
def test_boundaries_of_an_ordinary_day(sessions: Sessions, day: dt.date) -> None:
    y, m, d = day.year, day.month, day.day
    expected = [
        (ny(y, m, d, 0, 0), "closed"),
        (ny(y, m, d, 3, 59, 59, 999), "closed"),
        (ny(y, m, d, 4, 0), "pre"),
        (ny(y, m, d, 9, 29, 59, 999), "pre"),
        (ny(y, m, d, 9, 30), "regular"),
        (ny(y, m, d, 12, 0), "regular"),
        (ny(y, m, d, 15, 59, 59, 999), "regular"),
        (ny(y, m, d, 16, 0), "post"),
        (ny(y, m, d, 19, 59, 59, 999), "post"),
        (ny(y, m, d, 20, 0), "closed"),
        (ny(y, m, d, 23, 59, 59, 999), "closed"),
    ]
    assert [(ts, sessions.session_at(ts)) for ts, _ in expected] == expected


def test_dst_moves_the_open_in_utc(sessions: Sessions) -> None:
    # 09:30 ET is 14:30 UTC in winter and 13:30 UTC in summer.
    assert sessions.session_at(utc(2026, 3, 6, 13, 30)) == "pre"
    assert sessions.session_at(utc(2026, 3, 6, 14, 30)) == "regular"
    assert sessions.session_at(utc(2026, 3, 9, 13, 30)) == "regular"
    # 20:00 ET is 01:00 UTC the next day in winter, 00:00 UTC in summer.
    assert sessions.session_at(utc(2026, 3, 7, 0, 30)) == "post"
    assert sessions.session_at(utc(2026, 3, 10, 0, 30)) == "closed"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ((2026, 11, 26, 3, 0), "closed"),  # Thanksgiving
        ((2026, 11, 26, 5, 0), "closed"),
        ((2026, 11, 26, 10, 0), "closed"),
        ((2026, 11, 26, 17, 0), "closed"),
        ((2026, 11, 27, 9, 0), "pre"),  # day after: early close at 13:00
        ((2026, 11, 27, 12, 59), "regular"),
        ((2026, 11, 27, 13, 0), "post"),
        ((2026, 11, 27, 13, 30), "post"),
        ((2026, 11, 27, 16, 30), "post"),
        ((2026, 11, 27, 20, 0), "closed"),
        ((2026, 12, 24, 12, 59), "regular"),  # Christmas Eve: early close at 13:00
        ((2026, 12, 24, 13, 0), "post"),
        ((2026, 12, 25, 10, 0), "closed"),  # Christmas
        ((2026, 4, 3, 10, 0), "closed"),  # Good Friday
        ((2026, 4, 3, 6, 0), "closed"),
        ((2026, 4, 2, 15, 59), "regular"),  # the Thursday before is a full day
        ((2026, 3, 7, 10, 0), "closed"),  # Saturday
        ((2026, 3, 8, 10, 0), "closed"),  # Sunday (and the DST change)
        ((2026, 1, 1, 10, 0), "closed"),  # New Year's Day
    ],
)
def test_holidays_early_closes_and_weekends(
    sessions: Sessions, when: tuple[int, ...], expected: str
) -> None:
    assert sessions.session_at(ny(*when)) == expected


Timetable = dict[dt.date, tuple[dt.time, dt.time] | None]


def _reference(ts_ms: int, hours: Timetable) -> str:
    """Session by hand from the NY wall clock and a hand-written timetable."""
    local = dt.datetime.fromtimestamp(ts_ms / 1000, NY)
    spec = hours[local.date()]
    if spec is None:
        return "closed"
    now = local.time()
    if dt.time(4) <= now < spec[0]:
        return "pre"
    if spec[0] <= now < spec[1]:
        return "regular"
    if spec[1] <= now < dt.time(20):
        return "post"
    return "closed"


def _week(start: dt.date, closes: list[int | None]) -> Timetable:
    """Consecutive days from `start`: None = closed, else open 09:30 and close at that hour."""
    return {
        start + dt.timedelta(days=i): None if c is None else (dt.time(9, 30), dt.time(c))
        for i, c in enumerate(closes)
    }


@pytest.mark.parametrize(
    "timetable",
    [
        # Across the spring DST change (Sunday 2026-03-08).
        _week(dt.date(2026, 3, 2), [16, 16, 16, 16, 16, None, None, 16, 16, 16, 16, 16, None]),
        # Across the autumn DST change (Sunday 2026-11-01).
        _week(dt.date(2026, 10, 29), [16, 16, None, None, 16, 16]),
        # Thanksgiving week: Thursday closed, Friday closes at 13:00.
        _week(dt.date(2026, 11, 23), [16, 16, 16, None, 13, None, None]),
        # Easter: Good Friday closed, Monday open.
        _week(dt.date(2026, 4, 1), [16, 16, None, None, None, 16]),
    ],
    ids=["spring-dst", "autumn-dst", "thanksgiving", "good-friday"],
)
def test_every_minute_matches_a_hand_timetable(sessions: Sessions, timetable: Timetable) -> None:
    first = min(timetable)
    last = max(timetable)
    start = ny(first.year, first.month, first.day)
    end = ny(last.year, last.month, last.day, 23, 59)
    mismatches = [
        (dt.datetime.fromtimestamp(ts / 1000, NY).isoformat(), got, want)
        for ts in range(start, end + 1, MINUTE)
        if (got := sessions.session_at(ts)) != (want := _reference(ts, timetable))
    ]
    assert mismatches == []


def test_far_future_and_nonsense_timestamps_do_not_crash(sessions: Sessions) -> None:
    # 2099 lies outside the preloaded years: loaded on demand, standing rules extrapolated.
    assert dt.date(2099, 6, 1).weekday() == 0
    assert sessions.session_at(ny(2099, 6, 1, 10, 0)) == "regular"
    assert sessions.session_at(ny(2099, 6, 6, 10, 0)) == "closed"  # Saturday
    assert sessions.session_at(ny(2099, 12, 25, 10, 0)) == "closed"  # Christmas (a Friday)
    assert sessions.is_trading_day(dt.date(2099, 6, 1))
    assert sessions.next_open(ny(2099, 6, 5, 17, 0)) == ny(2099, 6, 8, 9, 30)
    # Beyond what the calendar computes: no sessions, but answers.
    for ts in (ny(2300, 6, 1, 10, 0), 10**18, -(10**18), 2**80, -(2**80)):
        assert sessions.session_at(ts) == "closed"
        assert isinstance(sessions.ny_date(ts), dt.date)
    assert not sessions.is_trading_day(dt.date(2300, 6, 1))
    assert sessions.regular_hours(dt.date(9999, 12, 31)) is None
    with pytest.raises(ValueError, match="no NYSE open"):
        sessions.next_open(ny(2300, 6, 1))
    # Historical dates load on demand too (New Year's Day 1990 was a Monday holiday).
    assert sessions.session_at(ny(1990, 1, 2, 10, 0)) == "regular"
    assert sessions.session_at(ny(1990, 1, 1, 10, 0)) == "closed"


def test_ny_date_at_midnight_in_both_offsets(sessions: Sessions) -> None:
    # 00:30 EDT is 04:30 UTC: after the NY midnight, before the 05:00 UTC bucket edge.
    assert sessions.ny_date(ny(2026, 7, 1, 0, 30)) == dt.date(2026, 7, 1)
    assert sessions.ny_date(ny(2026, 6, 30, 23, 59, 59, 999)) == dt.date(2026, 6, 30)
    assert sessions.ny_date(ny(2026, 7, 1, 0, 0)) == dt.date(2026, 7, 1)
    assert sessions.ny_date(ny(2026, 1, 1, 0, 30)) == dt.date(2026, 1, 1)
    assert sessions.ny_date(ny(2025, 12, 31, 23, 59, 59, 999)) == dt.date(2025, 12, 31)
    assert sessions.ny_date(utc(2026, 3, 7, 2, 0)) == dt.date(2026, 3, 6)  # Fri 21:00 ET


# -- per-date questions ----------------------------------------------------------------------


def test_trading_days_and_hours(sessions: Sessions) -> None:
    assert sessions.is_trading_day(dt.date(2026, 3, 6))
    assert not sessions.is_trading_day(dt.date(2026, 3, 7))
    assert not sessions.is_trading_day(dt.date(2026, 11, 26))
    assert not sessions.is_trading_day(dt.date(2026, 4, 3))
    assert sessions.regular_hours(dt.date(2026, 3, 9)) == (
        ny(2026, 3, 9, 9, 30),
        ny(2026, 3, 9, 16),
    )
    assert sessions.regular_hours(dt.date(2026, 11, 27)) == (
        ny(2026, 11, 27, 9, 30),
        ny(2026, 11, 27, 13),
    )
    assert sessions.regular_hours(dt.date(2026, 11, 26)) is None


@pytest.mark.parametrize(
    ("at", "next_open", "next_close"),
    [
        # Friday after the close -> Monday (across the weekend and the DST change).
        ((2026, 3, 6, 17, 0), (2026, 3, 9, 9, 30), (2026, 3, 9, 16, 0)),
        # Friday in session: next open is Monday's, next close is today's.
        ((2026, 3, 6, 10, 0), (2026, 3, 9, 9, 30), (2026, 3, 6, 16, 0)),
        # Pre-market: both today.
        ((2026, 3, 9, 8, 0), (2026, 3, 9, 9, 30), (2026, 3, 9, 16, 0)),
        # Exactly at the open / close: strictly after, so the next ones.
        ((2026, 3, 9, 9, 30), (2026, 3, 10, 9, 30), (2026, 3, 9, 16, 0)),
        ((2026, 3, 9, 16, 0), (2026, 3, 10, 9, 30), (2026, 3, 10, 16, 0)),
        # Wednesday before Thanksgiving -> Friday's early session.
        ((2026, 11, 25, 17, 0), (2026, 11, 27, 9, 30), (2026, 11, 27, 13, 0)),
        # Thursday before Good Friday, after the close -> Monday (holiday + weekend).
        ((2026, 4, 2, 16, 0), (2026, 4, 6, 9, 30), (2026, 4, 6, 16, 0)),
        # Saturday night -> Monday.
        ((2026, 3, 7, 23, 0), (2026, 3, 9, 9, 30), (2026, 3, 9, 16, 0)),
    ],
)
def test_next_open_and_close(
    sessions: Sessions,
    at: tuple[int, ...],
    next_open: tuple[int, ...],
    next_close: tuple[int, ...],
) -> None:
    assert sessions.next_open(ny(*at)) == ny(*next_open)
    assert sessions.next_close(ny(*at)) == ny(*next_close)


def test_calendar_deprecation_warnings_stay_inside() -> None:
    filters_before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = Sessions().load()
        assert fresh.session_at(ny(2026, 3, 9, 10)) == "regular"
        # exchange_calendars reuses its last calendar for identical arguments, so also ask
        # about years nothing else in this suite loads, to be sure a calendar gets built.
        assert fresh.is_trading_day(dt.date(1955, 6, 1))
    assert [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)] == []
    assert warnings.filters == filters_before


def test_hot_path_answers_every_tick_of_a_week(sessions: Sessions) -> None:
    """The per-tick calls (`session_at`, and `regular_open` that staleness asks) answer, at every
    tick of a week, as the hand timetable says, on a cold per-day cache and on a warm one.

    Their cost is not asserted (machines differ); the answers on the cached path are.
    """
    timetable = _week(dt.date(2026, 3, 2), [16, 16, 16, 16, 16])  # Mon-Fri, no holiday
    start = ny(2026, 3, 2)
    stamps = range(start, start + 5 * 86_400_000, 2_160)  # 200k ticks over 5 days

    def opened(ts: int) -> int | None:
        local = dt.datetime.fromtimestamp(ts / 1000, NY)
        regular = _reference(ts, timetable) == "regular"
        return ny(local.year, local.month, local.day, 9, 30) if regular else None

    want = [(_reference(ts, timetable), opened(ts)) for ts in stamps]
    cold = Sessions()  # its own cache: the first pass builds each day's record
    for s in (cold, cold, sessions):
        got = [(s.session_at(ts), s.regular_open(ts)) for ts in stamps]
        assert got == want
    # 40,000 ticks a day from midnight: pre is ticks 6,667-15,833 (04:00-09:30), regular
    # 15,834-26,666 (09:30-16:00), post 26,667-33,333 (16:00-20:00), the rest closed.
    assert Counter(w[0] for w in want) == {
        "pre": 5 * 9_167,
        "regular": 5 * 10_833,
        "post": 5 * 6_667,
        "closed": 5 * 13_333,
    }


# -- ActiveWindow ------------------------------------------------------------------------------


def parse(text: str) -> ActiveWindow:
    return ActiveWindow.model_validate(yaml.safe_load(text)["active"])


def test_parses_the_documented_example() -> None:
    w = parse(
        """
        active:
          sessions: [regular]
          weekdays: [mon, tue, wed, thu, fri]
          from: 2026-01-05
          until: 2026-12-31
        """
    )
    assert w.sessions == ["regular"]
    assert w.weekdays == ["mon", "tue", "wed", "thu", "fri"]
    assert w.from_ == dt.date(2026, 1, 5)
    assert w.until == dt.date(2026, 12, 31)
    assert ActiveWindow.model_validate({"from": "2026-01-05"}).from_ == dt.date(2026, 1, 5)
    assert ActiveWindow(from_=dt.date(2026, 1, 5)).from_ == dt.date(2026, 1, 5)
    assert ActiveWindow.model_validate({"from": "2026-03-01", "until": "2026-03-01"}).until


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"from": "2026-12-31", "until": "2026-01-05"}, "`from` (2026-12-31) is after `until`"),
        ({"sessions": []}, "`sessions` is empty"),
        ({"weekdays": []}, "`weekdays` is empty"),
        ({"weekdays": ["mon", "mon"]}, "lists 'mon' twice"),
        ({"sessions": ["lunch"]}, "'pre', 'regular', 'post' or 'closed'"),
        ({"weekdays": ["monday"]}, "'mon', 'tue'"),
        ({"form": "2026-01-05"}, "Extra inputs are not permitted"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-01-05T10:00:00"}, "zero time"),
    ],
)
def test_validation_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ActiveWindow.model_validate(data)


def test_frozen() -> None:
    w = ActiveWindow(sessions=["regular"])
    with pytest.raises(ValidationError):
        w.sessions = ["pre"]  # type: ignore[misc]


def test_json_schema_uses_the_alias_and_describes_fields() -> None:
    schema = ActiveWindow.model_json_schema()
    props = schema["properties"]
    assert set(props) == {"sessions", "weekdays", "from", "until"}
    assert schema["additionalProperties"] is False
    assert all(p.get("description") for p in props.values())
    assert "sessions:" in schema["description"]  # the YAML example


def test_always_when_empty(sessions: Sessions) -> None:
    w = ActiveWindow()
    for ts in (ny(2026, 3, 7, 3, 0), ny(2026, 3, 9, 10, 0), ny(2300, 1, 1), 2**80):
        assert w.allows(ts, sessions)


def test_allows_by_session(sessions: Sessions) -> None:
    regular = ActiveWindow(sessions=["regular"])
    assert regular.allows(ny(2026, 3, 9, 10, 0), sessions)
    assert not regular.allows(ny(2026, 3, 9, 9, 0), sessions)
    assert not regular.allows(ny(2026, 11, 26, 10, 0), sessions)  # Thanksgiving
    assert not regular.allows(ny(2026, 11, 27, 13, 30), sessions)  # after the early close
    extended = ActiveWindow(sessions=["pre", "post"])
    assert extended.allows(ny(2026, 3, 9, 9, 0), sessions)
    assert extended.allows(ny(2026, 11, 27, 13, 30), sessions)
    assert not extended.allows(ny(2026, 3, 9, 10, 0), sessions)
    closed = ActiveWindow(sessions=["closed"])
    assert closed.allows(ny(2026, 3, 7, 10, 0), sessions)  # Saturday
    assert closed.allows(ny(2026, 4, 3, 10, 0), sessions)  # Good Friday
    assert not closed.allows(ny(2026, 4, 2, 10, 0), sessions)


def test_allows_by_new_york_weekday(sessions: Sessions) -> None:
    friday_night = utc(2026, 3, 7, 2, 0)  # Saturday in UTC, Friday 21:00 in New York
    assert ActiveWindow(weekdays=["fri"]).allows(friday_night, sessions)
    assert not ActiveWindow(weekdays=["sat"]).allows(friday_night, sessions)
    weekend = ActiveWindow(weekdays=["sat", "sun"])
    assert weekend.allows(ny(2026, 3, 7, 0, 0), sessions)
    assert weekend.allows(ny(2026, 3, 8, 23, 59), sessions)
    assert not weekend.allows(ny(2026, 3, 9, 0, 0), sessions)
    both = ActiveWindow(sessions=["regular"], weekdays=["mon"])
    assert both.allows(ny(2026, 3, 9, 10, 0), sessions)
    assert not both.allows(ny(2026, 3, 10, 10, 0), sessions)


def test_allows_by_inclusive_new_york_dates(sessions: Sessions) -> None:
    w = ActiveWindow.model_validate({"from": "2026-03-06", "until": "2026-03-09"})
    assert not w.allows(ny(2026, 3, 5, 23, 59, 59, 999), sessions)
    assert w.allows(ny(2026, 3, 6, 0, 0), sessions)
    assert w.allows(ny(2026, 3, 9, 23, 59, 59, 999), sessions)  # 03:59 UTC on the 10th
    assert not w.allows(ny(2026, 3, 10, 0, 0), sessions)
    only_from = ActiveWindow.model_validate({"from": "2026-03-06"})
    assert only_from.allows(ny(2099, 6, 1), sessions)
    assert not only_from.allows(ny(2026, 3, 5, 12), sessions)
    only_until = ActiveWindow.model_validate({"until": "2026-03-06"})
    assert only_until.allows(ny(2000, 1, 3), sessions)
    assert not only_until.allows(ny(2026, 3, 7), sessions)
