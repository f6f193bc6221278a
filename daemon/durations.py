"""Durations as traders write them: `30s`, `5m`, `1h30m`, `2d`.

A tiny parser rather than a library: the grammar is six units, and the error has to say
exactly what to write instead (`'5 minutes' is not a duration; write 5m`).
"""

from __future__ import annotations

import functools
import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = ["Duration", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")
_WORDS = {
    "sec": "s", "second": "s", "min": "m", "minute": "m", "hour": "h", "hr": "h",
    "day": "d", "week": "w",
}  # fmt: skip


def _suggest(text: str) -> str:
    if re.match(r"^\d+(\.\d+)?$", text):
        return f"{text}s or {text}m (a unit is required)"
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$", text)
    if m:
        raw = m.group(2).lower()
        word = raw.rstrip("s") or "s"
        unit = raw if raw in _UNITS else _WORDS.get(word) or (word if word in _UNITS else None)
        if unit:
            return f"{m.group(1)}{unit}"
    return "a number and a unit, e.g. 30s, 5m, 1h30m, 2d"


def parse_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 5m")
    if isinstance(value, int | float):
        if value == 0:
            return timedelta(0)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a duration; write e.g. 5m")
        raise ValueError(f"{value!r} is not a duration (no unit); write {value}s or {value}m")
    return _parse_text(str(value).strip())


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> timedelta:
    """Cached: a config of 1,000 rules spells the same few durations thousands of times, and a
    reload parses them all again (errors are raised, never cached)."""
    if not text:
        raise ValueError("empty duration; write e.g. 5m, or 0 for none")
    if text == "0":
        return timedelta(0)
    if not _WHOLE.match(text):
        raise ValueError(f"{text!r} is not a duration; write {_suggest(text)}")
    seconds = 0.0
    for n, u in _PART.findall(text):
        seconds += float(n) * _UNITS[u]
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long to be a duration") from None


def format_duration(td: timedelta) -> str:
    total, ms = divmod(round(td.total_seconds() * 1000), 1000)
    if total == 0 and ms == 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out + (f"{ms}ms" if ms else "")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d|w))+$|^0$"}),
]
