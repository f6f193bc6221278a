"""The expression language: parsing, functions, windows against pandas, None, and every refusal."""

from __future__ import annotations

import ast
import datetime as dt
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daemon.events import Tick, dt_to_ms
from daemon.rules import expr as expr_module
from daemon.rules.expr import MAX_LENGTH, ExprError, compile_expr
from daemon.rules.market import Market

#: 2026-04-09 10:00 in New York (EDT).
T0 = dt_to_ms(datetime(2026, 4, 9, 14, 0, tzinfo=UTC))
JAN1 = dt.date(2026, 1, 1)
MIN = 60_000


def market(**prices: float) -> Market:
    m = Market()
    for sym, price in prices.items():
        m.record(Tick(sym, T0, price))
    return m


def value(text: str, m: Market | None = None, now: int = T0) -> bool | float | None:
    return compile_expr(text, condition=False).instance().evaluate(m or Market(), now)


def feed(text: str, ts: list[int], xs: list[float], sym: str = "X") -> np.ndarray:
    """Evaluate `text` after each tick of `sym`; None becomes NaN."""
    state = compile_expr(text, condition=False).instance()
    m = Market()
    out = []
    for t, x in zip(ts, xs, strict=True):
        m.record(Tick(sym, t, x))
        v = state.evaluate(m, t)
        out.append(math.nan if v is None else v)
    return np.array(out, dtype=float)


def random_series(seed: int, n: int = 300, gap_s: tuple[int, int] = (30, 120)) -> pd.Series:
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.integers(gap_s[0] * 1000, gap_s[1] * 1000, n))
    xs = 100 + np.cumsum(rng.normal(0, 0.5, n))
    return pd.Series(xs, index=pd.to_datetime(ts, unit="ms"))


def ms_list(s: pd.Series) -> list[int]:
    return [int(t.value // 1_000_000) for t in s.index]


def close(got: np.ndarray, want: pd.Series | np.ndarray, rtol: float = 1e-9) -> None:
    np.testing.assert_allclose(got, np.asarray(want, dtype=float), rtol=rtol, atol=1e-9)


# --- parsing and precedence -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3 == 7", True),
        ("(1 + 2) * 3 == 9", True),
        ("10 - 2 * 3 + 1 == 5", True),
        ("2 - 3 - 4 == -5", True),
        ("8 / 4 / 2 == 1", True),
        ("-2 * 3 == -6", True),
        ("2 * -3 == -6", True),
        ("- -2 == 2", True),
        ("+2 == 2", True),
        (".5 + 0.5 == 1", True),
        ("1 == 1.0", True),
        ("1 != 2", True),
        ("1 <= 1", True),
        ("1 >= 2", False),
        ("1 < 2 < 3", True),
        ("1 < 3 < 2", False),
        ("3 > 2 > 1", True),
        ("not 1 > 2", True),
        ("not 1 > 2 and 1 > 2", False),  # (not F) and F
        ("2 > 1 or 2 > 1 and 1 > 2", True),  # T or (T and F)
        ("1 > 2 and 1 > 2 or 2 > 1", True),  # (F and F) or T
        ("not 2 > 1 or 2 > 1", True),  # (not T) or T
        ("not (2 > 1 or 2 > 1)", False),
        ("not not 2 > 1", True),
        ("(((1 + 1))) == 2", True),
    ],
)
def test_precedence_and_associativity(text: str, expected: bool) -> None:
    e = compile_expr(text)
    assert e.returns_bool
    assert e.instance().evaluate(Market(), T0) is expected


def test_numeric_expression_when_not_a_condition() -> None:
    e = compile_expr("1 + 2 * 3", condition=False)
    assert not e.returns_bool
    assert e.instance().evaluate(Market(), T0) == 7


def test_the_briefs_example_compiles_and_reports_what_it_reads() -> None:
    e = compile_expr(
        "ytd_return(XMAG) - ytd_return(MAGS) < 8 and zscore(spread(XMAG, MAGS), 20d) < -2 "
        'and return_since("BRK.B", "2026-03-02") > 0 and price(NVDA) > 0'
    )
    assert e.symbols == {"XMAG", "MAGS", "BRK.B", "NVDA"}
    assert dict(e.anchors) == {
        "XMAG": {"ytd"},
        "MAGS": {"ytd"},
        "BRK.B": {dt.date(2026, 3, 2)},
    }
    assert e.value_names[:4] == ("value", "threshold", "value2", "threshold2")
    m = Market()
    e.track(m)
    assert m.ytd_symbols == {"XMAG", "MAGS"}
    assert m.anchor_days == {"BRK.B": {dt.date(2026, 3, 2)}}


