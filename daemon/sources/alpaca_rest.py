"""Alpaca's historical bars (PROTOCOLS.md §2.2): warm windows after a restart, and YTD anchors.

A restarted daemon's windows are empty until live ticks refill them, so a `pct_move` over 30m
is blind for 30 minutes. `alpaca_backfill` runs once at start and writes the last `lookback` of
minute bars, in time order, through the same edge as live data; it starts after the newest
price Redis already holds per symbol, so a quick restart does not write the same minutes twice.

Bars become ticks at the bar's *end*, priced at the close (as replayed bars are): a bar stamped
13:30 covers 13:30-13:31 and is only known at 13:31. They are history (`Tick.history`): they
warm prices, windows and anchors and are never judged, so a bar from an hour ago cannot fire an
alert now; the first live tick tells the current state. `limit` is the total across all symbols
per page, and pages come ordered by symbol then time, so all pages are read, then sorted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
from pydantic import Field, SecretStr, field_validator

from daemon.durations import Duration
from daemon.events import NEW_YORK as _NEW_YORK
from daemon.events import Tick
from daemon.sources.base import Source, SourceContext
from daemon.sources.poller import Http, PollError, Provider, RestConfig, RestSource
from daemon.sources.rest import by_page_token, pages

__all__ = [
    "ALPACA",
    "AlpacaBackfillConfig",
    "AlpacaBackfillSource",
    "Bar",
    "fetch_bars",
    "fetch_daily_closes",
    "fetch_raw_bars",
    "parse_bars_page",
    "run_backfills",
    "timeframe_ms",
]

log = logging.getLogger("tickwatch.sources.alpaca")

ALPACA = Provider(
    "Alpaca", "https://data.alpaca.markets", ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")
)
_TIMEFRAME = re.compile(r"^(\d*)(Min|T|Hour|H|Day|D|Week|W)$")
_UNIT_MS = {"Min": 60_000, "T": 60_000, "Hour": 3_600_000, "H": 3_600_000,
            "Day": 86_400_000, "D": 86_400_000, "Week": 604_800_000, "W": 604_800_000}  # fmt: skip
_MAX_PAGES = 1000  # a runaway next_page_token must not loop forever


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar as a provider sends it, stamped at its *start*. `open`/`high`/`low` are the
    close when the provider left them out (the backfill reads only close and volume)."""

    symbol: str
    start_ms: int
    close: float
    volume: float
    open: float = math.nan
    high: float = math.nan
    low: float = math.nan


def timeframe_ms(timeframe: str) -> int:
    """`1Min`, `5T`, `1Hour`, `1Day`, `1Week` → the bar's length (months vary: refused)."""
    m = _TIMEFRAME.match(timeframe)
    if not m:
        raise ValueError(f"unsupported timeframe {timeframe!r}; use e.g. 1Min, 5Min, 1Hour, 1Day")
    return int(m.group(1) or 1) * _UNIT_MS[m.group(2)]


def _rfc3339_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(when.timestamp() * 1000) if when.tzinfo is not None else None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def parse_bars_page(payload: Any) -> tuple[list[Bar], int, str | None]:
    """One `/v2/stocks/bars` page → (bars, malformed bars skipped, next_page_token)."""
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    token = payload.get("next_page_token")
    by_symbol = payload.get("bars") or {}
    if not isinstance(by_symbol, dict):
        raise ValueError("'bars' is not an object of symbol → bars")
    bars: list[Bar] = []
    bad = 0
    for symbol, rows in by_symbol.items():
        for row in rows if isinstance(rows, list) else []:
            start = _rfc3339_ms(row.get("t")) if isinstance(row, dict) else None
            close = _finite(row.get("c")) if isinstance(row, dict) else None
            if start is None or close is None:
                bad += 1
                continue
            bars.append(
                Bar(
                    str(symbol),
                    start,
                    close,
                    _finite(row.get("v")) or 0.0,
                    _or(_finite(row.get("o")), close),
                    _or(_finite(row.get("h")), close),
                    _or(_finite(row.get("l")), close),
                )
            )
    return bars, bad, token if isinstance(token, str) and token else None


