"""Rows of a table (CSV, CSV.gz or Parquet) as ticks and headlines: the replay source's and
the backtest's one reading of history files.

Layouts (one header row; extra columns are ignored):

- trades: `ts, symbol, price[, size, bid, ask]`
- 1-minute bars (OHLCV): `ts, symbol, open, high, low, close[, volume]`, `ts` the bar's START;
  a bar becomes one tick at its end (`ts` + 1 minute), priced at its close, as a provider's
  bar stream delivers it
- headlines: `ts, title[, id, summary, symbols, source, url, sentiment, ticker_sentiment]`,
  `symbols` space- or comma-separated, `ticker_sentiment` a JSON object {symbol: score}

`ts` is ISO 8601 (a zone or `Z`; naive times are read as UTC). A row whose time or symbol
cannot be read becomes None (ticks) or is dropped (headlines): the caller counts and names it.
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daemon.events import Headline, Tick, TickKind

__all__ = [
    "BAR_MS",
    "TickColumns",
    "headlines_from_frame",
    "make_ticks",
    "read_table",
    "tick_columns",
    "ticks_from_frame",
    "ts_ms_of",
]

BAR_MS = 60_000


def read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, keep_default_na=True, dtype={"symbol": str, "symbols": str})


def ts_ms_of(col: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
    ms = ts.dt.as_unit("ms").astype("int64").to_numpy()
    return np.where(ts.notna().to_numpy(), ms, -1)


@dataclass
class TickColumns:
    """A frame's tick rows as arrays, so a caller can check a whole chunk at once (the
    backtest reads a million rows) and build `Tick`s only for the rows it keeps.

    Symbols are factorized: `codes` index `names` (-1: none), so a per-symbol question (is it
    in the universe?) is asked once per distinct symbol, not once per row."""

    #: Epoch ms, -1 where unreadable; for bars the bar's END (its start + 1 minute).
    ts: np.ndarray
    price: np.ndarray  # float, NaN where unreadable
    size: np.ndarray  # float, 0 where missing
    #: float, NaN for no quote; None when the file has no such column.
    bid: np.ndarray | None
    ask: np.ndarray | None
    codes: np.ndarray  # int, into `names`; -1 for a missing symbol
    #: object: the distinct symbols, stripped, then "" (so code -1 reads as blank).
    names: np.ndarray
    kind: TickKind

    @property
    def symbols(self) -> np.ndarray:
        """Each row's symbol ("" when missing), as an object array."""
        symbols: np.ndarray = self.names[self.codes]
        return symbols

    @property
    def readable(self) -> np.ndarray:
        """Rows with a time and a symbol: the ones that can become ticks at all."""
        readable: np.ndarray = (self.ts >= 0) & (self.names != "")[self.codes]
        return readable

    def fields(
        self, rows: np.ndarray, source: str, history: list[bool] | None = None
    ) -> dict[str, list[Any]]:
        """The `Tick` fields of `rows` (in that order) as lists, for `make_ticks`; `history`
        flags each row (None: none)."""
        n = len(rows)
        return {
            "symbol": self.names[self.codes[rows]].tolist(),
            "ts_ms": self.ts[rows].tolist(),
            "price": self.price[rows].tolist(),
            "size": self.size[rows].tolist(),
            "bid": _optional(self.bid, rows),
            "ask": _optional(self.ask, rows),
            "kind": [self.kind] * n,
            "source": [source] * n,
            "history": [False] * n if history is None else history,
        }

    def ticks(self, rows: np.ndarray, source: str) -> list[Tick]:
        """A `Tick` per row in `rows`, in that order."""
        return make_ticks(self.fields(rows, source))


#: Each `Tick` field's slot setter, what `make_ticks` fills a field with.
_TICK_SLOTS = {f.name: getattr(Tick, f.name).__set__ for f in dataclasses.fields(Tick)}


