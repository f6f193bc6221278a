"""`tickwatch backtest --source alpaca|polygon`: history from a provider's REST API, cached.

The rules' symbols' 1-minute bars (and headlines, both providers having a REST news API) are
fetched one symbol-month at a time and written as Parquet under the cache directory
(`var/history/` by default), so a second run over the same range is offline:

    <cache>/<provider>/bars/<SYMBOL>/<YYYY-MM>.parquet    one file per symbol-month
    <cache>/<provider>/news/<SYMBOL>/<YYYY-MM>.parquet    the articles tagged with SYMBOL
    <cache>/<provider>/news/_merged/<first>_<last>-<key>.parquet
                                                          derived: one run's news, one row per id

Months are calendar months in UTC and are always fetched whole (the runner cuts `--from` and
`--to`), so a cached month serves any range inside it. A file's Parquet metadata says how far
it was fetched and whether the month is complete: a month that ended more than `SETTLE` before
the fetch is complete and never fetched again; any other (the current month) is fetched again
from its last cached bar or headline on, that row included (it may have been a bar still
forming). A file is written only once its month is fully read, through a temporary file and
`os.replace`, so an interrupted fetch leaves whole months behind and the next run resumes.

Bars files have the documented OHLCV layout the replay source and the backtest read (see
`daemon.sources.tables`): `ts` (the bar's START, datetime64[ms, UTC]), `symbol`, `open`,
`high`, `low`, `close`, `volume` (float64), sorted by `ts`. News files: `ts` (UTC), `id`
(`alpaca:<id>` as the live news stream names it, `polygon:<id>`), `title`, `summary`,
`symbols` (space-separated), `source`, `url`, `sentiment` (NaN: neither REST API scores
articles; the edge's local scorer does, as for the live stream), `ticker_sentiment` (JSON).
One article tagged with several of the symbols sits in each symbol's cache file, so the
backtest reads the merged file instead, where it is once.

Prices are unadjusted (Alpaca `adjustment=raw`, Polygon `adjusted=false`), as the daemon saw
them live. Keys come from the environment only ($APCA_API_KEY_ID and $APCA_API_SECRET_KEY,
$POLYGON_API_KEY: the names the sources' configs use), are sent in headers, and are scrubbed
from every message; they are needed only when something is missing from the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from daemon.events import Headline
from daemon.sources.alpaca import news_headline as alpaca_news_headline
from daemon.sources.alpaca_rest import ALPACA, Bar, _fetch_raw_bars
from daemon.sources.base import FatalSourceError
from daemon.sources.feed import TimestampParser
from daemon.sources.poller import Backoff, Http, PollError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

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
POLYGON_BASE = "https://api.polygon.io"
_KEYS: dict[str, tuple[str, ...]] = {
    "alpaca": ALPACA.key_env,  # APCA_API_KEY_ID, APCA_API_SECRET_KEY
    "polygon": ("POLYGON_API_KEY",),
}
_NAMES = {"alpaca": "Alpaca", "polygon": "Polygon"}
_CONCURRENCY = {"alpaca": 4, "polygon": 1}  # Polygon's free plan: 5 requests a minute
_MAX_PAGES = 2000  # a runaway next_url / next_page_token must not loop forever
_META_KEY = b"tickwatch.history"
_FORMAT = 1
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._:^=-]{0,31}$")

_TS = pa.timestamp("ms", tz="UTC")
BARS_SCHEMA = pa.schema(
    [("ts", _TS), ("symbol", pa.string()), ("open", pa.float64()), ("high", pa.float64()),
     ("low", pa.float64()), ("close", pa.float64()), ("volume", pa.float64())]
)  # fmt: skip
NEWS_SCHEMA = pa.schema(
    [("ts", _TS), ("id", pa.string()), ("title", pa.string()), ("summary", pa.string()),
     ("symbols", pa.string()), ("source", pa.string()), ("url", pa.string()),
     ("sentiment", pa.float64()), ("ticker_sentiment", pa.string())]
)  # fmt: skip


class FetchError(Exception):
    """History could not be fetched. The message says what to do and holds no secret."""


class ProgressLike(Protocol):
    """What `fetch_history` calls on its progress bar: a `rich.progress.Progress` fits."""

    def add_task(self, description: str, *, total: float | None = ...) -> Any: ...

    def advance(self, task_id: Any, advance: float = ...) -> None: ...

    def update(
        self,
        task_id: Any,
        *,
        total: float | None = ...,
        completed: float | None = ...,
        description: str | None = ...,
    ) -> None: ...


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


@contextlib.contextmanager
def console_progress(console: Console) -> Iterator[Progress]:
    """A rich progress bar on `console` for `fetch_history(progress=...)`; stays on screen."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("symbol-months"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with progress:
        yield progress