def _rfc3339(when: datetime | dt.date) -> str:
    if isinstance(when, datetime):
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.isoformat()


def _alpaca_http(key_id: str, secret_key: str, http: Http | None) -> Http:
    return http or Http(
        provider=ALPACA.name,
        key_hint="the Alpaca key id and secret (usually $APCA_API_KEY_ID / $APCA_API_SECRET_KEY)",
        secrets=(key_id, secret_key),
    )


async def fetch_raw_bars(
    session: aiohttp.ClientSession,
    http: Http,
    *,
    base_url: str,
    key_id: str,
    secret_key: str,
    symbols: Collection[str],
    start: datetime | dt.date,
    end: datetime | dt.date,
    timeframe: str,
    feed: str,
    limit: int,
) -> tuple[list[Bar], int]:
    headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key}
    params = {
        "symbols": ",".join(sorted(symbols)),
        "timeframe": timeframe,
        "start": _rfc3339(start),
        "end": _rfc3339(end),
        "limit": str(limit),
        "feed": feed,
        "adjustment": "raw",
        "sort": "asc",
    }
    url = f"{base_url.rstrip('/')}/v2/stocks/bars"
    return await pages(http, session, url, params, headers=headers, parse=parse_bars_page,
                       follow=by_page_token, what="Alpaca /v2/stocks/bars",
                       max_pages=_MAX_PAGES)  # fmt: skip


async def fetch_bars(
    session: aiohttp.ClientSession,
    *,
    base_url: str,
    key_id: str,
    secret_key: str,
    symbols: Collection[str],
    start: datetime | dt.date,
    end: datetime | dt.date,
    timeframe: str = "1Min",
    feed: str = "iex",
    limit: int = 10_000,
    source: str = "alpaca",
    http: Http | None = None,
) -> list[Tick]:
    """Bars of `symbols` from `start` to `end` (inclusive) as ticks at each bar's end, sorted by
    time. Follows `next_page_token` to the end; 429/5xx retried, 401/403 → FatalSourceError."""
    if not symbols:
        return []
    length = timeframe_ms(timeframe)
    bars, bad = await fetch_raw_bars(
        session, _alpaca_http(key_id, secret_key, http), base_url=base_url, key_id=key_id,
        secret_key=secret_key, symbols=symbols, start=start, end=end, timeframe=timeframe,
        feed=feed, limit=limit,
    )  # fmt: skip
    if bad:
        log.warning("Alpaca bars: %d malformed bar(s) skipped", bad)
    ticks = [
        Tick(
            b.symbol,
            b.start_ms + length,
            b.close,
            b.volume,
            kind="bar",
            source=source,
            history=True,
        )
        for b in bars
    ]
    ticks.sort(key=lambda t: (t.ts_ms, t.symbol))
    return ticks


async def fetch_daily_closes(
    session: aiohttp.ClientSession,
    *,
    base_url: str,
    key_id: str,
    secret_key: str,
    symbols: Collection[str],
    day: dt.date,
    feed: str = "iex",
    http: Http | None = None,
) -> dict[str, tuple[dt.date, float]]:
    """symbol → (session date, close) of its last daily bar on or before `day` (e.g. Dec 31 for
    a YTD anchor: the last close of the year, whatever weekday or holiday the 31st is).

    Looks back two weeks; a symbol with no bar in that span is missing from the result.
    """
    if not symbols:
        return {}
    bars, _ = await fetch_raw_bars(
        session, _alpaca_http(key_id, secret_key, http), base_url=base_url, key_id=key_id,
        secret_key=secret_key, symbols=symbols, start=day - timedelta(days=14), end=day,
        timeframe="1Day", feed=feed, limit=10_000,
    )  # fmt: skip
    out: dict[str, tuple[dt.date, float]] = {}
    for b in sorted(bars, key=lambda b: b.start_ms):
        session_day = datetime.fromtimestamp(b.start_ms / 1000, _NEW_YORK).date()
        if session_day <= day:
            out[b.symbol] = (session_day, b.close)
    return out