def make_ticks(fields: dict[str, list[Any]], a: int = 0, b: int | None = None) -> list[Tick]:
    """Ticks `a:b` of `fields` (a list per `Tick` field, one value per tick).

    Built a field at a time, each slot's setter mapped over its list in C, not `Tick(...)`
    per tick: a frozen dataclass's `__init__` sets each field through `object.__setattr__`,
    which made this twice as slow, and a backtest builds a million. Sound only while `Tick`'s
    `__init__` does nothing but set its fields (no `__post_init__`): a test checks that
    both build the same ticks."""
    if fields.keys() != _TICK_SLOTS.keys():
        raise ValueError(f"Tick's fields are {list(_TICK_SLOTS)}, not {list(fields)}")
    n = len(fields["ts_ms"][a:b])
    ticks = list(map(object.__new__, repeat(Tick, n)))
    for name, set_slot in _TICK_SLOTS.items():
        deque(map(set_slot, ticks, fields[name][a:b]), maxlen=0)  # (runs the map, keeps nothing)
    return ticks


def tick_columns(df: pd.DataFrame) -> TickColumns:
    """The frame's tick columns (see the module docstring for the layouts)."""
    ts = ts_ms_of(df["ts"])
    is_bar = "close" in df.columns
    price = pd.to_numeric(df["close" if is_bar else "price"], errors="coerce").to_numpy(float)
    size_col = "volume" if is_bar else "size"
    size = (
        pd.to_numeric(df[size_col], errors="coerce").fillna(0).to_numpy(float)
        if size_col in df.columns
        else np.zeros(len(df))
    )
    bid = df["bid"].to_numpy(float) if "bid" in df.columns else None
    ask = df["ask"].to_numpy(float) if "ask" in df.columns else None
    if is_bar:
        ts = np.where(ts >= 0, ts + BAR_MS, ts)
    codes, uniques = pd.factorize(df["symbol"])
    # as `fillna("").astype(str).str.strip()` would read each row, once per distinct value
    names = np.array([*(str(u).strip() for u in uniques), ""], dtype=object)
    return TickColumns(ts, price, size, bid, ask, codes, names, "bar" if is_bar else "trade")


def ticks_from_frame(df: pd.DataFrame, source: str) -> tuple[np.ndarray, list[Tick | None]]:
    """Rows → ticks, None for a row without a time or a symbol (refused as bad_timestamp).
    Bars become one tick at the bar's end, priced at its close."""
    cols = tick_columns(df)
    rows = np.flatnonzero(cols.readable)
    out: list[Tick | None] = [None] * len(df)
    for i, t in zip(rows.tolist(), cols.ticks(rows, source), strict=True):
        out[i] = t
    return cols.ts, out


def _optional(values: np.ndarray | None, rows: np.ndarray) -> list[float | None]:
    """`values[rows]` with NaN as None (no quote), or all None when there is no column."""
    if values is None:
        return [None] * len(rows)
    v = values[rows]
    quotes = v.astype(object)  # Python floats
    quotes[np.isnan(v)] = None
    out: list[float | None] = quotes.tolist()
    return out


def headlines_from_frame(df: pd.DataFrame, source: str) -> tuple[np.ndarray, list[Headline]]:
    ts = ts_ms_of(df["ts"])
    out: list[Headline] = []
    keep = []
    for i, row in enumerate(df.astype(object).where(df.notna(), "").to_dict("records")):
        if ts[i] < 0:
            continue
        sent = row.get("sentiment", "")
        tsent = row.get("ticker_sentiment", "") or "{}"
        out.append(
            Headline(
                id=str(row.get("id") or f"{source}-{i}"),
                ts_ms=int(ts[i]),
                title=str(row.get("title", "")),
                summary=str(row.get("summary", "")),
                symbols=tuple(str(row.get("symbols", "")).replace(",", " ").split()),
                source=str(row.get("source", "")) or source,
                url=str(row.get("url", "")),
                sentiment=float(sent) if sent != "" else None,
                ticker_sentiment={k: float(v) for k, v in json.loads(str(tsent)).items()},
            )
        )
        keep.append(i)
    return ts[keep], out
