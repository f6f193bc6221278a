"""The earnings calendar from a local CSV file: the source that always works, offline.

Format: `symbol,date,when[,note]` with `when` one of bmo / amc / unknown (blank = unknown);
lines starting with `#` are comments. Live providers (Finnhub, Alpha Vantage) can later merge
into the same `EarningsEvent` list; rules never know where an event came from.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from daemon.events import EarningsEvent
from daemon.yamlsrc import Problem

__all__ = ["load_earnings_csv"]

_WHEN = {"bmo": "bmo", "amc": "amc", "unknown": "unknown", "": "unknown",
         "pre-market": "bmo", "post-market": "amc"}  # fmt: skip


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