# --- functions against hand-computed values -----------------------------------------------------


def test_quote_functions() -> None:
    m = Market()
    m.record(Tick("X", T0, 10.0, bid=9.5, ask=10.5))
    m.record(Tick("Y", T0, 20.0))
    assert value("price(X)", m) == 10.0
    assert value("bid(X)", m) == 9.5
    assert value("ask(X)", m) == 10.5
    assert value("mid(X)", m) == 10.0
    assert value("mid(Y)", m) == 20.0  # no bid/ask: the last price
    assert value("bid(Y)", m) is None
    assert value('price("X")', m) == 10.0


def test_pair_and_pure_functions() -> None:
    m = market(A=30.0, B=12.0)
    assert value("spread(A, B)", m) == 18.0
    assert value("ratio(A, B)", m) == 2.5
    assert value("abs(price(B) - price(A))", m) == 18.0
    assert value("min(price(A), price(B), 20)", m) == 12.0
    assert value("max(price(A), price(B), 20)", m) == 30.0
    assert value("min(3, -1)", m) == -1


def test_ytd_return_and_return_since() -> None:
    m = market(XMAG=112.0, MAGS=45.0)
    m.anchors.prices[("XMAG", JAN1)] = 100.0
    m.anchors.prices[("MAGS", JAN1)] = 50.0
    m.anchors.prices[("XMAG", dt.date(2026, 3, 2))] = 80.0
    assert value("ytd_return(XMAG)", m) == pytest.approx(12.0)
    assert value("ytd_return(MAGS)", m) == pytest.approx(-10.0)
    assert value("ytd_return(XMAG) - ytd_return(MAGS)", m) == pytest.approx(22.0)
    assert value('return_since(XMAG, "2026-03-02")', m) == pytest.approx(40.0)


def test_ytd_year_is_new_yorks() -> None:
    # 2026-01-01 03:00 UTC is still 2025-12-31 in New York: the 2025 anchor applies.
    now = dt_to_ms(datetime(2026, 1, 1, 3, 0, tzinfo=UTC))
    m = Market()
    m.record(Tick("X", now, 110.0))
    m.anchors.prices[("X", dt.date(2025, 1, 1))] = 100.0
    m.anchors.prices[("X", JAN1)] = 200.0
    assert value("ytd_return(X)", m, now) == pytest.approx(10.0)
    later = dt_to_ms(datetime(2026, 1, 1, 6, 0, tzinfo=UTC))
    assert value("ytd_return(X)", m, later) == pytest.approx(-45.0)


def test_ytd_anchor_tracked_by_the_market() -> None:
    e = compile_expr("ytd_return(X) > 5")
    m = Market()
    e.track(m)
    state = e.instance()
    dec = dt_to_ms(datetime(2025, 12, 31, 20, 0, tzinfo=UTC))
    jan = dt_to_ms(datetime(2026, 1, 2, 15, 0, tzinfo=UTC))
    m.record(Tick("X", dec, 100.0))
    m.record(Tick("X", jan, 106.0))
    assert state.evaluate(m, jan) is True
    assert state.values() == {"value": pytest.approx(6.0), "threshold": 5.0}


def test_values_are_both_sides_of_each_comparison() -> None:
    m = market(A=10.0, B=4.0)
    state = compile_expr("price(A) - price(B) < 8 and ratio(A, B) > 3 or 1 > 2").instance()
    assert state.evaluate(m, T0) is False
    assert state.values() == {
        "value": 6.0,
        "threshold": 8.0,
        "value2": 2.5,
        "threshold2": 3.0,
        "value3": 1.0,
        "threshold3": 2.0,
    }


