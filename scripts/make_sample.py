"""Build tickwatch's bundled sample dataset: the spring-2026 "rotation" story, deterministically.

Why this exists: `make run` replays `data/sample/` through the daemon, and the example rules
(a YTD-spread alert with `for:` and hysteresis, a "3% in 30m" move alert, headline keyword
alerts) need data in which each of them fires for a known reason at a known time. Real
minute data can't be shipped, and hand-written CSVs can't be regenerated or trusted, so this
script builds the data from a fixed seed, asserts every fact the story promises *before*
writing anything, and writes byte-identical files on every run (`make sample`).

The story (all YTD returns are against the 2025 year-end close, the "anchor" bar):

* XMAG (broad market ex-mag7) leads MAGS (equal-weight basket of the seven mega-caps) by
  roughly 10 percentage points in mid-March; the gap peaks on 2026-03-25 (XMAG +10.7%,
  MAGS -0.5%), the day after Amazon flags "demand digestion" (AMZN -4.8% within minutes).
* On 2026-04-01 Microsoft raises its AI capex guidance at 10:05 New York; NVDA jumps ~5.5%
  within a quarter of an hour and the mega-caps start to rally, compressing the spread.
* The spread first closes below 8.0 on 2026-04-09 in the early afternoon and stays there for
  the rest of the day; by 2026-04-14 it recovers above 8.6.

Prices are built as Brownian bridges between the story's key levels ("knots") plus small
noise, so the facts hold by construction; `check_story` then verifies them on the rounded
numbers exactly as they are written. Outputs (default `--out data/sample`):
`ticks.csv.gz`, `news.csv`, `story.json`, and the chart `docs/sample-story.png`.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gzip
import io
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import exchange_calendars as xcals
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
NY = "America/New_York"
SEED = 20260414

# --- the universe ---------------------------------------------------------------------------
MAG7 = ("AAPL", "MSFT", "GOOGL", "AMZN", "META", "NVDA", "TSLA")
SYMBOLS = ("XMAG", "MAGS", *MAG7)
YEAR_END_SESSION = "2025-12-31"  # last regular session of 2025; its 15:59 bar is the anchor
YEAR_END_CLOSE = {
    "XMAG": 25.00,
    "MAGS": 60.00,
    "AAPL": 250.00,
    "MSFT": 480.00,
    "GOOGL": 310.00,
    "AMZN": 230.00,
    "META": 660.00,
    "NVDA": 185.00,
    "TSLA": 450.00,
}
# Where each mega-cap stands against the basket when the window opens (dispersion only: the
# basket level itself comes from STORY_KNOTS).
MAG7_START_OFFSET = {
    "AAPL": -0.03,
    "MSFT": -0.05,
    "GOOGL": 0.06,
    "AMZN": 0.02,
    "META": 0.03,
    "NVDA": 0.05,
    "TSLA": -0.09,
}
BASE_VOLUME = {  # shares per minute, before the intraday U-shape
    "XMAG": 18_000,
    "MAGS": 12_000,
    "AAPL": 110_000,
    "MSFT": 45_000,
    "GOOGL": 60_000,
    "AMZN": 80_000,
    "META": 30_000,
    "NVDA": 350_000,
    "TSLA": 200_000,
}

# --- the window -----------------------------------------------------------------------------
FIRST_SESSION = "2026-03-16"
LAST_SESSION = "2026-04-14"
EARLY_SESSIONS = 5  # the spread sits in EARLY_RANGE over the first week
EARLY_RANGE = (9.5, 11.0)

# --- the story (times are New York wall clock; a knot's time is the START of its bar) -------
PEAK_DAY = "2026-03-25"
PEAK_XMAG, PEAK_MAGS = 10.7, -0.5
PEAK_TOLERANCE = 0.15  # pp, for both YTD values at the bar where the spread peaks
COMPRESSION_DAY = "2026-04-09"
SPREAD_THRESHOLD = 8.0  # the rule's `spread < 8.0`
EARLY_AFTERNOON = ("12:00", "14:30")  # first bar below the threshold starts in this span
HOLD_MINUTES = 45  # ... and the spread stays below for at least this long
RECOVERY_LEVEL = 8.6  # above the rule's `clear: 8.5`
RECOVERY_MINUTES = 30

DIGESTION_TIME = "2026-03-24 11:00"
CAPEX_TIME = "2026-04-01 10:05"
ROTATION_NOTE_TIME = "2026-03-25 15:45"
# Headline shocks (log-return size, ramp minutes). Each ramps in from the headline's minute.
DIGESTION_SHOCK = {"AMZN": (math.log(1 - 0.048), 10)}
CAPEX_SHOCK = {"NVDA": (math.log(1 + 0.056), 12), "MSFT": (math.log(1 + 0.012), 12)}
CAPEX_FADE = 0.2  # NVDA gives back this fraction of its jump over the next two hours
NVDA_MIN_JUMP = 4.0  # % within MOVE_WINDOW minutes of the capex headline
AMZN_MAX_DROP = -3.5  # % within MOVE_WINDOW minutes of the digestion headline
MOVE_WINDOW = 30  # minutes
MAX_ORDINARY_MOVE = 2.5  # % in MOVE_WINDOW minutes, for any mag7 name outside the two events
EVENT_EXCLUSION = 60  # minutes after a headline during which its mover may move freely
HEADLINE_MOVERS = ((DIGESTION_TIME, "AMZN"), (CAPEX_TIME, "NVDA"))  # the "3% in 30m" alerts

# Key levels: (New York bar start, XMAG YTD %, MAGS YTD %). The spread (XMAG - MAGS) is in the
# comment. Between knots the paths are Brownian bridges, so they pass through these exactly.
STORY_KNOTS: tuple[tuple[str, float, float], ...] = (
    ("2026-03-16 09:30", 9.90, -0.20),  # 10.10  broad market leads by ~10 pp
    ("2026-03-16 15:59", 10.05, -0.15),  # 10.20
    ("2026-03-17 15:59", 9.85, -0.30),  # 10.15
    ("2026-03-18 15:59", 10.10, 0.05),  # 10.05
    ("2026-03-19 15:59", 10.25, -0.05),  # 10.30
    ("2026-03-20 15:59", 10.15, 0.10),  # 10.05
    ("2026-03-23 15:59", 10.30, 0.20),  # 10.10
    ("2026-03-24 10:59", 10.35, 0.30),  # 10.05  just before "demand digestion"
    ("2026-03-24 11:30", 10.25, -0.45),  # 10.70  AMZN drags the basket
    ("2026-03-24 15:59", 10.40, -0.35),  # 10.75
    ("2026-03-25 14:30", 10.50, -0.40),  # 10.90
    ("2026-03-25 15:40", PEAK_XMAG, PEAK_MAGS),  # 11.20  the peak
    ("2026-03-25 15:59", 10.65, -0.40),  # 11.05
    ("2026-03-26 15:59", 10.40, -0.15),  # 10.55
    ("2026-03-27 15:59", 10.10, -0.20),  # 10.30
    ("2026-03-30 15:59", 10.25, 0.05),  # 10.20
    ("2026-03-31 15:59", 10.15, 0.20),  # 9.95
    ("2026-04-01 10:04", 10.20, 0.25),  # 9.95   just before the capex headline
    ("2026-04-01 10:35", 10.10, 1.20),  # 8.90   mega-caps rally
    ("2026-04-01 15:59", 10.25, 1.35),  # 8.90
    ("2026-04-02 15:59", 10.05, 1.20),  # 8.85   (04-03 is Good Friday)
    ("2026-04-06 15:59", 10.15, 1.50),  # 8.65
    ("2026-04-07 15:59", 9.95, 1.40),  # 8.55
    ("2026-04-08 15:59", 10.05, 1.60),  # 8.45
    ("2026-04-09 12:00", 10.05, 1.75),  # 8.30
    ("2026-04-09 13:29", 9.98, 1.83),  # 8.15   second leg of mega-cap buying starts
    ("2026-04-09 13:45", 9.90, 2.10),  # 7.80   spread breaks 8.0
    ("2026-04-09 14:30", 9.85, 2.30),  # 7.55
    ("2026-04-09 15:59", 9.90, 2.35),  # 7.55
    ("2026-04-10 15:59", 9.95, 2.20),  # 7.75
    ("2026-04-13 15:59", 10.15, 1.95),  # 8.20
    ("2026-04-14 11:00", 10.35, 1.70),  # 8.65   broadening resumes
    ("2026-04-14 12:00", 10.45, 1.60),  # 8.85
    ("2026-04-14 15:59", 10.55, 1.60),  # 8.95
)

# Noise, per minute, in log-return units.
MARKET_SIGMA = 0.00030  # shared by XMAG and the basket (bridged between knots)
XMAG_SIGMA = 0.00006  # XMAG's own wiggle (bridged)
BASKET_SIGMA = 0.00008  # the basket's own wiggle (bridged)
NAME_SIGMA = 0.00045  # each mega-cap's walk against the basket
NAME_CORRELATION = 0.3
TRACKING_TOLERANCE = 0.05  # pp: MAGS YTD vs the mean of the seven names' YTD
TRACKING_SIGMA = 0.00003  # MAGS vs its basket (AR(1), phi=0.9): a few hundredths of a bp
WICK_SIGMA = 0.00025  # high/low beyond open/close

# Four rows the daemon must reject at the edge, appended after the clean bars.
BAD_ROWS = (
    # close is NaN (a corrupt re-send of the final AAPL bar)
    "2026-04-14T19:59:00Z,AAPL,{AAPL},{AAPL},{AAPL},nan,1200",
    # negative price (a corrupt re-send of the final NVDA bar)
    "2026-04-14T19:59:00Z,NVDA,{NVDA},{NVDA},{NVDA},-1.0,900",
    # a symbol nobody trades
    "2026-04-14T19:59:00Z,ZZZZ,10.0000,10.0100,9.9900,10.0000,500",
    # a timestamp far in the future
    "2099-01-01T14:30:00Z,MSFT,{MSFT},{MSFT},{MSFT},{MSFT},700",
)
BAD_ROW_NOTES = (
    "close is nan (AAPL, same key as the final clean AAPL bar)",
    "close is -1.0 (NVDA, same key as the final clean NVDA bar)",
    "unknown symbol ZZZZ",
    "timestamp 2099-01-01T14:30:00Z, far in the future (MSFT)",
)

TICK_COLUMNS = ("ts", "symbol", "open", "high", "low", "close", "volume")
NEWS_COLUMNS = (
    "ts",
    "id",
    "title",
    "summary",
    "symbols",
    "source",
    "url",
    "sentiment",
    "ticker_sentiment",
)
# The brief's words, plus what the shipped headline rules (rules/headlines.yaml) match on.
FORBIDDEN_FILLER_WORDS = (
    "capex",
    "capital expenditure",
    "capital spending",
    "guidance",
    "demand digestion",
    "digest",
    "rotation",
    "broaden",
)


# --- calendar -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Minutes:
    """The trading minutes of the window: bar starts (UTC) and the session each belongs to."""

    utc: pd.DatetimeIndex
    session: np.ndarray  # session number per minute, 0-based
    sessions: pd.DatetimeIndex  # session labels (dates)

    def index_of(self, ny_time: str) -> int:
        ts = pd.Timestamp(ny_time, tz=NY).tz_convert("UTC")
        pos = int(self.utc.searchsorted(ts))
        if pos == len(self.utc) or self.utc[pos] != ts:
            raise ValueError(f"{ny_time} (New York) is not a trading minute of the window")
        return pos


def trading_minutes() -> Minutes:
    """Regular-session 1-minute bar starts for every XNYS session in the window."""
    cal = xcals.get_calendar("XNYS", start="2025-12-01", end="2026-05-29")
    sessions = cal.sessions_in_range(FIRST_SESSION, LAST_SESSION)
    parts = [cal.session_minutes(s) for s in sessions]
    utc = parts[0].append(parts[1:])
    session = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    return Minutes(utc=utc, session=session, sessions=sessions)


@functools.cache
def anchor_ts() -> pd.Timestamp:
    """The last regular minute bar of 2025 (15:59 New York on the year's last session)."""
    cal = xcals.get_calendar("XNYS", start="2025-12-01", end="2026-05-29")
    require(cal.is_session(YEAR_END_SESSION), f"{YEAR_END_SESSION} is not an XNYS session")
    return cal.session_close(YEAR_END_SESSION) - pd.Timedelta(minutes=1)


# --- random paths ---------------------------------------------------------------------------
def stream(name: str) -> np.random.Generator:
    """An independent generator per component, so tuning one leaves the others unchanged."""
    return np.random.default_rng([SEED, *name.encode()])


def bridge_noise(
    rng: np.random.Generator, n: int, knots: Sequence[int], sigma: float
) -> np.ndarray:
    """A random walk pinned to zero at every knot index (a chain of Brownian bridges)."""
    out = np.zeros(n)
    for a, b in itertools.pairwise(knots):
        walk = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, sigma, b - a))])
        frac = np.arange(b - a + 1) / (b - a)
        out[a : b + 1] = walk - frac * walk[-1]
    return out