# --- the source -------------------------------------------------------------------------------


class AlpacaBackfillConfig(RestConfig):
    type: Literal["alpaca_backfill"]
    key_id: SecretStr = Field(description="Write ${APCA_API_KEY_ID}")
    secret_key: SecretStr = Field(description="Write ${APCA_API_SECRET_KEY}")
    feed: Literal["iex", "sip", "delayed_sip"] = Field(
        "iex", description="iex on the free plan; sip needs a subscription"
    )
    lookback: Duration = Field(
        default=timedelta(hours=2), description="Minute bars to load at start (at most 5d)"
    )
    batch: int = Field(5000, ge=1, le=50_000, description="Ticks per write")

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, v: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= v <= timedelta(days=5):
            raise ValueError("lookback must be between 1m and 5d, e.g. 2h")
        return v


class AlpacaBackfillSource(RestSource):
    """Runs once: scheduled like any source (`done` is set when finished), or awaited before the
    live feeds start with `run_backfills`; a second run does nothing, so doing both is safe."""

    kind = "alpaca_backfill"
    config_model = AlpacaBackfillConfig
    provider_info = ALPACA
    config: AlpacaBackfillConfig

    def __init__(self, config: AlpacaBackfillConfig, ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self._ran = False

    async def run(self) -> None:
        if self._ran:
            return
        self._ran = True
        try:
            await self.backfill()
        except PollError as e:
            log.warning(
                "source %s: backfill skipped (%s); windows fill from live data instead",
                self.name,
                e,
            )
        finally:
            await self.aclose()

    async def backfill(self, now: datetime | None = None) -> int:
        """Fetch and write the missing minutes; returns how many ticks were accepted.
        Raises FatalSourceError for bad credentials, PollError when Alpaca cannot be read."""
        self.check_secrets()
        cfg = self.config
        wanted = self.wanted_symbols()
        if not wanted:
            return 0
        now = now or datetime.now(UTC)
        floor_ms = int((now - cfg.lookback).timestamp() * 1000)
        have = await self.ctx.store.latest_times(wanted)  # the newest price time per symbol
        start_ms = min(max(floor_ms, have.get(s, 0)) for s in wanted)
        if start_ms >= int(now.timestamp() * 1000) - 60_000:
            log.info("source %s: nothing to backfill (Redis is up to date)", self.name)
            return 0
        ticks = await fetch_bars(
            self.session(), base_url=self.base_url, key_id=cfg.key_id.get_secret_value(),
            secret_key=cfg.secret_key.get_secret_value(), symbols=wanted,
            start=datetime.fromtimestamp(start_ms / 1000, UTC), end=now, feed=cfg.feed,
            source=self.name, http=self.http,
        )  # fmt: skip
        ticks = [t for t in ticks if t.ts_ms > max(floor_ms, have.get(t.symbol, 0))]
        accepted = 0
        until = _rfc3339(now)
        for i in range(0, len(ticks), cfg.batch):
            chunk = ticks[i : i + cfg.batch]
            accepted += await self.emit(chunk, cursor={"until": until})
        log.info(
            "source %s: backfilled %d bar(s) of %d symbol(s) since %s",
            self.name,
            accepted,
            len(wanted),
            _rfc3339(datetime.fromtimestamp(start_ms / 1000, UTC)),
        )
        return accepted


async def run_backfills(sources: Iterable[Source], timeout: float = 120.0) -> int:
    """Run every `alpaca_backfill` among `sources` now, together, and wait for them (at most
    `timeout` seconds: a slow provider must not hold the live feeds back for long). Bad keys go
    to `ctx.on_fatal` as for any source. Returns the ticks accepted."""
    backfills = [s for s in sources if isinstance(s, AlpacaBackfillSource)]
    if not backfills:
        return 0
    tasks = [asyncio.ensure_future(s._run_guarded()) for s in backfills]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        log.warning("backfill did not finish within %.0fs; live feeds start anyway", timeout)
    return sum(s.accepted for s in backfills)