# --- None: not enough data ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "price(NOPE) > 1",
        "ytd_return(X) > 1",  # no anchor
        'return_since(X, "2026-03-02") > 1',
        "price(X) / 0 > 1",
        "1 / (price(X) - price(X)) > 0",
        "ratio(X, ZERO) > 1",
        "spread(X, NOPE) > 1",
        "abs(price(NOPE)) > 1",
        "-price(NOPE) > 1",
        "min(price(X), price(NOPE)) > 1",
        "sma(price(X), 1h) > 1",  # one sample: window not filled
        "not price(NOPE) > 1",
        "price(NOPE) > 1 and 2 > 1",
        "price(NOPE) > 1 or 1 > 2",
        "999999999999999 * 999999999999999 * 999999999999999 * 999999999999999 * "
        "999999999999999 * 999999999999999 * 999999999999999 * 999999999999999 * "
        "999999999999999 * 999999999999999 * 999999999999999 * 999999999999999 * "
        "999999999999999 * 999999999999999 * 999999999999999 * 999999999999999 * "
        "999999999999999 * 999999999999999 * 999999999999999 * 999999999999999 * "
        "999999999999999 * 999999999999999 > 1",  # overflows to inf: no number
    ],
)
def test_none_propagates(text: str) -> None:
    assert compile_expr(text).instance().evaluate(market(X=5.0, ZERO=0.0), T0) is None


def test_three_valued_logic() -> None:
    m = market(X=5.0)
    assert value("price(NOPE) > 1 and 1 > 2", m) is False
    assert value("price(NOPE) > 1 or 2 > 1", m) is True
    assert value("price(NOPE) > 1 < 2", m) is None
    assert value("1 > 2 < price(NOPE)", m) is False


def test_window_skips_missing_samples() -> None:
    """A None argument is not sampled: sma counts only the evaluations that had a value."""
    state = compile_expr("sma(ratio(X, Y), 1h)", condition=False).instance()
    m = Market()
    got = []
    for i in range(8):
        t = T0 + i * MIN
        m.record(Tick("X", t, 10.0 * (i + 1)))
        if i % 2 == 0:
            m.record(Tick("Y", t, 10.0))
        elif i == 1:
            m.quotes.pop("Y")
        got.append(state.evaluate(m, t))
    # Y is missing only at i = 1; i = 3, 5, 7 reuse Y = 10 from the tick before.
    assert got[:5] == [None] * 5
    assert got[5] == pytest.approx((1 + 3 + 4 + 5 + 6) / 5)
    assert got[7] == pytest.approx((1 + 3 + 4 + 5 + 6 + 7 + 8) / 7)
    assert state.evaluate(m, T0 + 9 * MIN) == pytest.approx(42 / 8)  # no new tick: 80 / 10 again


def test_zscore_of_a_flat_series_is_none() -> None:
    ts = [T0 + i * MIN for i in range(20)]
    assert np.isnan(feed("zscore(price(X), 1h)", ts, [101.3] * 20)).all()
    assert (feed("stdev(price(X), 1h)", ts, [101.3] * 20)[4:] == 0).all()


# --- window functions against pandas, sample by sample ----------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_rolling_stats_match_pandas(seed: int) -> None:
    s = random_series(seed)
    ts, xs = ms_list(s), list(s.to_numpy())
    r = s.rolling("30min", min_periods=5)
    close(feed("sma(price(X), 30m)", ts, xs), r.mean())
    close(feed("stdev(price(X), 30m)", ts, xs), r.std())
    close(feed("zscore(price(X), 30m)", ts, xs), (s - r.mean()) / r.std())
    close(feed("min(price(X), 30m)", ts, xs), r.min())
    close(feed("max(price(X), 30m)", ts, xs), r.max())
    r10 = s.rolling("30min", min_periods=10)
    close(feed("zscore(price(X), 30m, 10)", ts, xs), (s - r10.mean()) / r10.std())
    close(feed("sma(price(X), 30m, 1)", ts, xs), s.rolling("30min").mean())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ema_matches_pandas_time_weighted_ewm(seed: int) -> None:
    s = random_series(seed)
    half_life = pd.Timedelta(milliseconds=30 * MIN / 2 * math.log(2))
    want = s.ewm(halflife=half_life, times=s.index, min_periods=5).mean()
    close(feed("ema(price(X), 30m)", ms_list(s), list(s.to_numpy())), want)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pct_change_matches_numpy(seed: int) -> None:
    s = random_series(seed)
    ts, xs = np.array(ms_list(s)), s.to_numpy()
    window = 30 * MIN
    want = np.full(len(xs), np.nan)
    for i in range(len(xs)):
        j = np.searchsorted(ts, ts[i] - window, side="right") - 1  # last at or before
        if j >= 0:
            want[i] = (xs[i] / xs[j] - 1) * 100
    close(feed("pct_change(price(X), 30m)", list(ts), list(xs)), want)