def knot_line(n: int, knots: Sequence[int], values: Sequence[float]) -> np.ndarray:
    """Straight lines through (knot index, value), in whatever units `values` are in."""
    return np.interp(np.arange(n), knots, values)


def name_walks(n: int) -> np.ndarray:
    """Correlated log walks, one row per mega-cap, starting at each name's offset."""
    k = len(MAG7)
    corr = np.full((k, k), NAME_CORRELATION) + (1 - NAME_CORRELATION) * np.eye(k)
    chol = np.linalg.cholesky(corr)
    steps = NAME_SIGMA * (chol @ stream("names").standard_normal((k, n)))
    steps[:, 0] = 0.0
    start = np.log1p([MAG7_START_OFFSET[s] for s in MAG7])[:, None]
    return start + np.cumsum(steps, axis=1)


def ramp(n: int, start: int, minutes: int) -> np.ndarray:
    """0 before `start`, rising linearly to 1 over `minutes` bars (the first bar already moves)."""
    return np.clip((np.arange(n) - start + 1) / minutes, 0.0, 1.0)


def headline_shocks(minutes: Minutes) -> np.ndarray:
    """Permanent log-price shocks per mega-cap from the two headlines (rows follow MAG7)."""
    n = len(minutes.utc)
    shocks = np.zeros((len(MAG7), n))
    for when, shock in ((DIGESTION_TIME, DIGESTION_SHOCK), (CAPEX_TIME, CAPEX_SHOCK)):
        start = minutes.index_of(when)
        for symbol, (size, ramp_minutes) in shock.items():
            shocks[MAG7.index(symbol)] += size * ramp(n, start, ramp_minutes)
    # NVDA fades part of its jump over the following two hours.
    nvda_jump = CAPEX_SHOCK["NVDA"][0]
    fade_start = minutes.index_of(CAPEX_TIME) + CAPEX_SHOCK["NVDA"][1]
    shocks[MAG7.index("NVDA")] -= CAPEX_FADE * nvda_jump * ramp(n, fade_start, 120)
    return shocks


