"""History files as one time-ordered stream of events, read in chunks.

A year of minute bars for a handful of symbols is about a million rows: holding them all as
objects (as the replay source does) costs hundreds of MB, so each file is read a chunk at a
time (pandas' chunked CSV reader, pyarrow's record batches) and the files are merged lazily
(`daemon.backtest.merge`).
Rows are read by `daemon.sources.tables`, the replay source's reader, so a file the daemon
replays is a file the backtest reads, with the same meaning.

A chunk is checked whole, as arrays (the row checks here, the edge's tick checks with
`EdgeFilter.tick_reasons`), and a `Tick` is built only for a row that survives them: a Python
step per row is what a year of bars cannot afford.

What a row cannot say is counted and named (file and line), never guessed: a row whose time
or price cannot be read is refused; a symbol no rule reads is skipped and counted.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from daemon.backtest.merge import Event, Run, merge
from daemon.events import Headline
from daemon.sources import (
    REASONS,
    EdgeFilter,
    TickColumns,
    headlines_from_frame,
    make_ticks,
    tick_columns,
    ts_ms_of,
)

__all__ = ["CHUNK_ROWS", "DataError", "History", "open_history"]

#: Rows per chunk: ~20 MB of frame at a time, whatever the file's size.
CHUNK_ROWS = 100_000
#: Refusal messages kept (all are counted).
_KEEP_REFUSED = 20


class DataError(Exception):
    """A file cannot be read as history; the message names it and says what to do."""


@dataclass
class _File:
    path: Path
    kind: str  # "ticks", "bars" or "headlines"
    rows: int  # known up front (Parquet metadata; CSV lines), for the progress bar
    parquet: bool


def _entry(refusal: tuple[int, str]) -> int:
    return refusal[0]


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
        another id) is refused here, counted by reason and named.

        The order is (time, ticks before headlines, file), each file's rows in their order:
        the files' runs (a chunk each, `_runs`) merged a run at a time (`merge`), a chunk read
        when the merge is through the chunk before. Ticks are built as they are yielded."""
        # out_of_order_ms=0, and no tick is ever out of order: each file is checked to be in
        # time order (`_runs`) and the merge is by time, which is why the ticks can meet the
        # edge a chunk at a time (`EdgeFilter.tick_reasons`) as each is read
        edge = EdgeFilter(self.symbols or frozenset(), out_of_order_ms=0)
        now = int(time.time() * 1000)
        files = [self._runs(fi, f, edge, now) for fi, f in enumerate(self.files)]
        return merge(files, lambda run, a, b: self._take(run, a, b, edge, now))

    def _take(self, run: Run, a: int, b: int, edge: EdgeFilter, now: int) -> Sequence[Event]:
        """Entries `a:b` of `run`, in merge order: the refused named, the rest counted and
        returned to be yielded. Headlines meet the edge here, one by one (few; and whether
        one is a duplicate depends on the ones before it)."""
        f = self.files[run.fi]
        if run.order == 1:
            out: list[Event] = []
            for i in range(a, b):
                h = run.headlines[i]
                reason = edge.headline_reason(h, now)
                if reason is None:
                    out.append(h)
                else:
                    self._refuse(f, int(run.rows[i]), REASONS.get(reason, reason))
            if out:
                self.headlines += len(out)
                self._seen(out[0].ts_ms, out[-1].ts_ms)
            return out
        # a tick run's fields are of the accepted entries only: an entry's tick is at its
        # index less the refused entries before it
        lo = bisect_left(run.why, a, key=_entry)
        hi = bisect_left(run.why, b, key=_entry)
        out = []
        for k, (i, why) in enumerate(run.why[lo:hi], lo):
            out += make_ticks(run.ticks, a - k, i - k)
            self._count(run, a, i)
            self._refuse(f, int(run.rows[i]), why)
            a = i + 1
        self._count(run, a, b)
        rest = make_ticks(run.ticks, a - hi, b - hi)
        if not out:
            return rest
        out += rest
        return out

    def _count(self, run: Run, a: int, b: int) -> None:
        """Count entries `a:b` of a tick run, all accepted."""
        if a >= b:
            return
        self.ticks += b - a
        j = max(a, run.history)
        if j < b:
            self.judged += b - j
            self._seen(int(run.ts[j]), int(run.ts[b - 1]))

    def _seen(self, first: int, last: int) -> None:
        if self.first_ms is None:
            self.first_ms = first
        self.last_ms = last  # in time order

    def _refuse(self, f: _File, row: int, why: str) -> None:
        self.refused_count += 1
        if len(self.refused) < _KEEP_REFUSED:
            where = f"line {row + 2}" if not f.parquet else f"row {row + 1}"
            self.refused.append(f"{f.path}:{where}: {why}")

    def _refuse_rows(self, f: _File, row0: int, rows: list[int], why: Callable[[int], str]) -> None:
        """Refuse a chunk's `rows`; only the messages that will be kept are written."""
        room = max(0, _KEEP_REFUSED - len(self.refused))
        for i in rows[:room]:
            self._refuse(f, row0 + i, why(i))
        self.refused_count += max(0, len(rows) - room)

    def _runs(self, fi: int, f: _File, edge: EdgeFilter, now: int) -> Iterator[Run]:
        """The file's runs, a chunk each (chunks with nothing to give are skipped), until
        `end_ms`. Reading a chunk refuses the rows it cannot read; a chunk's rows are put in
        time order (stable), but a chunk earlier than the one before it is a DataError."""
        last_ts = -(2**62)
        row0 = 0
        for frame in _chunks(f):
            self.rows_read += len(frame)
            if f.kind == "headlines":
                rows, ts, heads = self._headline_rows(f, frame, row0)
            else:
                cols, rows, ts = self._tick_rows(f, frame, row0)
            if len(rows):
                if ts[0] < last_ts:
                    raise DataError(
                        f"{f.path}: not in time order (line {row0 + rows[0] + 2} is earlier "
                        "than a row before it): sort the file by ts, e.g. "
                        "`df.sort_values('ts').to_parquet(...)`"
                    )
                last_ts = int(ts[-1])
            cut = len(ts) if self.end_ms is None else int(np.searchsorted(ts, self.end_ms))
            stop, rows, ts = cut < len(ts), rows[:cut], ts[:cut]
            if f.kind == "headlines":  # those before the range are left out
                skip = 0 if self.start_ms is None else int(np.searchsorted(ts, self.start_ms))
                rows, ts = rows[skip:], ts[skip:]
                run = Run(fi, 1, ts, row0 + rows, [heads[i] for i in rows.tolist()])
            else:
                run = self._tick_run(fi, cols, row0, rows, ts, edge, now)
            if len(run.ts):
                yield run
            if stop:
                return
            row0 += len(frame)

    def _tick_rows(
        self, f: _File, frame: pd.DataFrame, row0: int
    ) -> tuple[TickColumns, np.ndarray, np.ndarray]:
        """The chunk's columns, and its rows that can be ticks (in time order) with their
        times; the others are refused: no time or symbol, or no positive price."""
        cols = tick_columns(frame)
        readable = cols.readable
        with np.errstate(invalid="ignore"):
            priced = np.isfinite(cols.price) & (cols.price > 0)
        price_col = "close" if f.kind == "bars" else "price"

        def why(i: int) -> str:
            if not readable[i]:
                return _why_not(frame, i)
            raw = frame[price_col].iloc[i]
            return f"{price_col} {str(raw)!r} is not a positive number"

        self._refuse_rows(f, row0, np.flatnonzero(~(readable & priced)).tolist(), why)
        rows = np.flatnonzero(readable & priced)
        return (cols, *_in_time_order(rows, cols.ts[rows]))

    def _tick_run(
        self,
        fi: int,
        cols: TickColumns,
        row0: int,
        rows: np.ndarray,
        ts: np.ndarray,
        edge: EdgeFilter,
        now: int,
    ) -> Run:
        """The chunk's ticks at `rows` (in time order, before `end_ms`) as a run: symbols no
        rule reads counted in `ignored` and left out, the edge's refusals marked, ticks
        before `start_ms` marked `history`."""
        if self.symbols is not None:
            wanted = np.array([n in self.symbols for n in cols.names], dtype=bool)[cols.codes[rows]]
            if not wanted.all():
                self._ignore(cols, rows[~wanted])
                rows, ts = rows[wanted], ts[wanted]
        history = 0 if self.start_ms is None else int(np.searchsorted(ts, self.start_ms))
        why: list[tuple[int, str]] = []
        good = np.arange(len(rows))
        if self.symbols is not None:  # (None: no universe to check against)
            reasons = edge.tick_reasons(
                cols.symbols[rows],
                ts,
                cols.price[rows],
                None if cols.bid is None else cols.bid[rows],
                None if cols.ask is None else cols.ask[rows],
                now,
            )
            refused = reasons.astype(bool)  # a reason, or None
            if refused.any():
                at, what = np.flatnonzero(refused).tolist(), reasons[refused].tolist()
                why = [(i, REASONS.get(r, r)) for i, r in zip(at, what, strict=True)]
                good = good[~refused]
        ticks = cols.fields(rows[good], self.source, (good < history).tolist())
        return Run(fi, 0, ts, row0 + rows, ticks=ticks, history=history, why=why)

    def _ignore(self, cols: TickColumns, rows: np.ndarray) -> None:
        """Count rows of symbols no rule reads (not refused: a file of the whole market is
        fine)."""
        counts = np.bincount(cols.codes[rows], minlength=len(cols.names))
        for name, n in zip(cols.names.tolist(), counts.tolist(), strict=True):
            if n:
                self.ignored[name] += n

    def _headline_rows(
        self, f: _File, frame: pd.DataFrame, row0: int
    ) -> tuple[np.ndarray, np.ndarray, dict[int, Headline]]:
        """The chunk's rows that are headlines (in time order), their times, and the
        headline of each row; a row without a readable time is refused."""
        ts, heads = headlines_from_frame(frame, self.source)
        rows = np.flatnonzero(ts_ms_of(frame["ts"]) >= 0)  # the rows it kept
        self._refuse_rows(f, row0, np.delete(np.arange(len(frame)), rows).tolist(),
                          lambda i: "cannot read its time (ts)")  # fmt: skip
        by_row = dict(zip(rows.tolist(), heads, strict=True))
        rows, ts = _in_time_order(rows, ts)
        return rows, ts, by_row