@pytest.mark.parametrize("seed", [7, 8])
def test_zscore_of_a_spread_matches_pandas(seed: int) -> None:
    a, b = random_series(seed), random_series(seed + 100)
    b.index = a.index
    state = compile_expr("zscore(spread(A, B), 1h)", condition=False).instance()
    m, got = Market(), []
    for t, pa, pb in zip(ms_list(a), a.to_numpy(), b.to_numpy(), strict=True):
        m.record(Tick("A", t, pa))
        m.record(Tick("B", t, pb))
        v = state.evaluate(m, t)
        got.append(math.nan if v is None else v)
    spread = a - b
    r = spread.rolling("1h", min_periods=5)
    close(np.array(got), (spread - r.mean()) / r.std())


def test_long_stream_stays_accurate() -> None:
    """Thousands of updates (running sums re-based along the way) still match pandas."""
    s = random_series(42, n=6000, gap_s=(2, 5))
    ts, xs = ms_list(s), list(s.to_numpy())
    r = s.rolling("30min", min_periods=5)
    close(feed("stdev(price(X), 30m)", ts, xs), r.std(), rtol=1e-7)
    close(feed("zscore(price(X), 30m)", ts, xs), (s - r.mean()) / r.std(), rtol=1e-7)


def test_pct_change_waits_for_history_and_skips_gaps() -> None:
    ts = [T0, T0 + MIN, T0 + 60 * MIN, T0 + 61 * MIN, T0 + 71 * MIN]
    got = feed("pct_change(price(X), 10m)", ts, [100.0, 101.0, 110.0, 111.0, 99.0])
    assert np.isnan(got[:2]).all()  # history shorter than the window
    assert got[2] == 0.0  # 59 minutes of gap: measured from the oldest sample inside (itself)
    assert got[3] == pytest.approx((111 / 110 - 1) * 100)
    assert got[4] == pytest.approx((99 / 111 - 1) * 100)  # 61m is the last at or before 61m


def test_pct_change_of_a_negative_reference_keeps_direction() -> None:
    state = compile_expr("pct_change(spread(A, B), 10m)", condition=False).instance()
    m = Market()
    for t, a in ((T0, 8.0), (T0 + 10 * MIN, 9.0)):
        m.record(Tick("A", t, a))
        m.record(Tick("B", t, 10.0))
        v = state.evaluate(m, t)
    assert v == pytest.approx(50.0)  # -2 → -1 is up 50%


def test_samples_in_one_bucket_coalesce() -> None:
    # window 1000s: buckets of 1s; the tick at +0.5s replaces the one at +0s
    ts = [T0, T0 + 500, T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000]
    got = feed("sma(price(X), 1000s)", ts, [10.0, 20.0, 1.0, 2.0, 3.0, 4.0])
    assert got[-1] == pytest.approx((20 + 1 + 2 + 3 + 4) / 5)


def test_buffers_stay_bounded() -> None:
    state = compile_expr("zscore(price(X), 1m) > 2 or ema(price(X), 1m) > 0").instance()
    m = Market()
    rng = np.random.default_rng(0)
    for i in range(20_000):
        t = T0 + i * 10
        m.record(Tick("X", t, 100 + float(rng.normal())))
        state.evaluate(m, t)
    (buf,) = state._bufs
    assert len(buf.t) <= 1001
    assert len(buf.x) == len(buf.t)


def test_separate_instances_keep_separate_state() -> None:
    e = compile_expr("sma(price(X), 1h)", condition=False)
    one, two = e.instance(), e.instance()
    m1, m2 = Market(), Market()
    for i in range(5):
        t = T0 + i * MIN
        m1.record(Tick("X", t, 10.0))
        m2.record(Tick("X", t, 20.0 + i))
        got1, got2 = one.evaluate(m1, t), two.evaluate(m2, t)
    assert got1 == 10.0
    assert got2 == pytest.approx((20 + 21 + 22 + 23 + 24) / 5)
    assert e.instance().evaluate(m1, T0 + 5 * MIN) is None  # a fresh instance starts empty


