"""History files as one time-ordered stream of events, read in chunks.

A year of minute bars for a handful of symbols is about a million rows: holding them all as
objects (as the replay source does) costs hundreds of MB, so each file is read a chunk at a
time (pandas' chunked CSV reader, pyarrow's record batches) and the files are merged lazily
(`heapq.merge`). Rows are read by `daemon.sources.tables`, the replay source's reader, so a
file the daemon replays is a file the backtest reads, with the same meaning.

What a row cannot say is counted and named (file and line), never guessed: a row whose time
or price cannot be read is refused; a symbol no rule reads is skipped and counted.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from daemon.events import Headline, Tick
from daemon.sources.normalize import REASONS, EdgeFilter
from daemon.sources.tables import headlines_from_frame, ticks_from_frame

__all__ = ["CHUNK_ROWS", "DataError", "History", "open_history"]

#: Rows per chunk: ~20 MB of frame at a time, whatever the file's size.
CHUNK_ROWS = 100_000

Event = Tick | Headline


class DataError(Exception):
    """A file cannot be read as history; the message names it and says what to do."""


@dataclass
class _File:
    path: Path
    kind: str  # "ticks", "bars" or "headlines"
    rows: int  # known up front (Parquet metadata; CSV lines), for the progress bar
    parquet: bool


@dataclass
class History:
    """The events of `files` between `start_ms` and `end_ms` (None: all), in `steps` order.

    Ticks before `start_ms` come marked `history` (they warm windows and anchors and are never
    judged: a 30-minute move at 09:35 needs the minutes before); headlines before it are left
    out. Iterate once; `refused`, `ignored` and `rows_read` fill as it goes."""

    files: list[_File]
    start_ms: int | None = None
    end_ms: int | None = None
    #: Symbols whose ticks are judged; rows of others are skipped and counted (None: all).
    symbols: frozenset[str] | None = None
    source: str = "backtest"
    refused: list[str] = field(default_factory=list)
    refused_count: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    rows_read: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    ticks: int = 0
    #: Ticks inside the range (the rest only warm).
    judged: int = 0
    headlines: int = 0

    @property
    def total_rows(self) -> int:
        return sum(f.rows for f in self.files)

    def __iter__(self) -> Iterator[Event]:
        """The events in time order, through the daemon's edge (`EdgeFilter`): what it would
        refuse live (a crossed quote, a tick from the future, a headline seen before under
        another id) is refused here, counted by reason and named."""
        streams = [self._events(i, f) for i, f in enumerate(self.files)]
        edge = EdgeFilter(self.symbols or frozenset(), out_of_order_ms=0)
        now = int(time.time() * 1000)
        for _ts, _order, fi, row, ev in heapq.merge(*streams):
            if isinstance(ev, Tick):
                reason = edge.tick_reason(ev, now) if self.symbols is not None else None
                if reason is None:
                    self.ticks += 1
                    if not ev.history:
                        self.judged += 1
                        self._seen(ev.ts_ms)
                    yield ev
                    continue
            else:
                reason = edge.headline_reason(ev, now)
                if reason is None:
                    self.headlines += 1
                    self._seen(ev.ts_ms)
                    yield ev
                    continue
            self._refuse(self.files[fi], row, REASONS.get(reason, reason))

    def _seen(self, ts: int) -> None:
        if self.first_ms is None:
            self.first_ms = ts
        self.last_ms = ts  # in time order

    def _refuse(self, f: _File, row: int, why: str) -> None:
        self.refused_count += 1
        if len(self.refused) < 20:
            where = f"line {row + 2}" if not f.parquet else f"row {row + 1}"
            self.refused.append(f"{f.path}:{where}: {why}")

    def _events(self, fi: int, f: _File) -> Iterator[tuple[int, int, int, int, Event]]:
        """(time, 0 for ticks | 1 for headlines, file, row, event) in time order."""
        order = 1 if f.kind == "headlines" else 0
        start, end = self.start_ms, self.end_ms
        last_ts = -(2**62)
        row0 = 0
        for frame in _chunks(f):
            n = len(frame)
            self.rows_read += n
            events: list[Tick | Headline | None]
            if f.kind == "headlines":
                ts_arr, heads = headlines_from_frame(frame, self.source)
                kept = set(_kept_rows(frame))
                events = [None] * n
                it = iter(heads)
                for i in range(n):
                    if i in kept:
                        events[i] = next(it)
                    else:
                        self._refuse(f, row0 + i, "cannot read its time (ts)")
                del ts_arr
            else:
                _ts, ticks = ticks_from_frame(frame, self.source)
                events = list(ticks)
                price_col = "close" if f.kind == "bars" else "price"
                prices = pd.to_numeric(frame[price_col], errors="coerce").to_numpy(float)
                for i, t in enumerate(ticks):
                    if t is None:
                        self._refuse(f, row0 + i, _why_not(frame, i))
                    elif not math.isfinite(prices[i]) or prices[i] <= 0:
                        raw = frame[price_col].iloc[i]
                        self._refuse(f, row0 + i, f"{price_col} {str(raw)!r} is not a positive "
                                     "number")  # fmt: skip
                        events[i] = None
            # a chunk in time order (stable), and after the chunk before it
            stamped = [(ev.ts_ms, i) for i, ev in enumerate(events) if ev is not None]
            if not stamped:
                row0 += n
                continue
            if any(a[0] > b[0] for a, b in itertools.pairwise(stamped)):
                stamped.sort()
            if stamped[0][0] < last_ts:
                raise DataError(
                    f"{f.path}: not in time order (line {row0 + stamped[0][1] + 2} is earlier "
                    "than a row before it): sort the file by ts, e.g. "
                    "`df.sort_values('ts').to_parquet(...)`"
                )
            last_ts = stamped[-1][0]
            for ts, i in stamped:
                ev = events[i]
                assert ev is not None
                if end is not None and ts >= end:
                    return
                if isinstance(ev, Tick):
                    if self.symbols is not None and ev.symbol not in self.symbols:
                        self.ignored[ev.symbol] += 1  # no rule reads it: not refused
                        continue
                    if start is not None and ts < start:
                        ev = Tick(ev.symbol, ev.ts_ms, ev.price, ev.size, ev.bid, ev.ask,
                                  ev.kind, ev.source, True)  # fmt: skip
                elif start is not None and ts < start:
                    continue
                yield ts, order, fi, row0 + i, ev
            row0 += n


def _kept_rows(frame: pd.DataFrame) -> list[int]:
    ts = pd.to_datetime(frame["ts"], utc=True, errors="coerce", format="ISO8601")
    return np.flatnonzero(ts.notna().to_numpy()).tolist()


def _why_not(frame: pd.DataFrame, i: int) -> str:
    sym = frame["symbol"].iloc[i]
    if not isinstance(sym, str) or not sym.strip():
        return "no symbol"
    return f"cannot read its time {frame['ts'].iloc[i]!r} (ts: ISO 8601, e.g. 2026-03-16T13:31:00Z)"


def _chunks(f: _File) -> Iterator[pd.DataFrame]:
    if f.parquet:
        pf = pq.ParquetFile(f.path)
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(
        f.path, chunksize=CHUNK_ROWS, keep_default_na=True, dtype={"symbol": str, "symbols": str}
    )


_KINDS = (("title", "headlines"), ("close", "bars"), ("price", "ticks"))
_NEEDS = {
    "headlines": ("ts", "title"),
    "bars": ("ts", "symbol", "close"),
    "ticks": ("ts", "symbol", "price"),
}
_LAYOUT = (
    "trades need ts, symbol, price; 1-minute bars ts, symbol, open, high, low, close[, volume] "
    "(ts the bar's start); headlines ts, title[, symbols, summary, ...]"
)


def _describe(path: Path) -> _File:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: a directory; name the files, e.g. {path}/*.parquet")
    parquet = path.suffix == ".parquet"
    try:
        if parquet:
            meta = pq.ParquetFile(path)
            columns = list(meta.schema_arrow.names)
            rows = meta.metadata.num_rows
        else:
            columns = list(pd.read_csv(path, nrows=0).columns)
            rows = _count_lines(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise DataError(f"{path}: cannot read it as CSV or Parquet ({e})") from e
    kind = next((k for col, k in _KINDS if col in columns), None)
    if kind is None:
        raise DataError(f"{path}: no price, close or title column (it has {columns}): {_LAYOUT}")
    missing = [c for c in _NEEDS[kind] if c not in columns]
    if missing:
        raise DataError(f"{path}: a {kind} file without {', '.join(missing)}: {_LAYOUT}")
    return _File(path, kind, rows, parquet)


def _count_lines(path: Path) -> int:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
    return max(n - 1, 0)


def open_history(
    paths: Sequence[Path],
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    symbols: frozenset[str] | None = None,
) -> History:
    """The files, checked (readable, a known layout), ready to be read in time order."""
    if not paths:
        raise DataError("no history files: pass --data FILE (CSV or Parquet) or --source")
    return History([_describe(Path(p)) for p in paths], start_ms, end_ms, symbols)