def _in_time_order(rows: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`rows` and their times sorted by time, ties in row order."""
    if len(ts) > 1 and bool(np.any(ts[1:] < ts[:-1])):
        order = np.argsort(ts, kind="stable")
        return rows[order], ts[order]
    return rows, ts


def _why_not(frame: pd.DataFrame, i: int) -> str:
    sym = frame["symbol"].iloc[i]
    if not isinstance(sym, str) or not sym.strip():
        return "no symbol"
    return f"cannot read its time {frame['ts'].iloc[i]!r} (ts: ISO 8601, e.g. 2026-03-16T13:31:00Z)"


def _chunks(f: _File) -> Iterator[pd.DataFrame]:
    if f.parquet:
        yield from _parquet_chunks(f)
        return
    yield from pd.read_csv(
        f.path, chunksize=CHUNK_ROWS, keep_default_na=True, dtype={"symbol": str, "symbols": str}
    )


def _parquet_chunks(f: _File) -> Iterator[pd.DataFrame]:
    """Record batches as frames. For ticks, only the columns `tick_columns` reads (a bar's
    open, high and low are not), the symbol as a dictionary: a few distinct strings, not a
    string object per row."""
    schema = pq.read_schema(f.path)
    columns: list[str] | None = None
    dictionary: list[str] = []
    if f.kind != "headlines":
        used = ("ts", "symbol", "close", "volume", "bid", "ask")
        if f.kind == "ticks":
            used = ("ts", "symbol", "price", "size", "bid", "ask")
        columns = [c for c in used if c in schema.names]
        kind = schema.field("symbol").type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            dictionary = ["symbol"]
    pf = pq.ParquetFile(f.path, read_dictionary=dictionary)
    for batch in pf.iter_batches(batch_size=CHUNK_ROWS, columns=columns):
        yield batch.to_pandas()


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
