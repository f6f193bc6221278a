"""Earnings calendars from Finnhub and Alpha Vantage, kept in Redis for the rules engine.

The offline CSV (`calendar.earnings`) always works; this adds what the providers know, refreshed
every few hours. Each `earnings_calendar` source writes its own fields (`SYMBOL|source` → JSON list)
of one Redis hash (`daemon.store.calendar`), so two providers never overwrite each other and a
restart starts with the last calendar fetched; `load_earnings` reads them back merged, and
`merge_earnings` merges any number of calendars (e.g. the CSV first, so its notes win).

Finnhub's `hour` is `bmo`, `amc`, `dmh` (during market hours) or empty; `dmh` and empty become
`unknown` (dmh noted as "during market hours"). Alpha Vantage sends CSV, with an optional 7th
column `timeOfTheDay` (`pre-market` → bmo, `post-market` → amc), or a JSON error body.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

import aiohttp
from pydantic import Field, SecretStr, field_validator

from daemon.durations import Duration
from daemon.events import EarningsEvent, ReportTime
from daemon.sources.alphavantage import ALPHAVANTAGE, check_av_payload
from daemon.sources.base import SourceContext
from daemon.sources.poller import (
    Http,
    Poller,
    PollerConfig,
    PollError,
    Provider,
    count_into,
)
from daemon.store import CalendarStore

__all__ = [
    "FINNHUB",
    "EarningsCalendarConfig",
    "EarningsCalendarSource",
    "av_horizon",
    "fetch_alphavantage_earnings",
    "fetch_finnhub_earnings",
    "load_earnings",
    "merge_earnings",
    "parse_av_earnings_csv",
    "parse_finnhub_calendar",
    "write_earnings",
]

log = logging.getLogger("tickwatch.sources.earnings")

FINNHUB = Provider("Finnhub", "https://finnhub.io/api/v1", ("FINNHUB_API_KEY",))
_FINNHUB_HOUR: dict[str, ReportTime] = {"bmo": "bmo", "amc": "amc", "dmh": "unknown", "": "unknown"}
_AV_TIME: dict[str, ReportTime] = {"pre-market": "bmo", "post-market": "amc"}
#: Reports this far back stay in the calendar, for conditions like `earnings: {after: 1d}`.
PAST = timedelta(days=7)


# --- pure parsing -----------------------------------------------------------------------------


def _number_text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return ""
    try:
        f = float(value)
    except ValueError:
        return ""
    return f"{f:g}" if math.isfinite(f) else ""


def parse_finnhub_calendar(
    payload: Any, *, symbols: Collection[str] | None = None
) -> tuple[list[EarningsEvent], int]:
    """`{"earningsCalendar": [...]}` → (events, rows skipped as malformed), sorted by date."""
    rows = payload.get("earningsCalendar") if isinstance(payload, dict) else None
    if not isinstance(rows, list):
        raise ValueError("the answer has no 'earningsCalendar' list")
    events: list[EarningsEvent] = []
    bad = 0
    for row in rows:
        if not isinstance(row, dict):
            bad += 1
            continue
        symbol = row.get("symbol")
        hour = row.get("hour") or ""
        try:
            day = dt.date.fromisoformat(str(row.get("date")))
        except ValueError:
            bad += 1
            continue
        if not isinstance(symbol, str) or not symbol.strip() or not isinstance(hour, str):
            bad += 1
            continue
        symbol = symbol.strip().upper()
        if symbols is not None and symbol not in symbols:
            continue
        hour = hour.strip().lower()
        notes = []
        if isinstance(row.get("quarter"), int) and isinstance(row.get("year"), int):
            notes.append(f"Q{row['quarter']} {row['year']}")
        if est := _number_text(row.get("epsEstimate")):
            notes.append(f"EPS est. {est}")
        if hour == "dmh":
            notes.append("during market hours")
        events.append(
            EarningsEvent(symbol, day, _FINNHUB_HOUR.get(hour, "unknown"), ", ".join(notes))
        )
    events.sort(key=lambda e: (e.date, e.symbol))
    return events, bad


def parse_av_earnings_csv(
    text: str, *, symbols: Collection[str] | None = None
) -> tuple[list[EarningsEvent], int]:
    """EARNINGS_CALENDAR CSV → (events, rows skipped as malformed). Header only: no events.

    Columns are found by name, so the optional 7th `timeOfTheDay` (or a reordering) is fine.
    A JSON body must be handled before (see `fetch_alphavantage_earnings`).
    """
    if not text.strip():
        return [], 0
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = {h.strip() for h in reader.fieldnames or []}
    if not {"symbol", "reportDate"} <= header:
        raise ValueError(f"unexpected CSV header: {sorted(header)}")
    events: list[EarningsEvent] = []
    bad = 0
    for row in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        symbol = row.get("symbol", "").upper()
        try:
            day = dt.date.fromisoformat(row.get("reportDate", ""))
        except ValueError:
            bad += 1
            continue
        if not symbol:
            bad += 1
            continue
        if symbols is not None and symbol not in symbols:
            continue
        notes = []
        if fiscal := row.get("fiscalDateEnding"):
            notes.append(f"fiscal period ending {fiscal}")
        if est := _number_text(row.get("estimate", "")):
            notes.append(f"EPS est. {est}")
        when = _AV_TIME.get(row.get("timeOfTheDay", "").lower(), "unknown")
        events.append(EarningsEvent(symbol, day, when, ", ".join(notes)))
    events.sort(key=lambda e: (e.date, e.symbol))
    return events, bad


def av_horizon(horizon: timedelta) -> str:
    """The smallest of Alpha Vantage's horizons that covers `horizon`."""
    days = horizon.total_seconds() / 86400
    return "3month" if days <= 92 else "6month" if days <= 184 else "12month"


