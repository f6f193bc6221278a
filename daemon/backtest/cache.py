"""The history cache: calendar months, and the Parquet file of one symbol-month (read, written).

The cache directory (`var/history/` by default) holds:

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

"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from daemon.events import Headline
from daemon.sources import Bar

log = logging.getLogger("tickwatch.backtest.fetch")

_META_KEY = b"tickwatch.history"
_FORMAT = 1

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