def test_each_call_site_has_its_own_window() -> None:
    ts = [T0 + i * MIN for i in range(6)]
    xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    got = feed("sma(price(X), 1h) - sma(price(X), 3m, 1)", ts, xs)
    assert got[-1] == pytest.approx(21 / 6 - (4 + 5 + 6) / 3)  # (2m, 5m] holds 3m, 4m, 5m


# --- refusals: message and column ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("", "empty expression", 1),
        ("price(XMAG).__class__ > 1", "attribute access", 12),
        ("BRK.B > 1", 'dotted symbols must be quoted: write "BRK.B"', 4),
        ("price(XMAG)[0] > 1", "subscripts", 12),
        ('price(X) > "abc"', 'got the quoted text "abc"', 12),
        ("zcore(price(X), 20d) < -2", "unknown function 'zcore'; did you mean 'zscore'?", 1),
        ('__import__("os") > 1', "unknown function '__import__'", 1),
        ("foo > 1", "unknown name 'foo'", 1),
        ("price > 1", "'price' is a function; call it: price(SYM)", 1),
        ("price(XMAG, MAGS) > 1", "price() takes 1 argument, got 2: price(SYM)", 1),
        ("1 < spread(A)", "spread() takes 2 arguments, got 1", 5),
        ("sma(price(X)) > 1", "sma() takes 2 to 3 arguments, got 1", 1),
        ("sma(price(X), 20) > 1", "needs a window such as 20d or 30m as argument 2", 15),
        ("zscore(price(X), 20d, 1) < 2", "min_samples must be a whole number from 2", 23),
        ("sma(price(X), 0s) > 1", "window 0s must be longer than 0", 15),
        ("price(5) > 1", "price() needs a symbol as argument 1, got a number", 7),
        ("ratio(A, 2 > 1) > 1", "ratio() needs a symbol as argument 2, got a condition", 10),
        ("XMAG > 5", "'>' needs a number, got the symbol XMAG (write price(XMAG)", 1),
        ("abs(XMAG) > 5", "abs() needs a number, got the symbol XMAG", 5),
        ("20d > 5", "'>' needs a number, got the duration 20d", 1),
        ("price(X) + 5m > 5", "'+' needs a number, got the duration 5m", 12),
        ("price(X) ** 2 > 1", "'**' (power) is not allowed", 10),
        ("price(X) = 5", "compare with ==", 10),
        ("price(X) > 1 && 2 > 1", "write 'and'", 14),
        ("price(X) > 1 AND 2 > 1", "write 'and' in lower case", 14),
        ("! price(X) > 1", "write 'not'", 1),
        ("price(X) > 1 and 5", "'and' needs a condition", 18),
        ("not price(X)", "'not' needs a condition", 5),
        ("1 + (2 > 1) > 0", "'+' needs a number, got a condition", 6),
        ("price(X) + 1", "a condition must compare something, e.g. price(X) + 1 < 8", 13),
        ("XMAG", "a condition must compare something, got the symbol XMAG", 5),
        ("(price(X) > 1", "missing ')' for the '(' at column 1", 14),
        ("price(X) > 1)", "unmatched ')'", 13),
        ("price(X) >", "unexpected end", 11),
        ("price(X) > > 1", "unexpected '>'", 12),
        ("price(X 1) > 1", "expected ',' or ')' in price(...)", 9),
        ("1 2 > 1", "unexpected '2'", 3),
        ("1234567890123456 > 1", "more than 15 digits", 1),
        ("1 > 0.1234567890123456", "more than 15 digits", 5),
        ("1e5 > 1", "'1e5' is neither a number (12, 0.5) nor a duration", 1),
        ("sma(price(X), 5min) > 1", "'5min' is not a duration; write 5m", 15),
        ('return_since(X, "2026-02-30") > 1', '"2026-02-30" is not a valid date', 17),
        ('return_since(X, "March 2") > 1', 'needs a date "YYYY-MM-DD" as argument 2', 17),
        ("return_since(X, 20d) > 1", "needs a date", 17),
        ('price("2026-01-02") > 1', "needs a symbol", 7),
        ("price('X) > 1", "unterminated quoted text", 7),
        ("price(X) > 1 ; 2 > 1", "unexpected character ';'", 14),
        ("lambda: 1", "unexpected character ':'", 7),
        ("x.__class__", "attribute access", 2),
        ("().__class__ > 1", "attribute access", 3),
        ("() > 1", "unexpected ')'", 2),
    ],
)
def test_refusals(text: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as info:
        compile_expr(text)
    assert message in info.value.message
    assert info.value.column == column
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"column {column}: ")


