"""The bundled sample data tells the story the example rules rely on.

Everything here is recomputed from `data/sample/ticks.csv.gz` and `data/sample/news.csv` with
pandas; `story.json` is documentation and is deliberately not read. The last test regenerates
the files with `scripts/make_sample.py` and checks they come out byte for byte the same.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from datetime import date, time
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from pandas.errors import Pandas4Warning

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
NY = "America/New_York"

MAG7 = ["AAPL", "MSFT", "GOOGL", "AMZN", "META", "NVDA", "TSLA"]
SYMBOLS = {"XMAG", "MAGS", *MAG7}
TICK_COLUMNS = ["ts", "symbol", "open", "high", "low", "close", "volume"]
NEWS_COLUMNS = [
    "ts",
    "id",
    "title",
    "summary",
    "symbols",
    "source",
    "url",
    "sentiment",
    "ticker_sentiment",
]
YEAR_END_BAR = pd.Timestamp("2025-12-31T20:59:00Z")  # 15:59 New York, last bar of 2025
PEAK_DAY = date(2026, 3, 25)
COMPRESSION_DAY = date(2026, 4, 9)
LAST_DAY = date(2026, 4, 14)
WINDOW_MINUTES = 30
# The story's words, plus what the shipped headline rules (rules/headlines.yaml) match on.
FORBIDDEN_IN_FILLER = (
    "capex",
    "capital expenditure",
    "capital spending",
    "guidance",
    "demand digestion",
    "digest",
    "rotation",
    "broaden",
)


# --- loading --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """Every row of ticks.csv.gz as text, in file order."""
    return pd.read_csv(SAMPLE / "ticks.csv.gz", dtype=str, keep_default_na=False)


def is_bad(raw: pd.DataFrame) -> pd.Series:
    close = pd.to_numeric(raw["close"], errors="coerce")
    ts = pd.to_datetime(raw["ts"], utc=True)
    return close.isna() | (close <= 0) | ~raw["symbol"].isin(SYMBOLS) | (ts.dt.year > 2026)


@pytest.fixture(scope="module")
def clean(raw: pd.DataFrame) -> pd.DataFrame:
    df = raw[~is_bad(raw)].copy()
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    for col in ("open", "high", "low", "close"):
        df[col] = df[col].astype(float)
    df["volume"] = df["volume"].astype(int)
    return df


@pytest.fixture(scope="module")
def closes(clean: pd.DataFrame) -> pd.DataFrame:
    """Window closes: one row per bar start (UTC), one column per symbol."""
    window = clean[clean["ts"] > YEAR_END_BAR]
    return window.pivot(index="ts", columns="symbol", values="close")


@pytest.fixture(scope="module")
def ytd(clean: pd.DataFrame, closes: pd.DataFrame) -> pd.DataFrame:
    anchor = clean[clean["ts"] == YEAR_END_BAR].set_index("symbol")["close"]
    return (closes / anchor - 1) * 100


@pytest.fixture(scope="module")
def spread(ytd: pd.DataFrame) -> pd.Series:
    return ytd["XMAG"] - ytd["MAGS"]


@pytest.fixture(scope="module")
def news() -> pd.DataFrame:
    df = pd.read_csv(SAMPLE / "news.csv", dtype=str, keep_default_na=False)
    df["when"] = pd.to_datetime(df["ts"], utc=True)
    return df


def ny_date(ts: pd.Timestamp) -> date:
    return ts.tz_convert(NY).date()


def headline_time(news: pd.DataFrame, *words: str) -> pd.Timestamp:
    hits = news[news["title"].map(lambda t: all(w in t for w in words))]
    assert len(hits) == 1, f"expected one headline with {words}, got {len(hits)}"
    return hits["when"].iloc[0]


def runs_from(mask: np.ndarray, start: int) -> int:
    rest = mask[start:]
    return len(rest) if rest.all() else int(rest.argmin())


def move_after(close: pd.Series, at: pd.Timestamp) -> pd.Series:
    """% change of each close in the 30 minutes after `at` vs the last close before it."""
    ref = close[close.index < at].iloc[-1]
    after = close[(close.index >= at) & (close.index < at + pd.Timedelta(minutes=WINDOW_MINUTES))]
    return (after / ref - 1) * 100


def max_move_within(close: pd.Series, minutes: int) -> pd.Series:
    """Per bar: largest |% change| against any bar starting at most `minutes` earlier."""
    values = close.to_numpy()
    t = np.asarray((close.index - close.index[0]) / pd.Timedelta(minutes=1))
    best = np.zeros(len(values))
    for lag in range(1, minutes + 1):
        move = np.abs(values[lag:] / values[:-lag] - 1) * 100
        best[lag:] = np.maximum(best[lag:], np.where(t[lag:] - t[:-lag] <= minutes, move, 0))
    return pd.Series(best, index=close.index)


# --- the file itself ------------------------------------------------------------------------
def test_ticks_layout(raw: pd.DataFrame, clean: pd.DataFrame) -> None:
    assert list(raw.columns) == TICK_COLUMNS
    assert raw["ts"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:00Z").all()
    good = raw[~is_bad(raw)]
    for col in ("open", "high", "low", "close"):
        assert good[col].str.fullmatch(r"\d+\.\d{4}").all(), col
    assert good["volume"].str.fullmatch(r"\d+").all()
    assert clean["ts"].is_monotonic_increasing
    assert clean.sort_values(["ts", "symbol"], kind="stable").index.equals(clean.index)
    assert not clean.duplicated(["ts", "symbol"]).any()
    assert (clean["low"] <= clean[["open", "close"]].min(axis=1)).all()
    assert (clean["high"] >= clean[["open", "close"]].max(axis=1)).all()
    assert (clean["volume"] > 0).all()


def test_bars_follow_the_nyse_calendar(clean: pd.DataFrame, closes: pd.DataFrame) -> None:
    anchors = clean[clean["ts"] == YEAR_END_BAR]
    assert set(anchors["symbol"]) == SYMBOLS and len(anchors) == len(SYMBOLS)
    assert (clean["ts"] >= YEAR_END_BAR).all()

    with warnings.catch_warnings():  # exchange_calendars 4.13 trips pandas 3.1 deprecations
        warnings.simplefilter("ignore", Pandas4Warning)
        cal = xcals.get_calendar("XNYS", start="2026-01-02", end="2026-05-29")
        sessions = cal.sessions_in_range("2026-03-16", "2026-04-14")
        parts = [cal.session_minutes(s) for s in sessions]
    expected = parts[0].append(parts[1:])
    assert list(closes.index) == list(expected)
    assert closes.notna().all().all() and set(closes.columns) == SYMBOLS
    days = pd.Series(closes.index.tz_convert(NY).date)
    assert (days.value_counts() == 390).all()
    assert date(2026, 4, 3) not in set(days)  # Good Friday
    first_bar = closes.index[days == date(2026, 3, 16)][0].tz_convert(NY)
    assert first_bar.time() == time(9, 30)


def test_bad_rows_are_the_last_four(raw: pd.DataFrame) -> None:
    bad = is_bad(raw)
    assert bad.sum() == 4
    assert bad.iloc[-4:].all()
    tail = raw.iloc[-4:]
    assert (tail["close"].str.lower() == "nan").sum() == 1
    assert (pd.to_numeric(tail["close"], errors="coerce") == -1.0).sum() == 1
    assert (tail["symbol"] == "ZZZZ").sum() == 1
    assert (tail["ts"] == "2099-01-01T14:30:00Z").sum() == 1
    # each bad row has exactly one defect
    assert (
        tail.apply(
            lambda r: sum(
                [
                    r["close"].lower() == "nan",
                    r["close"] == "-1.0",
                    r["symbol"] == "ZZZZ",
                    r["ts"].startswith("2099"),
                ]
            ),
            axis=1,
        )
        == 1
    ).all()


def test_mags_is_the_equal_weight_basket(ytd: pd.DataFrame) -> None:
    tracking = (ytd["MAGS"] - ytd[MAG7].mean(axis=1)).abs()
    assert tracking.max() < 0.1


# --- the story ------------------------------------------------------------------------------
def test_early_spread_sits_around_ten(spread: pd.Series) -> None:
    days = sorted(set(spread.index.tz_convert(NY).date))
    first_week = spread[spread.index.tz_convert(NY).date <= days[4]]
    assert first_week.between(9.5, 11.0).all()


def test_peak(ytd: pd.DataFrame, spread: pd.Series) -> None:
    peak = spread.idxmax()
    assert ny_date(peak) == PEAK_DAY
    assert ytd.at[peak, "XMAG"] == pytest.approx(10.7, abs=0.3)
    assert ytd.at[peak, "MAGS"] == pytest.approx(-0.5, abs=0.3)
    assert spread[peak] == pytest.approx(11.2, abs=0.3)


def test_compression_fires_a_15_minute_rule_on_april_9(spread: pd.Series) -> None:
    below = (spread < 8.0).to_numpy()
    first = int(below.argmax())
    first_ts = spread.index[first]
    assert below[first]
    assert ny_date(first_ts) == COMPRESSION_DAY
    assert time(12, 0) <= first_ts.tz_convert(NY).time() < time(14, 30)  # early afternoon
    assert (spread[spread.index < first_ts] >= 8.0).all()
    assert runs_from(below, first) >= 45


def test_spread_recovers_past_the_clear_level(spread: pd.Series) -> None:
    below = (spread < 8.0).to_numpy()
    above = (spread > 8.6).to_numpy()
    first = int(below.argmax())
    runs = [runs_from(above, i) for i in range(first, len(above)) if above[i]]
    assert runs and max(runs) >= 30
    assert ny_date(spread.index[-1]) == LAST_DAY


def test_capex_headline_moves_nvda(news: pd.DataFrame, closes: pd.DataFrame) -> None:
    at = headline_time(news, "raises", "capex")
    assert at == pd.Timestamp("2026-04-01 10:05", tz=NY)
    assert move_after(closes["NVDA"], at).max() >= 4.0


def test_demand_digestion_headline_sinks_amzn(news: pd.DataFrame, closes: pd.DataFrame) -> None:
    at = headline_time(news, "demand digestion")
    assert at == pd.Timestamp("2026-03-24 11:00", tz=NY)
    assert move_after(closes["AMZN"], at).min() <= -3.5


def test_no_other_big_30_minute_moves(news: pd.DataFrame, closes: pd.DataFrame) -> None:
    skip = {
        "NVDA": headline_time(news, "raises", "capex"),
        "AMZN": headline_time(news, "demand digestion"),
    }
    for symbol in MAG7:
        moves = max_move_within(closes[symbol], WINDOW_MINUTES)
        if symbol in skip:
            at = skip[symbol]
            moves = moves[(moves.index < at) | (moves.index > at + pd.Timedelta(minutes=60))]
        assert moves.max() <= 2.5, f"{symbol} moves {moves.max():.2f}% at {moves.idxmax()}"


# --- news -----------------------------------------------------------------------------------
def test_news_layout(news: pd.DataFrame) -> None:
    assert list(news.columns) == [*NEWS_COLUMNS, "when"]  # "when" is added by the fixture
    assert news["ts"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert news["when"].is_monotonic_increasing
    assert news["id"].is_unique and news["id"].str.fullmatch(r"sample-\d{4}").all()
    sentiment = news["sentiment"].astype(float)
    assert sentiment.between(-1, 1).all()
    for row in news.itertuples():
        scores = json.loads(row.ticker_sentiment)
        assert isinstance(scores, dict)
        assert all(-1 <= v <= 1 for v in scores.values())
        assert set(scores) <= set(row.symbols.split())
        assert set(row.symbols.split()) <= SYMBOLS


def test_story_headlines(news: pd.DataFrame, ytd: pd.DataFrame) -> None:
    def row(*words: str) -> pd.Series:
        return news[news["title"].map(lambda t: all(w in t for w in words))].iloc[0]

    capex = row("raises", "capex")
    assert set(capex["symbols"].split()) == {"MSFT", "NVDA"}
    assert float(capex["sentiment"]) >= 0.35  # Bullish
    digestion = row("demand digestion")
    assert digestion["symbols"] == "AMZN"
    assert float(digestion["sentiment"]) <= -0.35  # Bearish

    note = row("Rotation")
    at = note["when"]
    assert ny_date(at) == PEAK_DAY
    assert float(note["sentiment"]) == 0.10
    bar = ytd[ytd.index < at].iloc[-1]  # the last bar that had closed when the note ran
    x, m = re.search(r"XMAG ([+-]\d+\.\d)% YTD vs MAGS ([+-]\d+\.\d)%", note["title"]).groups()
    assert x == f"{bar['XMAG']:+.1f}" and m == f"{bar['MAGS']:+.1f}"


def test_filler_headlines_stay_out_of_the_story(news: pd.DataFrame) -> None:
    story = news["title"].str.contains("capex|demand digestion|Rotation", regex=True)
    filler = news[~story]
    assert 10 <= len(filler) <= 15
    text = (filler["title"] + " " + filler["summary"]).str.lower()
    for word in FORBIDDEN_IN_FILLER:
        assert not text.str.contains(word, regex=False).any(), word
    assert filler["symbols"].str.split().map(lambda s: set(s) <= set(MAG7)).all()


# --- reproducibility ------------------------------------------------------------------------
def test_script_reproduces_the_files_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sample.py"), "--out", str(tmp_path),
         "--no-chart"],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    for name in ("ticks.csv.gz", "news.csv", "story.json"):
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
