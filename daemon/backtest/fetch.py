"""`tickwatch backtest --source alpaca|polygon`: history from a provider's REST API, cached.

The rules' symbols' 1-minute bars (and headlines, both providers having a REST news API) are
fetched one symbol-month at a time (`daemon.backtest.providers`) and written as Parquet under
the cache directory (`var/history/` by default; its layout: `daemon.backtest.cache`), so a
second run over the same range is offline.

Keys come from the environment only ($APCA_API_KEY_ID and $APCA_API_SECRET_KEY,
$POLYGON_API_KEY: the names the sources' configs use), are sent in headers, and are scrubbed
from every message; they are needed only when something is missing from the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from daemon.backtest.cache import (
    BARS_SCHEMA,
    NEWS_SCHEMA,
    _bars_table,
    _before,
    _Cached,
    _Month,
    _months,
    _ms,
    _news_table,
    _read_cached,
    _write_atomic,
)
from daemon.backtest.progress import ProgressLike, console_progress
from daemon.backtest.providers import (
    POLYGON_BASE,
    _Alpaca,
    _Client,
    _Polygon,
    parse_polygon_aggs,
    parse_polygon_news,
)
from daemon.sources import ALPACA, Backoff, FatalSourceError, Http, PollError

__all__ = [
    "CACHE_DIR",
    "SETTLE",
    "FetchError",
    "FetchedHistory",
    "ProgressLike",
    "ProviderName",
    "console_progress",
    "fetch_history",
    "parse_polygon_aggs",
    "parse_polygon_news",
]

log = logging.getLogger("tickwatch.backtest.fetch")

ProviderName = Literal["alpaca", "polygon"]
#: Where `tickwatch backtest --source` keeps what it fetched (relative to the working dir).
CACHE_DIR = Path("var") / "history"
#: A month that ended this long before a fetch is complete: providers can correct the last
#: hours of a session late, and a delayed feed has not told them yet.
SETTLE = timedelta(days=1)
_KEYS: dict[str, tuple[str, ...]] = {
    "alpaca": ALPACA.key_env,  # APCA_API_KEY_ID, APCA_API_SECRET_KEY
    "polygon": ("POLYGON_API_KEY",),
}
_NAMES = {"alpaca": "Alpaca", "polygon": "Polygon"}
_CONCURRENCY = {"alpaca": 4, "polygon": 1}  # Polygon's free plan: 5 requests a minute
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._:^=-]{0,31}$")


class FetchError(Exception):
    """History could not be fetched. The message says what to do and holds no secret."""


@dataclass
class FetchedHistory:
    """What `fetch_history` left in the cache for the run: whole months, cut by the runner."""

    #: Symbol-month bar files holding at least one bar, by symbol then month.
    bars: list[Path] = field(default_factory=list)
    #: The run's headlines, one row per article (empty without news or without articles).
    news: list[Path] = field(default_factory=list)
    #: Bars read from the provider by this call (in `bars`).
    fetched: int = 0
    #: Bars of `bars` that were already cached.
    cached: int = 0
    #: Symbols without a single bar between `start` and `end`.
    symbols_without_data: list[str] = field(default_factory=list)


# --- the fetch -------------------------------------------------------------------------------


@dataclass
class _Job:
    kind: Literal["bars", "news"]
    symbol: str
    month: _Month
    path: Path
    from_ms: int  # fetch from here (the month's start, or the last cached row)
    until_ms: int  # to here (exclusive): the month's end, or now
    complete: bool  # what the file will say
    cached: _Cached | None
    fetched: int = 0
    kept: int = 0


def _keys(provider: str, env: Mapping[str, str]) -> list[str]:
    names = _KEYS[provider]
    missing = [n for n in names if not env.get(n, "").strip()]
    if missing:
        raise FetchError(
            f"--source {provider} needs {_NAMES[provider]} API credentials in the environment: "
            f"export {' and '.join(names)} (not set: {', '.join(missing)})"
        )
    return [env[n].strip() for n in names]


def _symbols(symbols: Sequence[str]) -> list[str]:
    out = sorted({s.strip().upper() for s in symbols if s.strip()})
    for s in out:
        if not _SYMBOL.match(s) or ".." in s:
            raise FetchError(f"cannot fetch history for {s!r}: not a ticker symbol")
    return out


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


async def fetch_history(
    provider: ProviderName,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    cache_dir: Path,
    *,
    base_url: str | None = None,
    env: Mapping[str, str] = os.environ,
    news: bool = True,
    progress: ProgressLike | None = None,
    feed: str = "iex",
    concurrency: int | None = None,
    retries: int = 6,
    now: datetime | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FetchedHistory:
    """Make sure `cache_dir` holds 1-minute bars (and headlines unless `news=False`) of
    `symbols` for every month that [start, end) touches, fetching only what is missing.

    `start`/`end` naive are UTC. `feed` is Alpaca's (iex on the free plan; sip, delayed_sip).
    `concurrency` symbol-months are fetched at once (Alpaca 4, Polygon 1 by default); HTTP 429
    and 5xx are retried `retries` times (a Retry-After as asked, else backoff up to a minute).
    `now` and `sleep` are for tests. Raises FetchError; the months finished before it stay.
    """
    if provider not in _KEYS:
        raise FetchError(f"unknown history source {provider!r}: use alpaca or polygon")
    start, end = _aware(start), _aware(end)
    if start >= end:
        raise FetchError(f"empty range: --from {start:%Y-%m-%d} is not before --to {end:%Y-%m-%d}")
    names = _symbols(symbols)
    if not names:
        raise FetchError("no symbols to fetch history for: the rules name none")
    now = _aware(now) if now is not None else datetime.now(UTC)
    root = Path(cache_dir) / provider
    months = [m for m in _months(start, end) if m.start < now]  # the future has no data

    jobs: list[_Job] = []
    cached_bars = 0
    kinds: list[Literal["bars", "news"]] = ["bars", "news"] if news else ["bars"]
    for kind in kinds:
        expect: dict[str, str] = {"provider": provider, "kind": kind}
        if kind == "bars" and provider == "alpaca":
            expect["feed"] = feed
        for symbol in names:
            for month in months:
                path = root / kind / symbol / f"{month.label}.parquet"
                have = _read_cached(path, {**expect, "symbol": symbol, "month": month.label})
                if have is not None and have.complete:
                    cached_bars += have.rows if kind == "bars" else 0
                    continue
                last = have.last_ms if have is not None else None
                jobs.append(
                    _Job(
                        kind,
                        symbol,
                        month,
                        path,
                        from_ms=_ms(month.start) if last is None else last,
                        until_ms=_ms(min(month.end, now)),
                        complete=now >= month.end + SETTLE,
                        cached=have,
                    )
                )

    result = FetchedHistory(cached=cached_bars)
    if jobs:
        await _run(provider, jobs, base_url=base_url, env=env, progress=progress, feed=feed,
                   concurrency=concurrency or _CONCURRENCY[provider], retries=retries,
                   sleep=sleep)  # fmt: skip
        for job in jobs:
            if job.kind == "bars":
                result.fetched += job.fetched
                result.cached += job.kept

    start_ms, end_ms = _ms(start), _ms(end)
    with_data: set[str] = set()
    for symbol in names:
        for month in months:
            path = root / "bars" / symbol / f"{month.label}.parquet"
            ts = pq.read_table(path, columns=["ts"]).column("ts").cast(pa.int64())
            if len(ts) == 0:
                continue
            result.bars.append(path)
            inside = pc.and_(pc.greater_equal(ts, start_ms), pc.less(ts, end_ms))
            if pc.any(inside).as_py():
                with_data.add(symbol)
    result.symbols_without_data = [s for s in names if s not in with_data]
    if news and months:
        merged = _merge_news(root, provider, names, months)
        if merged is not None:
            result.news.append(merged)
    return result


async def _run(
    provider: str,
    jobs: list[_Job],
    *,
    base_url: str | None,
    env: Mapping[str, str],
    progress: ProgressLike | None,
    feed: str,
    concurrency: int,
    retries: int,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    keys = _keys(provider, env)
    name = _NAMES[provider]
    http = Http(
        provider=name,
        key_hint=f"the key in {' / '.join('$' + k for k in _KEYS[provider])}",
        secrets=tuple(keys),
        retries=retries,
        backoff=Backoff(base=2.0, cap=60.0),
        max_wait=120.0,
        sleep=sleep,
    )
    tasks: dict[str, Any] = {}
    if progress is not None:
        for kind in ("bars", "news"):
            total = sum(j.kind == kind for j in jobs)
            if total:
                tasks[kind] = progress.add_task(f"fetching {kind}", total=total)
    timeout = aiohttp.ClientTimeout(total=120, sock_connect=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        client: _Client
        if provider == "alpaca":
            client = _Alpaca(session, http, base_url or ALPACA.base_url, keys[0], keys[1], feed)
        else:
            client = _Polygon(session, http, base_url or POLYGON_BASE, keys[0])
        gate = asyncio.Semaphore(max(1, concurrency))
        failed = asyncio.Event()

        async def one(job: _Job) -> None:
            async with gate:
                if failed.is_set():  # another symbol-month failed: start nothing new
                    return
                try:
                    await _fetch_one(client, http, provider, job)
                except BaseException:
                    failed.set()
                    raise
            if progress is not None:
                progress.advance(tasks[job.kind], 1)

        # the first alone: a refused key costs one request, not one per symbol-month at once
        await one(jobs[0])
        try:
            async with asyncio.TaskGroup() as group:
                for job in jobs[1:]:
                    group.create_task(one(job))
        except BaseExceptionGroup as eg:
            raise _first(eg) from None


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    """The group's first FetchError (what to tell the user), else its first exception."""
    flat: list[BaseException] = []

    def walk(g: BaseExceptionGroup[Any]) -> None:
        for e in g.exceptions:
            if isinstance(e, BaseExceptionGroup):
                walk(e)
            else:
                flat.append(e)

    walk(group)
    return next((e for e in flat if isinstance(e, FetchError)), flat[0])