def test_refuses_long_text() -> None:
    text = "1 > 0" + " " * (MAX_LENGTH - 4)
    with pytest.raises(ExprError, match="1001 characters; the limit is 1000") as info:
        compile_expr(text)
    assert info.value.column == 1001
    compile_expr(text[:-1])  # exactly 1,000 is fine


def test_refuses_too_many_nodes() -> None:
    compile_expr("1" + " + 1" * 98 + " > 0")  # 197 nodes, then '>' and 0: 199
    text = "1" + " + 1" * 100 + " > 0"  # 1 + 100 * 2 = 201 nodes before the '>'
    with pytest.raises(ExprError, match="more than 200 parts") as info:
        compile_expr(text)
    assert info.value.column == len("1" + " + 1" * 100)  # the final literal 1


def test_refuses_deep_nesting() -> None:
    compile_expr("(" * 32 + "1" + ")" * 32 + " > 0")
    with pytest.raises(ExprError, match="nested deeper than 32") as info:
        compile_expr("(" * 33 + "1" + ")" * 33 + " > 0")
    assert info.value.column == 33
    with pytest.raises(ExprError, match="nested deeper than 32"):
        compile_expr("-" * 40 + "1 > 0")
    with pytest.raises(ExprError, match="nested deeper than 32"):
        compile_expr("abs(" * 33 + "1" + ")" * 33 + " > 0")


def test_module_never_evaluates_text() -> None:
    """No module of the expression package evaluates text: user rules are parsed, never run."""
    modules = sorted(Path(expr_module.__file__).parent.glob("*.py"))
    assert len(modules) >= 5  # the package's modules, not only its __init__
    for path in modules:
        calls = {
            n.func.id
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert not calls & {"eval", "exec", "compile", "__import__", "getattr"}, path.name


@pytest.mark.parametrize("seed", [1, 2])
def test_high_and_low_since_match_pandas_cummax(seed: int) -> None:
    s = random_series(seed)
    anchor = s.index[40].tz_localize("UTC").tz_convert("America/New_York").date()
    start = pd.Timestamp(anchor, tz="America/New_York").tz_convert("UTC").tz_localize(None)
    after = s[s.index >= start]
    ts = ms_list(s)
    got_hi = feed(f'high_since(price(X), "{anchor}")', ts, list(s))
    got_lo = feed(f'low_since(price(X), "{anchor}")', ts, list(s))
    before = s.index < start
    assert np.isnan(got_hi[before]).all() and np.isnan(got_lo[before]).all()
    close(got_hi[~before], after.cummax().to_numpy())
    close(got_lo[~before], after.cummin().to_numpy())


def test_high_since_ytd_starts_afresh_each_new_york_year() -> None:
    dec31 = dt_to_ms(datetime(2027, 1, 1, 4, 0, tzinfo=UTC))  # 23:00 NY on Dec 31 2026
    jan1 = dt_to_ms(datetime(2027, 1, 1, 6, 0, tzinfo=UTC))  # 01:00 NY on Jan 1 2027
    got = feed('high_since(price(X), "ytd")', [T0, dec31, jan1, jan1 + MIN], [9.0, 12.0, 5.0, 6.0])
    assert list(got) == [9.0, 12.0, 5.0, 6.0]


def test_spread_off_its_high_of_the_year() -> None:
    text = 'high_since(spread(XMAG, MAGS), "ytd") - spread(XMAG, MAGS) > 3'
    state = compile_expr(text).instance()
    m = Market()
    out = []
    for i, (x, g) in enumerate([(110.0, 100.0), (112.0, 100.0), (110.0, 100.0), (108.0, 100.0)]):
        t = T0 + i * MIN
        m.record(Tick("XMAG", t, x))
        m.record(Tick("MAGS", t, g))
        out.append(state.evaluate(m, t))
    assert out == [False, False, False, True]  # 12 high, 8 now: 4 points off


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('high_since(price(X), "2026-02-30")', "not a valid date"),
        ("high_since(price(X), 20d)", 'needs "ytd" or a date'),
        ("low_since(price(X))", "takes 2 arguments"),
    ],
)
def test_since_refusals(text: str, message: str) -> None:
    with pytest.raises(ExprError) as exc:
        compile_expr(text, condition=False)
    assert message in str(exc.value)
