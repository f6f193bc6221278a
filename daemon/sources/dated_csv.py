"""Dated facts from local CSV files, the sources that always work offline: the earnings
calendar, and anchor prices for returns since a date.

Earnings: `symbol,date,when[,note]` with `when` one of bmo / amc / unknown (blank = unknown).
Live providers (Finnhub, Alpha Vantage) can later merge into the same `EarningsEvent` list;
rules never know where an event came from. Anchors: `symbol,date,price`, the price as `date`
began (for `since: ytd`, Jan 1 and the previous year's close). In both, lines starting with `#`
are comments.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from daemon.events import EarningsEvent
from daemon.yamlsrc import Problem

__all__ = ["load_anchors_csv", "load_earnings_csv"]

_WHEN = {"bmo": "bmo", "amc": "amc", "unknown": "unknown", "": "unknown",
         "pre-market": "bmo", "post-market": "amc"}  # fmt: skip


def _rows(path: Path, display: str, what: str) -> tuple[list[tuple[int, str]], list[Problem]]:
    """(line number, line) of the file's non-comment lines, or the problem reading it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        return [], [Problem(display, 0, "", f"cannot read the {what}: {why}")]
    return [(n, x) for n, x in enumerate(text.splitlines(), 1) if not x.startswith("#")], []


def load_anchors_csv(
    path: Path, display: str
) -> tuple[dict[tuple[str, dt.date], float], list[Problem]]:
    """(symbol, date) → anchor price, and one located problem per row that could not be read."""
    rows, problems = _rows(path, display, "anchor prices")
    if problems:
        return {}, problems
    reader = csv.DictReader(line for _, line in rows)
    if not {"symbol", "date", "price"} <= set(reader.fieldnames or []):
        first = rows[0][0] if rows else 1
        return {}, [Problem(display, first, "", "header must be: symbol,date,price")]
    out: dict[tuple[str, dt.date], float] = {}
    for (line_no, _), row in zip(rows[1:], reader, strict=False):
        symbol = (row.get("symbol") or "").strip().upper()
        try:
            day = dt.date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            bad = row.get("date")
            problems.append(
                Problem(display, line_no, "date", f"{bad!r} is not a date; write YYYY-MM-DD")
            )
            continue
        try:
            price = float((row.get("price") or "").strip())
        except ValueError:
            price = float("nan")
        if not symbol:
            problems.append(Problem(display, line_no, "symbol", "symbol is empty"))
        elif not price > 0 or price == float("inf"):
            problems.append(
                Problem(display, line_no, "price", f"{row.get('price')!r} is not a positive price")
            )
        else:
            out[(symbol, day)] = price
    return out, problems


def load_earnings_csv(path: Path, display: str) -> tuple[list[EarningsEvent], list[Problem]]:
    """Events sorted by date, and one located problem per row that could not be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        return [], [Problem(display, 0, "", f"cannot read the earnings calendar: {e.strerror}")]
    rows = [(n, line) for n, line in enumerate(text.splitlines(), 1) if not line.startswith("#")]
    problems: list[Problem] = []
    events: list[EarningsEvent] = []
    reader = csv.DictReader(line for _, line in rows)
    header = set(reader.fieldnames or [])
    if not {"symbol", "date"} <= header:
        first = rows[0][0] if rows else 1
        return [], [Problem(display, first, "", "header must be: symbol,date,when[,note]")]
    for (line_no, _), row in zip(rows[1:], reader, strict=False):
        symbol = (row.get("symbol") or "").strip().upper()
        when = (row.get("when") or "").strip().lower()
        try:
            day = dt.date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            bad = row.get("date")
            problems.append(
                Problem(display, line_no, "date", f"{bad!r} is not a date; write YYYY-MM-DD")
            )
            continue
        if not symbol:
            problems.append(Problem(display, line_no, "symbol", "symbol is empty"))
            continue
        if when not in _WHEN:
            problems.append(
                Problem(display, line_no, "when", f"{when!r} is not one of bmo, amc, unknown")
            )
            continue
        events.append(
            EarningsEvent(symbol, day, _WHEN[when], (row.get("note") or "").strip())  # type: ignore[arg-type]
        )
    events.sort(key=lambda e: (e.date, e.symbol))
    return events, problems
