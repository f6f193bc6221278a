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

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from daemon.events import Headline, Tick

__all__ = ["BAR_MS", "headlines_from_frame", "read_table", "ticks_from_frame", "ts_ms_of"]

BAR_MS = 60_000


def read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, keep_default_na=True, dtype={"symbol": str, "symbols": str})


def ts_ms_of(col: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
    ms = ts.dt.as_unit("ms").astype("int64").to_numpy()
    return np.where(ts.notna().to_numpy(), ms, -1)


def ticks_from_frame(df: pd.DataFrame, source: str) -> tuple[np.ndarray, list[Tick | None]]:
    """Rows → ticks. Bars become one tick at the bar's end, priced at its close."""
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
    kind = "bar" if is_bar else "trade"
    symbols = df["symbol"].fillna("").astype(str).str.strip().tolist()
    ticks: list[Tick | None] = []
    ts_l, price_l, size_l = ts.tolist(), price.tolist(), size.tolist()
    for i, sym in enumerate(symbols):
        if ts_l[i] < 0 or not sym:
            ticks.append(None)  # unparseable row: refused as bad_timestamp
            continue
        b = bid[i] if bid is not None and not math.isnan(bid[i]) else None
        a = ask[i] if ask is not None and not math.isnan(ask[i]) else None
        ticks.append(Tick(sym, ts_l[i], price_l[i], size_l[i], b, a, kind, source))  # type: ignore[arg-type]
    return ts, ticks


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
