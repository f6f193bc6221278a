"""Durations as traders write them, and the hint they get when they write something else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from daemon.durations import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("  45s  ", timedelta(seconds=45)),
        ("0", timedelta(0)),
        (0, timedelta(0)),
        (0.0, timedelta(0)),
    ],
)
def test_accepts(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_timedelta_passes_through() -> None:
    td = timedelta(minutes=7)
    assert parse_duration(td) is td


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("5 minutes", "write 5m"),
        ("5 mins", "write 5m"),
        ("2 hours", "write 2h"),
        ("3 days", "write 3d"),
        ("10 seconds", "write 10s"),
        ("5M", "write 5m"),
        ("5 ms", "write 5ms"),  # milliseconds, not minutes
    ],
)
def test_words_get_the_short_form(text: str, hint: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == f"{text!r} is not a duration; {hint}"


def test_five_minutes_exact_message() -> None:
    with pytest.raises(ValueError, match=r"^'5 minutes' is not a duration; write 5m$"):
        parse_duration("5 minutes")


def test_bare_number_needs_a_unit() -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration("5")
    assert "a unit is required" in str(exc.value)
    assert "5s or 5m" in str(exc.value)
    with pytest.raises(ValueError, match=r"no unit.*write 300s or 300m"):
        parse_duration(300)  # YAML `for: 300` arrives as an int


@pytest.mark.parametrize("value", [True, False])
def test_bools_refused(value: bool) -> None:
    # `False == 0` in Python: a bool must not slip through as a zero duration
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    "junk", ["-5m", "--5m", "5m ago", "m5", "5x", "1h-30m", "1e3m", "5 m s", "ten minutes"]
)
def test_junk_refused_with_generic_hint(junk: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(junk)
    msg = str(exc.value)
    assert msg.startswith(f"{junk!r} is not a duration; write ")
    assert "e.g. 30s, 5m" in msg


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -3])
def test_non_finite_and_negative_numbers_refused(value: float) -> None:
    with pytest.raises(ValueError, match="is not a duration") as exc:
        parse_duration(value)
    # the hint must be something that parses, never "write nans" or "write -3s"
    assert str(exc.value).endswith("write e.g. 5m")


def test_absurdly_long_is_a_value_error_not_a_crash() -> None:
    # timedelta overflows; it must surface as a validation problem, not an OverflowError
    with pytest.raises(ValueError, match="too long"):
        parse_duration("9999999999d")
    with pytest.raises(ValidationError):
        TypeAdapter(Duration).validate_python("9999999999d")


@pytest.mark.parametrize(
    "td",
    [
        timedelta(0),
        timedelta(seconds=30),
        timedelta(minutes=5),
        timedelta(hours=1, minutes=30),
        timedelta(days=2),
        timedelta(days=9, hours=23, minutes=59, seconds=59),
        timedelta(milliseconds=500),
        timedelta(seconds=1, milliseconds=500),
    ],
)
def test_format_round_trips(td: timedelta) -> None:
    assert parse_duration(format_duration(td)) == td


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(weeks=1), "7d"),
        (timedelta(days=1, seconds=5), "1d5s"),
        (timedelta(milliseconds=250), "250ms"),
    ],
)
def test_format_is_canonical(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


def test_pydantic_type_parses_and_serializes() -> None:
    ta = TypeAdapter(Duration)
    assert ta.validate_python("1h30m") == timedelta(minutes=90)
    assert ta.dump_python(timedelta(minutes=90), mode="json") == "1h30m"
    with pytest.raises(ValidationError, match="write 5m"):
        ta.validate_python("5 minutes")