# --- months and cache files --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Month:
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        return f"{self.start.year:04d}-{self.start.month:02d}"

    @classmethod
    def of(cls, when: datetime) -> _Month:
        start = datetime(when.year, when.month, 1, tzinfo=UTC)
        nxt = datetime(when.year + (when.month == 12), when.month % 12 + 1, 1, tzinfo=UTC)
        return cls(start, nxt)


def _months(start: datetime, end: datetime) -> list[_Month]:
    """The calendar months (UTC) that [start, end) touches."""
    out = [_Month.of(start)]
    while out[-1].end < end:
        out.append(_Month.of(out[-1].end))
    return out


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Cached:
    """A cache file's own word on what it holds (its Parquet metadata)."""

    until_ms: int
    complete: bool
    rows: int
    last_ms: int | None


def _read_cached(path: Path, expect: Mapping[str, str]) -> _Cached | None:
    """None when `path` is missing, unreadable, or holds something else (another feed)."""
    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        return None
    except (OSError, pa.ArrowException) as e:
        log.warning("history cache %s is unreadable (%s); fetching it again", path, e)
        return None
    raw = (pf.schema_arrow.metadata or {}).get(_META_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        meta = {}
    if meta.get("format") != _FORMAT or any(meta.get(k) != v for k, v in expect.items()):
        return None
    rows = pf.metadata.num_rows
    complete = bool(meta.get("complete"))
    last = None
    if rows and not complete:  # where a re-fetch starts
        ts = pf.read(columns=["ts"]).column("ts").cast(pa.int64())
        last = int(pc.max(ts).as_py())
    return _Cached(int(meta["until_ms"]), complete, rows, last)


def _write_atomic(path: Path, table: pa.Table, meta: Mapping[str, Any]) -> None:
    metadata = dict(table.schema.metadata or {})
    metadata[_META_KEY] = json.dumps({"format": _FORMAT, **meta}, sort_keys=True).encode()
    table = table.replace_schema_metadata(metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _bars_table(bars: Iterable[Bar]) -> pa.Table:
    rows = sorted({b.start_ms: b for b in bars}.values(), key=lambda b: b.start_ms)
    return pa.table(
        {
            "ts": pa.array([b.start_ms for b in rows], _TS),
            "symbol": pa.array([b.symbol for b in rows], pa.string()),
            "open": pa.array([b.open for b in rows], pa.float64()),
            "high": pa.array([b.high for b in rows], pa.float64()),
            "low": pa.array([b.low for b in rows], pa.float64()),
            "close": pa.array([b.close for b in rows], pa.float64()),
            "volume": pa.array([b.volume for b in rows], pa.float64()),
        },
        schema=BARS_SCHEMA,
    )


def _news_table(headlines: Iterable[Headline]) -> pa.Table:
    rows = sorted({h.id: h for h in headlines}.values(), key=lambda h: (h.ts_ms, h.id))
    return pa.table(
        {
            "ts": pa.array([h.ts_ms for h in rows], _TS),
            "id": pa.array([h.id for h in rows], pa.string()),
            "title": pa.array([h.title for h in rows], pa.string()),
            "summary": pa.array([h.summary for h in rows], pa.string()),
            "symbols": pa.array([" ".join(h.symbols) for h in rows], pa.string()),
            "source": pa.array([h.source for h in rows], pa.string()),
            "url": pa.array([h.url for h in rows], pa.string()),
            "sentiment": pa.array(
                [math.nan if h.sentiment is None else h.sentiment for h in rows], pa.float64()
            ),
            "ticker_sentiment": pa.array(
                [json.dumps(h.ticker_sentiment, sort_keys=True) for h in rows], pa.string()
            ),
        },
        schema=NEWS_SCHEMA,
    )


def _before(path: Path, ms: int, schema: pa.Schema) -> pa.Table:
    """The cached rows of `path` stamped before `ms` (what a re-fetch from `ms` keeps)."""
    table = pq.read_table(path, schema=schema)
    table = table.replace_schema_metadata(None)
    mask = pc.less(table.column("ts").cast(pa.int64()), ms)
    return table.filter(mask)


# --- the providers ---------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def parse_polygon_aggs(payload: Any, symbol: str) -> tuple[list[Bar], int, str | None]:
    """One `/v2/aggs/ticker/.../range/...` page → (bars, malformed skipped, next_url)."""
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    results = payload.get("results") or []  # absent when there are none
    if not isinstance(results, list):
        raise ValueError("'results' is not a list")
    bars: list[Bar] = []
    bad = 0
    for row in results:
        start = row.get("t") if isinstance(row, dict) else None
        close = _finite(row.get("c")) if isinstance(row, dict) else None
        if not isinstance(start, int) or isinstance(start, bool) or close is None:
            bad += 1
            continue
        o, h, lo = (_finite(row.get(k)) for k in ("o", "h", "l"))
        bars.append(
            Bar(symbol, start, close, _finite(row.get("v")) or 0.0,
                close if o is None else o, close if h is None else h, close if lo is None else lo)
        )  # fmt: skip
    nxt = payload.get("next_url")
    return bars, bad, nxt if isinstance(nxt, str) and nxt else None


def parse_polygon_news(
    payload: Any, timestamps: TimestampParser | None = None
) -> tuple[list[Headline], int, str | None]:
    """One `/v2/reference/news` page → (headlines `polygon:<id>`, malformed skipped, next_url)."""
    if not isinstance(payload, dict):
        raise ValueError("the answer is not a JSON object")
    results = payload.get("results") or []
    if not isinstance(results, list):
        raise ValueError("'results' is not a list")
    ts = timestamps or TimestampParser()
    out: list[Headline] = []
    bad = 0
    for item in results:
        try:
            publisher = item.get("publisher") or {}
            out.append(
                Headline(
                    id=f"polygon:{item['id']}",
                    ts_ms=ts.ms(str(item["published_utc"])),
                    title=str(item["title"]),
                    summary=str(item.get("description") or ""),
                    symbols=tuple(str(t) for t in item.get("tickers") or []),
                    source=str(publisher.get("name") or "polygon"),
                    url=str(item.get("article_url") or ""),
                )
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            bad += 1
    nxt = payload.get("next_url")
    return out, bad, nxt if isinstance(nxt, str) and nxt else None


class _Client:
    """One provider's two requests: a symbol's bars and headlines between two times."""

    def __init__(self, session: aiohttp.ClientSession, http: Http, base_url: str) -> None:
        self.session, self.http, self.base_url = session, http, base_url.rstrip("/")
        self.timestamps = TimestampParser()

    async def bars(self, symbol: str, start_ms: int, end_ms: int) -> list[Bar]:
        raise NotImplementedError

    async def news(self, symbol: str, start_ms: int, end_ms: int) -> list[Headline]:
        raise NotImplementedError


class _Alpaca(_Client):
    def __init__(self, session: aiohttp.ClientSession, http: Http, base_url: str,
                 key_id: str, secret_key: str, feed: str) -> None:  # fmt: skip
        super().__init__(session, http, base_url)
        self.key_id, self.secret_key, self.feed = key_id, secret_key, feed

    async def bars(self, symbol: str, start_ms: int, end_ms: int) -> list[Bar]:
        bars, bad = await _fetch_raw_bars(
            self.session, self.http, base_url=self.base_url, key_id=self.key_id,
            secret_key=self.secret_key, symbols=[symbol],
            start=datetime.fromtimestamp(start_ms / 1000, UTC),
            end=datetime.fromtimestamp((end_ms - 1000) / 1000, UTC),  # `end` is inclusive
            timeframe="1Min", feed=self.feed, limit=10_000,
        )  # fmt: skip
        if bad:
            log.warning("Alpaca bars of %s: %d malformed bar(s) skipped", symbol, bad)
        return bars

    async def news(self, symbol: str, start_ms: int, end_ms: int) -> list[Headline]:
        headers = {"APCA-API-KEY-ID": self.key_id, "APCA-API-SECRET-KEY": self.secret_key}
        params = {
            "symbols": symbol,
            "start": _iso(start_ms),
            "end": _iso(end_ms - 1000),
            "limit": "50",
            "sort": "asc",
            "include_content": "false",
            "exclude_contentless": "false",
        }
        url = f"{self.base_url}/v1beta1/news"
        out: list[Headline] = []
        bad = 0
        for _ in range(_MAX_PAGES):
            payload = await self.http.get_json(self.session, url, params=params, headers=headers)
            items = payload.get("news") if isinstance(payload, dict) else None
            if not isinstance(items, list):
                raise PollError("Alpaca /v1beta1/news: the answer has no 'news' list")
            for m in items:
                try:
                    out.append(alpaca_news_headline(m, self.timestamps.ms(str(m["created_at"]))))
                except (AttributeError, KeyError, TypeError, ValueError):
                    bad += 1
            token = payload.get("next_page_token")
            if not isinstance(token, str) or not token:
                if bad:
                    log.warning("Alpaca news of %s: %d malformed article(s) skipped", symbol, bad)
                return out
            params["page_token"] = token
        raise PollError(f"Alpaca /v1beta1/news: more than {_MAX_PAGES} pages")


class _Polygon(_Client):
    def __init__(self, session: aiohttp.ClientSession, http: Http, base_url: str,
                 api_key: str) -> None:  # fmt: skip
        super().__init__(session, http, base_url)
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def _follow(self, next_url: str) -> str:
        """`next_url` on our base URL: the key goes nowhere else (a proxy, a test's fake)."""
        n, b = urlsplit(next_url), urlsplit(self.base_url)
        if (n.scheme, n.netloc) == (b.scheme, b.netloc):
            return next_url
        path = (
            n.path if n.path.startswith(b.path.rstrip("/") + "/") else b.path.rstrip("/") + n.path
        )
        return urlunsplit((b.scheme, b.netloc, path, n.query, ""))

    async def _pages(
        self,
        url: str,
        params: dict[str, str],
        parse: Callable[[Any], tuple[list[Any], int, str | None]],
    ) -> tuple[list[Any], int]:
        rows: list[Any] = []
        bad = 0
        query: dict[str, str] | None = params
        for _ in range(_MAX_PAGES):
            payload = await self.http.get_json(
                self.session, url, params=query, headers=self.headers
            )
            try:
                page, page_bad, nxt = parse(payload)
            except ValueError as e:
                raise PollError(f"Polygon {urlsplit(url).path}: {e}") from None
            rows.extend(page)
            bad += page_bad
            if nxt is None:
                return rows, bad
            url, query = self._follow(nxt), None  # the cursor in next_url holds the query
        raise PollError(f"Polygon {urlsplit(url).path}: more than {_MAX_PAGES} pages")

    async def bars(self, symbol: str, start_ms: int, end_ms: int) -> list[Bar]:
        url = (
            f"{self.base_url}/v2/aggs/ticker/{quote(symbol, safe='')}/range/1/minute/"
            f"{start_ms}/{end_ms - 1}"  # both ends inclusive
        )
        params = {"adjusted": "false", "sort": "asc", "limit": "50000"}
        bars, bad = await self._pages(url, params, lambda p: parse_polygon_aggs(p, symbol))
        if bad:
            log.warning("Polygon bars of %s: %d malformed bar(s) skipped", symbol, bad)
        return bars

    async def news(self, symbol: str, start_ms: int, end_ms: int) -> list[Headline]:
        params = {
            "ticker": symbol,
            "published_utc.gte": _iso(start_ms),
            "published_utc.lt": _iso(end_ms),
            "order": "asc",
            "sort": "published_utc",
            "limit": "1000",
        }
        url = f"{self.base_url}/v2/reference/news"
        news, bad = await self._pages(url, params, lambda p: parse_polygon_news(p, self.timestamps))
        if bad:
            log.warning("Polygon news of %s: %d malformed article(s) skipped", symbol, bad)
        return news


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
