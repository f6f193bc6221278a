"""Test-file values: the promtool series notation and the times (`start`, `at`), parsed purely."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from daemon.alerts import NEW_YORK
from daemon.durations import parse_duration
from daemon.events import dt_to_ms

__all__ = ["MAX_SERIES", "expand_series", "parse_at", "parse_start"]

#: A series longer than this is a typo (`1x99999999`), not a test: refuse before allocating.
MAX_SERIES = 200_000

# --- series notation (pure) -----------------------------------------------------------------

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_TOKEN = re.compile(rf"^(?P<a>[+-]?{_NUM})(?:(?P<op>[+-])(?P<b>{_NUM}))?(?:x(?P<n>\d+))?$")
_GAP = re.compile(r"^_(?:x(?P<n>\d+))?$")
_SERIES_HELP = "write numbers, axN (a, N+1 times), a+bxN or a-bxN (a then N steps of b), _ or _xN"


def expand_series(text: str) -> list[float | None]:
    """Expand promtool-style series notation; None is a step without a tick.

    Values are computed as `a + k*b` (not by repeated addition) and rounded to 1e-9, so
    `60+0.05x30` ends at exactly 61.5 rather than 61.50000000000003.
    """
    out: list[float | None] = []
    tokens = text.split()
    if not tokens:
        raise ValueError(f"empty series; {_SERIES_HELP}")
    for i, tok in enumerate(tokens, 1):
        gap = _GAP.match(tok)
        if gap:
            n = int(gap.group("n")) if gap.group("n") is not None else 1
            _check_len(len(out) + n)
            out.extend([None] * n)
            continue
        m = _TOKEN.match(tok)
        if m is None:
            hint = " (tickwatch has no stale marker: use _ for no tick)" if tok == "stale" else ""
            raise ValueError(f"value {i} {tok!r} is not series notation{hint}; {_SERIES_HELP}")
        a = float(m.group("a"))
        if m.group("op") is not None and m.group("n") is None:
            raise ValueError(f"value {i} {tok!r} has a step but no count; write e.g. {tok}x10")
        step = float(m.group("b")) if m.group("b") is not None else 0.0
        step = -step if m.group("op") == "-" else step
        n = int(m.group("n")) if m.group("n") is not None else 0
        _check_len(len(out) + n + 1)
        for k in range(n + 1):
            price = round(a + k * step, 9)
            if price <= 0:
                raise ValueError(
                    f"value {i} {tok!r} reaches {price:g} at its step {k}; prices must be "
                    "positive (the daemon's edge refuses others)"
                )
            out.append(price)
    return out


def _check_len(n: int) -> None:
    if n > MAX_SERIES:
        raise ValueError(f"series expands to more than {MAX_SERIES} values")


def _series(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected series notation, got {value!r}; {_SERIES_HELP}")
    if isinstance(value, int | float):
        if not value > 0:
            raise ValueError(f"price {value!r} must be positive (the daemon's edge refuses others)")
        return [float(value)]
    if isinstance(value, str):
        return expand_series(value)
    raise ValueError(f'expected a string of series notation, e.g. "27.7 27.7x30"; {_SERIES_HELP}')


# --- times (pure) ---------------------------------------------------------------------------


def _aware(value: Any, what: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not {what}; write e.g. 2026-04-09T13:00:00-04:00"
            ) from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            offset = value.replace(tzinfo=NEW_YORK).strftime("%z")
            iso = value.isoformat(timespec="seconds")
            raise ValueError(
                f"{iso} has no UTC offset; write {iso}{offset[:3]}:{offset[3:]} for New York "
                "time (or add Z for UTC)"
            )
        return value
    if isinstance(value, dt.date):
        raise ValueError(f"{value} is a date; write a time too, e.g. {value}T09:30:00-04:00")
    raise ValueError(f"{value!r} is not {what}; write e.g. 2026-04-09T13:00:00-04:00")


def parse_start(value: Any) -> dt.datetime:
    """A test's `start`: an aware timestamp (a naive one is refused, with the fix spelled out)."""
    return _aware(value, "a timestamp")


def parse_at(value: Any) -> dt.timedelta | dt.datetime:
    """An `at`: an offset from `start` (a duration) or an absolute aware timestamp."""
    if isinstance(value, dt.datetime | dt.date):
        return _aware(value, "a timestamp")
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\d", value.strip()):
        return _aware(value, "a timestamp")
    try:
        return parse_duration(value)
    except ValueError as e:
        raise ValueError(f"{e} (an offset from start), or an aware timestamp") from None


def _ms(td: dt.timedelta) -> int:
    return round(td / dt.timedelta(milliseconds=1))


def _at_ms(at: dt.timedelta | dt.datetime, start_ms: int) -> int:
    return dt_to_ms(at) if isinstance(at, dt.datetime) else start_ms + _ms(at)