async def _fetch_one(client: _Client, http: Http, provider: str, job: _Job) -> None:
    what = f"{_NAMES[provider]} {job.kind} of {job.symbol} for {job.month.label}"
    try:
        if job.from_ms >= job.until_ms:  # nothing new can exist yet
            rows: list[Any] = []
        elif job.kind == "bars":
            rows = await client.bars(job.symbol, job.from_ms, job.until_ms)
        else:
            rows = await client.news(job.symbol, job.from_ms, job.until_ms)
    except FatalSourceError as e:
        raise FetchError(str(e)) from None
    except PollError as e:
        raise FetchError(
            f"{what}: {http.redact(str(e))}; the months already fetched stay cached: run again "
            "to go on from there"
        ) from None
    if job.kind == "bars":
        rows = [r for r in rows if job.from_ms <= r.start_ms < job.until_ms]
    else:
        rows = [r for r in rows if job.from_ms <= r.ts_ms < job.until_ms]
    fresh = _bars_table(rows) if job.kind == "bars" else _news_table(rows)
    schema = BARS_SCHEMA if job.kind == "bars" else NEWS_SCHEMA
    table = fresh
    if job.cached is not None and job.cached.rows:
        kept = _before(job.path, job.from_ms, schema)
        if job.kind == "news":  # an article re-sent: the fresh copy wins
            ids = set(fresh.column("id").to_pylist())
            fresh_id = [i not in ids for i in kept.column("id").to_pylist()]
            kept = kept.filter(pa.array(fresh_id, pa.bool_()))
        job.kept = kept.num_rows
        table = pa.concat_tables([kept, fresh])
    job.fetched = fresh.num_rows
    meta: dict[str, Any] = {
        "provider": provider,
        "kind": job.kind,
        "symbol": job.symbol,
        "month": job.month.label,
        "until_ms": job.until_ms,
        "complete": job.complete and job.until_ms >= _ms(job.month.end),
    }
    if job.kind == "bars" and isinstance(client, _Alpaca):
        meta["feed"] = client.feed
    try:
        await asyncio.to_thread(_write_atomic, job.path, table, meta)
    except OSError as e:
        raise FetchError(f"cannot write the history cache {job.path}: {e}") from None
    log.debug("%s: %d fetched, %d kept from the cache", what, job.fetched, job.kept)