def merge_earnings(*calendars: Iterable[EarningsEvent]) -> list[EarningsEvent]:
    """One event per (symbol, date), sorted by date then symbol.

    Earlier calendars win: their note is kept, and their `when` unless it is unknown and a
    later calendar knows it. Different dates for one symbol (providers disagree) are all kept.
    """
    merged: dict[tuple[str, dt.date], EarningsEvent] = {}
    for calendar in calendars:
        for e in calendar:
            prev = merged.get((e.symbol, e.date))
            if prev is None:
                merged[(e.symbol, e.date)] = e
                continue
            if prev.when == "unknown" and e.when != "unknown":
                prev = replace(prev, when=e.when)
            if not prev.note and e.note:
                prev = replace(prev, note=e.note)
            merged[(e.symbol, e.date)] = prev
    return sorted(merged.values(), key=lambda e: (e.date, e.symbol))


def _to_json(events: Iterable[EarningsEvent]) -> str:
    return json.dumps(
        [{"date": e.date.isoformat(), "when": e.when, "note": e.note} for e in events],
        separators=(",", ":"),
    )


def _from_json(symbol: str, text: str) -> list[EarningsEvent]:
    out = []
    for item in json.loads(text):
        when = item.get("when", "unknown")
        out.append(
            EarningsEvent(
                symbol,
                dt.date.fromisoformat(item["date"]),
                when if when in ("bmo", "amc") else "unknown",
                str(item.get("note", "")),
            )
        )
    return out


# --- I/O --------------------------------------------------------------------------------------


async def fetch_finnhub_earnings(
    http: Http,
    session: aiohttp.ClientSession,
    *,
    base_url: str,
    api_key: str,
    symbols: Iterable[str],
    start: dt.date,
    end: dt.date,
    counts: dict[str, int] | None = None,
) -> list[EarningsEvent]:
    """`/calendar/earnings` once per symbol (the all-market answer can be huge and truncated).

    The key goes in the `X-Finnhub-Token` header, never the URL. Malformed rows are skipped and
    added to `counts["malformed"]`.
    """
    events: list[EarningsEvent] = []
    for symbol in symbols:
        params = {"from": start.isoformat(), "to": end.isoformat(), "symbol": symbol}
        payload = await http.get_json(
            session,
            f"{base_url.rstrip('/')}/calendar/earnings",
            params=params,
            headers={"X-Finnhub-Token": api_key},
        )
        try:
            found, bad = parse_finnhub_calendar(payload, symbols={symbol})
        except ValueError as e:
            raise PollError(f"Finnhub /calendar/earnings: {e}") from None
        count_into(counts, "malformed", bad)
        events.extend(found)
    return events


async def fetch_alphavantage_earnings(
    http: Http,
    session: aiohttp.ClientSession,
    *,
    base_url: str,
    api_key: str,
    horizon: timedelta,
    symbols: Collection[str] | None = None,
    counts: dict[str, int] | None = None,
) -> list[EarningsEvent]:
    """One EARNINGS_CALENDAR request for the whole market, filtered to `symbols` here (one call
    instead of one per symbol: the free tier allows 25 a day). JSON answers are errors (§5.3)."""
    params = {"function": "EARNINGS_CALENDAR", "horizon": av_horizon(horizon), "apikey": api_key}
    answer = await http.get(session, f"{base_url.rstrip('/')}/query", params=params)
    if answer.text.lstrip().startswith("{"):
        payload = http.json(answer)
        check_av_payload(payload, http)
        raise PollError(
            "Alpha Vantage EARNINGS_CALENDAR: JSON instead of CSV: "
            + http.redact(answer.text[:120])
        )
    try:
        events, bad = parse_av_earnings_csv(answer.text, symbols=symbols)
    except ValueError as e:
        raise PollError(f"Alpha Vantage EARNINGS_CALENDAR: {e}") from None
    count_into(counts, "malformed", bad)
    return events