def story_closes(minutes: Minutes) -> dict[str, np.ndarray]:
    """Unrounded closes per symbol for every trading minute of the window."""
    n = len(minutes.utc)
    knots = [minutes.index_of(t) for t, _, _ in STORY_KNOTS]
    log_x = np.log1p(np.array([x for _, x, _ in STORY_KNOTS]) / 100)
    log_m = np.log1p(np.array([m for _, _, m in STORY_KNOTS]) / 100)
    market = bridge_noise(stream("market"), n, knots, MARKET_SIGMA)

    xmag = knot_line(n, knots, log_x) + market + bridge_noise(stream("xmag"), n, knots, XMAG_SIGMA)

    # Each name = core basket level x its own walk (with headline shocks), normalized by the
    # shock-free walks, so the shocks pass 1:1 into the names and the basket's mean of YTD
    # ratios equals core x drift, where drift is known; the core is set so the basket hits
    # every knot exactly.
    walks = name_walks(n)
    shocked = walks + headline_shocks(minutes)
    norm = np.exp(walks).mean(axis=0)
    drift = np.exp(shocked).mean(axis=0) / norm
    core_knots = log_m - np.log(drift[knots])
    core = knot_line(n, knots, core_knots) + market
    core += bridge_noise(stream("basket"), n, knots, BASKET_SIGMA)
    ratios = np.exp(core) * np.exp(shocked) / norm  # YTD price ratio per name

    rng = stream("tracking")
    tracking = np.zeros(n)
    for i in range(1, n):
        tracking[i] = 0.9 * tracking[i - 1] + rng.normal(0.0, TRACKING_SIGMA)

    closes = {"XMAG": YEAR_END_CLOSE["XMAG"] * np.exp(xmag)}
    closes["MAGS"] = YEAR_END_CLOSE["MAGS"] * ratios.mean(axis=0) * np.exp(tracking)
    for row, symbol in enumerate(MAG7):
        closes[symbol] = YEAR_END_CLOSE[symbol] * ratios[row]
    return closes