def _merge_news(root: Path, provider: str, symbols: list[str], months: list[_Month]) -> Path | None:
    """The symbols' cached headlines of `months` in one file, one row per article id."""
    tables = []
    for symbol in symbols:
        for month in months:
            path = root / "news" / symbol / f"{month.label}.parquet"
            if path.exists():
                t = pq.read_table(path, schema=NEWS_SCHEMA).replace_schema_metadata(None)
                if t.num_rows:
                    tables.append(t)
    if not tables:
        return None
    table = pa.concat_tables(tables)
    seen: set[str] = set()
    keep = []
    stamps = table.column("ts").cast(pa.int64()).to_pylist()
    ids = table.column("id").to_pylist()
    for i in sorted(range(table.num_rows), key=lambda i: (stamps[i], i)):
        if ids[i] not in seen:
            seen.add(ids[i])
            keep.append(i)
    table = table.take(pa.array(keep, pa.int64()))
    key = hashlib.sha256(
        f"{provider}\n{','.join(symbols)}\n{','.join(m.label for m in months)}".encode()
    ).hexdigest()[:12]
    path = root / "news" / "_merged" / f"{months[0].label}_{months[-1].label}-{key}.parquet"
    meta = {"provider": provider, "kind": "news-merged", "symbols": " ".join(symbols),
            "months": [m.label for m in months]}  # fmt: skip
    try:
        _write_atomic(path, table, meta)
    except OSError as e:
        raise FetchError(f"cannot write the history cache {path}: {e}") from None
    return path