async def write_earnings(
    calendar: CalendarStore, source: str, symbols: Iterable[str], events: Iterable[EarningsEvent]
) -> None:
    """Replace `source`'s part of the calendar in one transaction: a field per symbol (an empty
    list when it has no report coming), and its fields for symbols no longer asked for removed."""
    by_symbol: dict[str, list[EarningsEvent]] = {s: [] for s in symbols}
    for e in events:
        if e.symbol in by_symbol:
            by_symbol[e.symbol].append(e)
    await calendar.replace(source, {s: _to_json(evs) for s, evs in by_symbol.items()})


async def load_earnings(calendar: CalendarStore) -> list[EarningsEvent]:
    """Every provider's calendar from Redis, merged (`merge_earnings`); unreadable fields are
    skipped with a warning. Empty when no `earnings_calendar` source has run yet."""
    found: list[EarningsEvent] = []
    for f in await calendar.read():
        try:
            found.extend(_from_json(f.symbol, f.value))
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("earnings calendar in Redis: field %r is unreadable, skipped", f.field)
    return merge_earnings(found)


# --- the source -------------------------------------------------------------------------------


class EarningsCalendarConfig(PollerConfig):
    type: Literal["earnings_calendar"]
    provider: Literal["finnhub", "alphavantage"]
    api_key: SecretStr = Field(
        description="Write ${FINNHUB_API_KEY} or ${ALPHAVANTAGE_API_KEY}; never the key itself"
    )
    interval: Duration = Field(default=timedelta(hours=6), description="Time between polls")
    horizon: Duration = Field(
        default=timedelta(days=90),
        description="How far ahead to fetch (Alpha Vantage rounds up to 3, 6 or 12 months)",
    )

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v: timedelta) -> timedelta:
        if not timedelta(days=1) <= v <= timedelta(days=366):
            raise ValueError("horizon must be between 1d and 366d, e.g. 90d")
        return v


class EarningsCalendarSource(Poller):
    """Polls one provider's calendar; `on_update` (set by the daemon) is awaited after each write,
    so reminders can be rescheduled from `load_earnings` when the calendar changes."""

    kind = "earnings_calendar"
    config_model = EarningsCalendarConfig
    provider_info = FINNHUB
    config: EarningsCalendarConfig

    def __init__(self, config: EarningsCalendarConfig, ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self.on_update: Callable[[], Awaitable[None]] | None = None

    def pick_provider(self) -> Provider:
        return FINNHUB if self.config.provider == "finnhub" else ALPHAVANTAGE

    async def poll(self) -> None:
        cfg = self.config
        wanted = self.wanted_symbols()
        if not wanted:
            return
        today = dt.datetime.now(dt.UTC).date()
        start, end = today - PAST, today + timedelta(days=cfg.horizon.days)
        counts: dict[str, int] = {}
        key = cfg.api_key.get_secret_value()
        if cfg.provider == "finnhub":
            events = await fetch_finnhub_earnings(
                self.http, self.session(), base_url=self.base_url, api_key=key,
                symbols=wanted, start=start, end=end, counts=counts,
            )  # fmt: skip
        else:
            events = await fetch_alphavantage_earnings(
                self.http, self.session(), base_url=self.base_url, api_key=key,
                horizon=cfg.horizon, symbols=set(wanted), counts=counts,
            )  # fmt: skip
        events = [e for e in events if start <= e.date <= end]
        await write_earnings(self.ctx.calendar, self.name, wanted, events)
        bad = counts.get("malformed", 0)
        self.malformed += bad
        self.accepted += len(events)
        if self.on_update is not None:
            try:
                await self.on_update()
            except Exception:
                log.exception("source %s: the earnings update hook failed", self.name)
        log.info(
            "source %s: earnings calendar from %s: %d report(s) for %d symbol(s)%s",
            self.name,
            self.provider.name,
            len(events),
            len(wanted),
            f", {bad} malformed row(s) skipped" if bad else "",
        )