# --- bars -----------------------------------------------------------------------------------
def intraday_volume_shape(minutes: Minutes) -> np.ndarray:
    """The familiar U: busy open, quiet lunch, busy close."""
    k = np.arange(len(minutes.utc)) - np.searchsorted(minutes.session, minutes.session)
    return 1.0 + 1.8 * np.exp(-k / 25.0) + 1.0 * np.exp(-(389 - k) / 20.0)


def bars_for(symbol: str, close: np.ndarray, minutes: Minutes) -> pd.DataFrame:
    rng = stream(f"bars-{symbol}")
    n = len(close)
    open_ = np.concatenate([[close[0] * (1 + rng.normal(0, WICK_SIGMA))], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, WICK_SIGMA, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, WICK_SIGMA, n)))
    volume = BASE_VOLUME[symbol] * intraday_volume_shape(minutes) * rng.lognormal(0, 0.35, n)
    for when, shock in ((DIGESTION_TIME, DIGESTION_SHOCK), (CAPEX_TIME, CAPEX_SHOCK)):
        if symbol in shock:
            start = minutes.index_of(when)
            after = np.arange(n) - start
            volume *= np.where(after >= 0, 1 + 6 * np.exp(-np.clip(after, 0, None) / 12), 1)
    return pd.DataFrame(
        {
            "ts": minutes.utc,
            "symbol": symbol,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": np.rint(volume).astype(np.int64),
        }
    )


def anchor_bars() -> pd.DataFrame:
    ts = anchor_ts()
    rows = []
    for symbol in SYMBOLS:
        c = YEAR_END_CLOSE[symbol]
        rows.append((ts, symbol, c * 0.9996, c * 1.0004, c * 0.9993, c, 4 * BASE_VOLUME[symbol]))
    return pd.DataFrame(rows, columns=list(TICK_COLUMNS))


def build_ticks(minutes: Minutes) -> pd.DataFrame:
    """Anchor bars then window bars, sorted by ts then symbol, prices rounded to 4 decimals."""
    closes = story_closes(minutes)
    window = [bars_for(s, closes[s], minutes) for s in SYMBOLS]
    ticks = pd.concat([anchor_bars(), *window], ignore_index=True)
    ticks = ticks.sort_values(["ts", "symbol"], kind="stable", ignore_index=True)
    for col in ("open", "high", "low", "close"):
        ticks[col] = ticks[col].round(4)
    return ticks


# --- the facts --------------------------------------------------------------------------------
def ytd_table(ticks: pd.DataFrame) -> pd.DataFrame:
    """YTD % per symbol (columns) per window minute (rows, UTC bar starts)."""
    anchor = ticks[ticks["ts"] == anchor_ts()].set_index("symbol")["close"]
    window = ticks[ticks["ts"] > anchor_ts()].pivot(index="ts", columns="symbol", values="close")
    return (window / anchor - 1) * 100


