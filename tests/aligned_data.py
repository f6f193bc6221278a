"""Seeded 1-minute bars for XMAG and MAGS whose YTD spread and price ratio wander across levels.

Used by tests/integration/test_aligned_legs.py (issue 11: a two-symbol rule is judged once per
bar time, on both legs of that bar). The bars cover NYSE regular sessions only (exchange_calendars'
XNYS: Presidents' Day is skipped, and the 2026-03-08 DST change moves the UTC open from 14:30
to 13:30), so there are overnight and weekend gaps. A few bars of each leg are dropped at random
minutes, so at some minutes only one leg has a bar and a rule reading both must not be judged.

Prices are built from the quantities the rules read, not the other way round:
- MAGS is a geometric random walk near the 2026 anchor of 60;
- the YTD spread s (XMAG YTD % minus MAGS YTD %) is a mean-reverting process around 8.5 that
  keeps crossing 8 (the rule's level) and 9 (its clear level), with per-minute noise;
- XMAG is then whatever price gives that spread: XMAG/25 - 1 = s/100 + MAGS/60 - 1.
Closes are rounded to 4 decimals (the CSV is the truth; the reference reads it back).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd

__all__ = [
    "ANCHORS",
    "ANCHOR_DAY",
    "END",
    "SEED",
    "START",
    "make_bars",
    "ordered",
    "session_minutes",
    "write_bars",
]

#: The configured year-start prices (the Dec 31 2025 closes): anchors in alerts.yaml.
ANCHOR_DAY = "2026-01-01"
ANCHORS = {"XMAG": 25.0, "MAGS": 60.0}
START, END = "2026-02-12", "2026-03-10"
SEED = 11
#: Share of each leg's bars dropped at random minutes.
DROP = {"XMAG": 0.005, "MAGS": 0.015}


def session_minutes(start: str = START, end: str = END) -> pd.DatetimeIndex:
    """Every regular-session bar start (UTC) of the XNYS sessions from `start` to `end`."""
    with warnings.catch_warnings():  # exchange_calendars reads Series.values (pandas 4 notice)
        warnings.simplefilter("ignore", getattr(pd.errors, "Pandas4Warning", DeprecationWarning))
        cal = xcals.get_calendar("XNYS", start="2026-01-01", end="2026-12-31")
        sessions = cal.sessions_in_range(start, end)
        minutes = [cal.session_minutes(s) for s in sessions]
    out: pd.DatetimeIndex = minutes[0].append(minutes[1:])
    return out


def make_bars(seed: int = SEED, start: str = START, end: str = END) -> pd.DataFrame:
    """Bars `ts,symbol,open,high,low,close,volume` (ts = bar start), sorted by (ts, symbol)."""
    rng = np.random.default_rng(seed)
    minutes = session_minutes(start, end)
    n = len(minutes)

    # the YTD spread: an OU process (time scale ~45 minutes, sd ~0.75) plus minute noise
    theta, mu, sd = 1 / 45, 8.5, 0.75
    sigma = sd * np.sqrt(2 * theta)
    s = np.empty(n)
    s[0] = 9.3
    shocks = rng.normal(0.0, sigma, n)
    for k in range(1, n):
        s[k] = s[k - 1] + theta * (mu - s[k - 1]) + shocks[k]
    s += rng.normal(0.0, 0.04, n)

    mags = 61.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0007, n)))
    xmag = ANCHORS["XMAG"] * (s / 100 + mags / ANCHORS["MAGS"])

    frames = []
    for sym, close in (("XMAG", xmag), ("MAGS", mags)):
        close = np.round(close, 4)
        open_ = np.round(np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, 2e-4, n)), 4)
        wick = np.abs(rng.normal(0, 5e-4, n))
        high = np.round(np.maximum(open_, close) * (1 + wick), 4)
        low = np.round(np.minimum(open_, close) * (1 - wick), 4)
        volume = rng.integers(1_000, 50_000, n)
        df = pd.DataFrame(
            {
                "ts": minutes,
                "symbol": sym,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            }
        )
        drop = rng.choice(n, size=round(DROP[sym] * n), replace=False)
        keep = np.ones(n, bool)
        keep[drop] = False
        frames.append(df[keep])
    bars = pd.concat(frames, ignore_index=True)
    return ordered(bars, "asc")


def ordered(bars: pd.DataFrame, symbol_order: str) -> pd.DataFrame:
    """The bars by ts, and within one ts by symbol ascending ("asc": MAGS first) or descending."""
    asc = symbol_order == "asc"
    return bars.sort_values(["ts", "symbol"], ascending=[True, asc], kind="stable").reset_index(
        drop=True
    )


def write_bars(bars: pd.DataFrame, path: Path, symbol_order: str) -> Path:
    """Write the replay CSV (ISO UTC `ts` with a Z) in the given within-timestamp order."""
    out = ordered(bars, symbol_order).copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False, float_format="%.4f")
    return path