def ny(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert(NY)


def iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def run_length(mask: np.ndarray, start: int) -> int:
    """How many consecutive True values from `start`."""
    rest = mask[start:]
    return int(rest.argmin()) if not rest.all() else len(rest)


def max_moves(close: pd.Series, window: int) -> pd.Series:
    """Largest |% change| of each close vs any close up to `window` minutes before it."""
    c = close.to_numpy()
    t = np.asarray((close.index - close.index[0]) / pd.Timedelta(minutes=1))
    best = np.zeros(len(c))
    for lag in range(1, window + 1):
        move = np.abs(c[lag:] / c[:-lag] - 1) * 100
        near = t[lag:] - t[:-lag] <= window
        best[lag:] = np.maximum(best[lag:], np.where(near, move, 0.0))
    return pd.Series(best, index=close.index)


def move_after(close: pd.Series, when_ny: str) -> float:
    """Most extreme % move within MOVE_WINDOW minutes after a headline, vs the price at it."""
    at = pd.Timestamp(when_ny, tz=NY).tz_convert("UTC")
    ref = close[close.index < at].iloc[-1]
    after = close[(close.index >= at) & (close.index < at + pd.Timedelta(minutes=MOVE_WINDOW))]
    moves = (after / ref - 1) * 100
    return float(moves.iloc[moves.abs().argmax()])


class StoryBroken(Exception):
    """The generated data does not tell the promised story (so nothing is written)."""


def require(condition: bool, message: str) -> None:
    """Like `assert`, but survives `python -O`."""
    if not condition:
        raise StoryBroken(message)


def check_spread(spread: pd.Series, ytd: pd.DataFrame, minutes: Minutes) -> dict[str, Any]:
    """Early level, peak, compression below 8.0 and recovery above 8.6."""
    dates = np.array([d.date().isoformat() for d in spread.index.tz_convert(NY)])
    values = spread.to_numpy()

    early = dates <= minutes.sessions[EARLY_SESSIONS - 1].date().isoformat()
    lo, hi = EARLY_RANGE
    require(bool(((values[early] >= lo) & (values[early] <= hi)).all()), "early spread range")

    peak = spread.idxmax()
    require(ny(peak).date().isoformat() == PEAK_DAY, f"spread peaks at {ny(peak)}")
    require(
        abs(ytd.at[peak, "XMAG"] - PEAK_XMAG) <= PEAK_TOLERANCE, f"XMAG at peak {ytd.loc[peak]}"
    )
    require(
        abs(ytd.at[peak, "MAGS"] - PEAK_MAGS) <= PEAK_TOLERANCE, f"MAGS at peak {ytd.loc[peak]}"
    )

    below = values < SPREAD_THRESHOLD
    first = int(below.argmax())
    first_ts = spread.index[first]
    require(dates[first] == COMPRESSION_DAY, f"spread first < threshold at {ny(first_ts)}")
    clock = ny(first_ts).strftime("%H:%M")
    require(EARLY_AFTERNOON[0] <= clock < EARLY_AFTERNOON[1], f"first below at {clock}")
    held = run_length(below, first)
    require(held >= HOLD_MINUTES, f"spread only held below for {held} minutes")

    above = values > RECOVERY_LEVEL
    recovery = next(
        (
            i
            for i in range(first, len(values))
            if above[i] and run_length(above, i) >= RECOVERY_MINUTES
        ),
        None,
    )
    if recovery is None:
        raise StoryBroken(f"spread never stays above {RECOVERY_LEVEL} for {RECOVERY_MINUTES}m")

    note_at = pd.Timestamp(ROTATION_NOTE_TIME, tz=NY).tz_convert("UTC")
    note_bar = ytd.index[ytd.index < note_at][-1]
    return {
        "peak": {
            "day": PEAK_DAY,
            "ts": iso(peak),
            "xmag_ytd": round(float(ytd.at[peak, "XMAG"]), 4),
            "mags_ytd": round(float(ytd.at[peak, "MAGS"]), 4),
            "spread": round(float(spread[peak]), 4),
        },
        "rotation_note_values": {
            "bar_ts": iso(note_bar),
            "xmag_ytd": round(float(ytd.at[note_bar, "XMAG"]), 4),
            "mags_ytd": round(float(ytd.at[note_bar, "MAGS"]), 4),
        },
        "compression": {
            "day": COMPRESSION_DAY,
            "threshold": SPREAD_THRESHOLD,
            "first_below_ts": iso(first_ts),
            "first_below_bar_close_ts": iso(first_ts + pd.Timedelta(minutes=1)),
            "first_below_spread": round(float(values[first]), 4),
            "minutes_below": held,
            "min_spread_before_day": round(float(values[dates < COMPRESSION_DAY].min()), 4),
        },
        "recovery": {
            "level": RECOVERY_LEVEL,
            "first_ts": iso(spread.index[recovery]),
            "minutes_above": run_length(above, recovery),
        },
        "spread_range": [round(float(values.min()), 4), round(float(values.max()), 4)],
    }


def check_moves(closes: pd.DataFrame) -> dict[str, Any]:
    """The two headline moves happen, and nothing else moves a mega-cap that much."""
    nvda = move_after(closes["NVDA"], CAPEX_TIME)
    amzn = move_after(closes["AMZN"], DIGESTION_TIME)
    require(nvda >= NVDA_MIN_JUMP, f"NVDA only {nvda:.2f}% after the capex headline")
    require(amzn <= AMZN_MAX_DROP, f"AMZN only {amzn:.2f}% after the digestion headline")
    ordinary = ordinary_max_moves(closes)
    require(max(ordinary.values()) <= MAX_ORDINARY_MOVE, f"ordinary move too big: {ordinary}")
    return {
        "moves": {
            "nvda_after_capex_pct": round(nvda, 4),
            "amzn_after_digestion_pct": round(amzn, 4),
            "largest_ordinary_30m_move_pct": {k: round(v, 4) for k, v in ordinary.items()},
        }
    }


def check_bars(ticks: pd.DataFrame, ytd: pd.DataFrame) -> dict[str, Any]:
    """MAGS tracks its basket; every bar's high/low bracket its open/close."""
    tracking = float((ytd["MAGS"] - ytd[list(MAG7)].mean(axis=1)).abs().max())
    require(tracking < TRACKING_TOLERANCE, f"MAGS strays {tracking:.3f} pp from its basket")
    require(bool((ticks["low"] <= ticks[["open", "close"]].min(axis=1)).all()), "low > body")
    require(bool((ticks["high"] >= ticks[["open", "close"]].max(axis=1)).all()), "high < body")
    return {"mags_max_tracking_error_pp": round(tracking, 4)}


def check_story(ticks: pd.DataFrame, minutes: Minutes) -> dict[str, Any]:
    """Verify every promised fact on the rounded data; return them for story.json."""
    ytd = ytd_table(ticks)
    closes = ticks[ticks["ts"] > anchor_ts()].pivot(index="ts", columns="symbol", values="close")
    return {
        **check_spread(ytd["XMAG"] - ytd["MAGS"], ytd, minutes),
        **check_moves(closes),
        **check_bars(ticks, ytd),
    }


def ordinary_max_moves(closes: pd.DataFrame) -> dict[str, float]:
    """Largest 30-minute |move| per mag7 name, ignoring each headline's own name right after it."""
    result = {}
    for symbol in MAG7:
        moves = max_moves(closes[symbol], MOVE_WINDOW)
        for when, mover in HEADLINE_MOVERS:
            at = pd.Timestamp(when, tz=NY).tz_convert("UTC")
            if symbol == mover:
                hit = (moves.index >= at) & (moves.index <= at + pd.Timedelta(EVENT_EXCLUSION, "m"))
                moves = moves.where(~hit, 0.0)
        result[symbol] = float(moves.max())
    return result


# --- news -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    ny_time: str
    title: str
    summary: str
    symbols: tuple[str, ...]
    sentiment: float
    ticker_sentiment: dict[str, float]
    source: str = "Sample Newswire"


FILLER = (
    Item("2026-03-16 08:15", "Apple opens developer beta of on-device live translation",
         "The beta adds offline translation for twelve languages across iPhone and Mac.",
         ("AAPL",), 0.18, {"AAPL": 0.21}),
    Item("2026-03-17 13:20", "Waymo expands driverless rides to two more U.S. cities",
         "Alphabet's self-driving unit says paid service starts in both metros this summer.",
         ("GOOGL",), 0.24, {"GOOGL": 0.27}, "Example Markets Desk"),
    Item("2026-03-18 09:10", "Analyst lifts Meta price target on ad pricing strength",
         "A sell-side note cites firmer ad prices on Reels and steady user growth.",
         ("META",), 0.31, {"META": 0.36}),
    Item("2026-03-19 14:40", "Tesla pushes over-the-air fix for seat-belt chime software",
         "The update covers about 12,000 vehicles; no injuries were reported.",
         ("TSLA",), -0.12, {"TSLA": -0.16}, "Example Markets Desk"),
    Item("2026-03-20 10:30", "Nvidia unveils new data-center networking switch",
         "The switch targets large training clusters and ships in the second half.",
         ("NVDA",), 0.27, {"NVDA": 0.3}),
    Item("2026-03-23 12:15", "Microsoft adds agent features to Office apps for business users",
         "Agents can now draft reports from shared files and meeting notes.",
         ("MSFT",), 0.2, {"MSFT": 0.22}),
    Item("2026-03-26 11:20", "Amazon opens robotics-heavy fulfillment center in Texas",
         "The site uses a new generation of warehouse robots for same-day delivery.",
         ("AMZN",), 0.12, {"AMZN": 0.14}, "Example Markets Desk"),
    Item("2026-03-30 15:10", "Apple supplier reports steady iPhone component orders",
         "The supplier said second-quarter orders were in line with its plan.",
         ("AAPL",), 0.08, {"AAPL": 0.1}),
    Item("2026-04-02 10:40", "Meta launches paid tier for its smart-glasses assistant",
         "The subscription adds longer memory and hands-free video calls.",
         ("META",), 0.16, {"META": 0.19}),
    Item("2026-04-06 09:45", "Tesla first-quarter deliveries come in slightly above consensus",
         "Deliveries beat the average analyst estimate by about two percent.",
         ("TSLA",), 0.19, {"TSLA": 0.23}, "Example Markets Desk"),
    Item("2026-04-07 13:05", "Alphabet faces new EU inquiry into search ad auctions",
         "Regulators asked advertisers for information about auction pricing.",
         ("GOOGL",), -0.28, {"GOOGL": -0.33}),
    Item("2026-04-08 11:35", "Nvidia and Microsoft expand cloud GPU partnership in Europe",
         "New clusters open in three European regions for enterprise customers.",
         ("NVDA", "MSFT"), 0.33, {"MSFT": 0.29, "NVDA": 0.35}),
    Item("2026-04-10 14:20", "Amazon Prime Video signs multi-year sports rights deal",
         "The deal adds a weekly live game to Prime Video from next season.",
         ("AMZN",), 0.21, {"AMZN": 0.24}, "Example Markets Desk"),
    Item("2026-04-14 12:30", "Microsoft patches actively exploited Windows flaw",
         "Administrators are urged to apply the fix; no customer data loss was reported.",
         ("MSFT",), -0.05, {"MSFT": -0.07}),
)  # fmt: skip


def story_items(facts: dict[str, Any]) -> list[Item]:
    note = facts["rotation_note_values"]
    x, m = note["xmag_ytd"], note["mags_ytd"]
    return [
        Item(
            DIGESTION_TIME,
            "Amazon flags cloud 'demand digestion' as AI customers pause capacity orders",
            "AWS told analysts that several large AI customers are absorbing capacity bought "
            "last year and have paused new orders for a quarter or two.",
            ("AMZN",),
            -0.41,
            {"AMZN": -0.52},
        ),
        Item(
            ROTATION_NOTE_TIME,
            f"Rotation watch: XMAG {x:+.1f}% YTD vs MAGS {m:+.1f}% "
            "as investors broaden beyond mega-caps",
            "The gap between the broad market ex-mega-caps and the equal-weight mega-cap "
            "basket is the widest this year.",
            ("XMAG", "MAGS"),
            0.10,
            {"MAGS": -0.04, "XMAG": 0.12},
            "Example Markets Desk",
        ),
        Item(
            CAPEX_TIME,
            "Microsoft raises fiscal 2026 AI capex guidance to $120 billion",
            "Microsoft lifted its AI capital spending plan, citing demand for cloud AI "
            "capacity; chip suppliers rallied on the news.",
            ("MSFT", "NVDA"),
            0.42,
            {"MSFT": 0.45, "NVDA": 0.55},
        ),
    ]


def news_rows(facts: dict[str, Any]) -> list[dict[str, str]]:
    for item in FILLER:
        text = f"{item.title} {item.summary}".lower()
        require(not any(w in text for w in FORBIDDEN_FILLER_WORDS), f"filler: {item.title}")
    items = sorted([*FILLER, *story_items(facts)], key=lambda it: it.ny_time)
    rows = []
    for number, item in enumerate(items, start=1):
        ts = pd.Timestamp(item.ny_time, tz=NY)
        news_id = f"sample-{number:04d}"
        rows.append(
            {
                "ts": iso(ts),
                "id": news_id,
                "title": item.title,
                "summary": item.summary,
                "symbols": " ".join(item.symbols),
                "source": item.source,
                "url": f"https://news.example.com/{ts:%Y/%m/%d}/{news_id}",
                "sentiment": str(round(item.sentiment, 4)),
                "ticker_sentiment": json.dumps(
                    item.ticker_sentiment, sort_keys=True, separators=(",", ":")
                ),
            }
        )
    return rows


# --- writing --------------------------------------------------------------------------------
def ticks_csv(ticks: pd.DataFrame) -> bytes:
    stamps = {ts: iso(ts) for ts in ticks["ts"].unique()}
    lines = [",".join(TICK_COLUMNS)]
    lines += [
        f"{stamps[ts]},{sym},{o:.4f},{h:.4f},{lo:.4f},{c:.4f},{v}"
        for ts, sym, o, h, lo, c, v in zip(*(ticks[col] for col in TICK_COLUMNS), strict=True)
    ]
    text = "\n".join(lines) + "\n"
    last = ticks[ticks["ts"] == ticks["ts"].max()].set_index("symbol")["close"]
    prices = {s: f"{last[s]:.4f}" for s in MAG7}
    text += "".join(row.format(**prices) + "\n" for row in BAD_ROWS)
    return text.encode()


def write_gzip(path: Path, data: bytes) -> None:
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)


def write_news(path: Path, rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(NEWS_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


def story_document(
    facts: dict[str, Any], ticks: pd.DataFrame, news: list[dict[str, str]]
) -> dict[str, Any]:
    def headline(word: str) -> dict[str, str]:
        row = next(r for r in news if word in r["title"])
        return {"id": row["id"], "ts": row["ts"], "title": row["title"]}

    return {
        "about": "Facts asserted by scripts/make_sample.py. Documentation only: tests recompute "
        "them from ticks.csv.gz and news.csv.",
        "seed": SEED,
        "window": {"first_session": FIRST_SESSION, "last_session": LAST_SESSION},
        "ytd_definition": "(close / year-end close - 1) * 100; spread = XMAG YTD - MAGS YTD (pp)",
        "year_end": {"ts": iso(anchor_ts()), "close": YEAR_END_CLOSE},
        **facts,
        "headlines": {
            "demand_digestion": headline("demand digestion"),
            "rotation_note": headline("Rotation watch"),
            "capex": headline("capex"),
        },
        "rows": {
            "ticks_clean": len(ticks),
            "ticks_bad": len(BAD_ROWS),
            "news": len(news),
        },
        "bad_rows": list(BAD_ROW_NOTES),
    }


def draw_chart(
    ticks: pd.DataFrame, news: list[dict[str, str]], facts: dict[str, Any], path: Path
) -> None:
    """Two panels on a trading-minute axis (no overnight gaps): YTD lines, then the spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ytd = ytd_table(ticks)
    spread = ytd["XMAG"] - ytd["MAGS"]
    x = np.arange(len(ytd))
    days = ytd.index.tz_convert(NY).normalize()
    day_starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])

    def at(ts: str) -> int:
        """Position of the bar that starts at (or first after) an ISO UTC time."""
        return int(ytd.index.searchsorted(pd.Timestamp(ts)))

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(13, 8), sharex=True, height_ratios=[1, 1], layout="constrained"
    )
    top.set_title("Sample data: the 2026 rotation story (1-minute bars, overnight gaps removed)")
    top.plot(x, ytd["XMAG"], color="tab:blue", lw=1.0, label="XMAG (broad market ex-mag7)")
    top.plot(x, ytd["MAGS"], color="tab:orange", lw=1.0, label="MAGS (equal-weight mag7)")
    top.axhline(0, color="0.6", lw=0.8)
    top.set_ylabel("YTD return, %")
    top.set_ylim(-2, 12.5)
    top.legend(loc="center right", fontsize=9)

    bottom.plot(x, spread, color="tab:green", lw=1.0, label="spread = XMAG YTD − MAGS YTD")
    bottom.axhline(SPREAD_THRESHOLD, color="tab:red", ls="--", lw=1, label="alert when < 8.0")
    bottom.axhline(8.5, color="tab:red", ls=":", lw=1, label="clears at ≥ 8.5")
    bottom.set_ylabel("spread, percentage points")
    bottom.set_ylim(7.0, 11.8)

    # The three story headlines: a line through both panels, a label in the top panel's gap.
    story = [  # (word in the title, label, label on the right of the line?)
        ("demand digestion", "AMZN flags\n'demand digestion'", False),
        ("Rotation watch", "rotation note", True),
        ("capex", "MSFT raises\nAI capex", True),
    ]
    for word, label, right in story:
        row = next(r for r in news if word in r["title"])
        pos = at(row["ts"])
        for ax in (top, bottom):
            ax.axvline(pos, color="0.35", lw=0.9, ls="-.", zorder=1)
        when = pd.Timestamp(row["ts"]).tz_convert(NY)
        top.text(
            pos + (12 if right else -12),
            6.2,
            f"{label}\n{when:%b %d %H:%M} NY",
            fontsize=9,
            va="center",
            ha="left" if right else "right",
        )
        bottom.plot([pos], [spread.iloc[pos]], "v", color="0.2", ms=7, zorder=3)
    others = [at(r["ts"]) for r in news if not any(w in r["title"] for w, _, _ in story)]
    others = [p for p in others if p < len(x)]
    bottom.plot(others, [7.12] * len(others), "|", color="0.45", ms=10, mew=1.5,
                label="other headlines")  # fmt: skip

    peak = at(facts["peak"]["ts"])
    top.plot([peak, peak], [ytd["XMAG"].iloc[peak], ytd["MAGS"].iloc[peak]], "o", color="0.2")
    top.annotate(
        f"peak: XMAG {ytd['XMAG'].iloc[peak]:+.1f}%, MAGS {ytd['MAGS'].iloc[peak]:+.1f}%",
        (peak, ytd["XMAG"].iloc[peak]),
        xytext=(10, 22),
        textcoords="offset points",
        fontsize=9,
        arrowprops={"arrowstyle": "-", "color": "0.3"},
    )
    marks = [
        (peak, f"peak {spread.iloc[peak]:.1f} pp", (12, 4), "0.2"),
        (at(facts["compression"]["first_below_ts"]), "first < 8.0", (-150, -26), "tab:red"),
        (at(facts["recovery"]["first_ts"]), "back above 8.6", (-150, 16), "tab:green"),
    ]
    for pos, text, offset, color in marks:
        when = ytd.index[pos].tz_convert(NY)
        bottom.plot([pos], [spread.iloc[pos]], "o", color=color, ms=6, zorder=4)
        bottom.annotate(
            f"{text}\n{when:%b %d %H:%M} NY",
            (pos, spread.iloc[pos]),
            xytext=offset,
            textcoords="offset points",
            fontsize=9,
            arrowprops={"arrowstyle": "->", "color": "0.3"},
        )
    bottom.legend(loc="upper right", fontsize=9)

    for ax in (top, bottom):
        ax.grid(axis="y", color="0.9")
        ax.set_xticks(day_starts, minor=True)
        ax.grid(axis="x", which="minor", color="0.88", lw=0.6)
        ax.tick_params(axis="x", which="major", length=0)
    mids = day_starts + 195
    bottom.set_xticks(mids, [f"{d:%b}\n{d:%d}" for d in days[day_starts]], fontsize=8)
    bottom.set_xlim(0, len(x))
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


# --- main -----------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "sample", help="output dir")
    parser.add_argument("--chart", type=Path, default=REPO / "docs" / "sample-story.png")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)

    minutes = trading_minutes()
    ticks = build_ticks(minutes)
    facts = check_story(ticks, minutes)
    news = news_rows(facts)

    args.out.mkdir(parents=True, exist_ok=True)
    write_gzip(args.out / "ticks.csv.gz", ticks_csv(ticks))
    write_news(args.out / "news.csv", news)
    story = story_document(facts, ticks, news)
    (args.out / "story.json").write_text(json.dumps(story, indent=2) + "\n", encoding="utf-8")
    if not args.no_chart:
        args.chart.parent.mkdir(parents=True, exist_ok=True)
        draw_chart(ticks, news, facts, args.chart)
    print(
        f"wrote {args.out}: {len(ticks)} clean bars + {len(BAD_ROWS)} bad rows, "
        f"{len(news)} headlines; peak {facts['peak']['spread']:.2f} pp at {facts['peak']['ts']}, "
        f"first < {SPREAD_THRESHOLD} at {facts['compression']['first_below_ts']}, "
        f"recovered > {RECOVERY_LEVEL} at {facts['recovery']['first_ts']}"
    )


if __name__ == "__main__":
    main()
