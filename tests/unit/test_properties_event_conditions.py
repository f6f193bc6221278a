"""Property tests of the condition kinds that read more than one price series: headlines, the
earnings calendar, the clock (stale, no data), volume history and groups (breadth); the price
conditions are in `test_properties_price_conditions.py`.

Same method and helpers as `tests/unit/test_properties_price_conditions.py`: hypothesis draws a
random stream (ticks, headlines, an earnings calendar, the clock), the real engine (`make_engine`
+ `Engine.on_tick`, `on_headline`, `on_clock`) runs it, and pandas computes independently, from
each kind's documented semantics, what the condition reads at every evaluation. The alert state
machine is then run over those readings (`lifecycle` of test_properties_price_conditions) and the
told transitions must be the same, to the tick:

1. headline: keywords (whole words, any case, `a|b`) with pandas `str.contains`, symbols with
   `explode`, the sentiment filter with Alpha Vantage's bands, cooldown per alert key;
2. earnings: a cross join of ticks and the calendar, the report's moment from `tz_localize`;
3. stale: silence during the NYSE regular session, hours straight from exchange_calendars;
4. volume_spike: the slot's volume today against a groupby of the same slot on earlier days;
5. breadth: each symbol's reading forward-filled across the group, counted per tick;
6. on_no_data / no_data_after on a spread.

Rules keep the default lifecycle (`for: 0`, no cooldown unless the kind is about one), so the
transitions are the condition's edges. Every test counts, across its examples, how many fired
(and resolved) and a few kind-specific cases, and asserts a good share did: a generator that
drifts into never firing fails instead of passing vacuously.

The stale case runs both with a tick first and with the clock first: the latter found that
`on_clock` before any tick counted a never-seen symbol's silence from the open (fixed: the
first event of either kind starts "silent since").
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from pandas.errors import Pandas4Warning

from daemon.alerts import AlertEvent
from daemon.events import Headline, Tick
from daemon.rules.evaluate import Engine
from tests.conftest import ENGINE_ALERTS, MakeEngine
from tests.unit.test_engine import MIN, SEC, T0, ny
from tests.unit.test_properties_price_conditions import (
    GRID,
    Draw,
    Leaf,
    Tally,
    expected,
    level_leaf,
    lifecycle,
    pct_moves,
    props,
    rules_yaml,
    times,
    walk,
)

NY = "America/New_York"
HOUR = 60 * MIN
DAY = 24 * HOUR
MAG7 = ("AAPL", "MSFT", "NVDA")  # the `mag7` group of tests/conftest.py
Keyed = list[tuple[int, str, str]]  # (time, alert key, firing/resolved)


def many(examples: int) -> settings:
    """`props`, for tests whose examples are long streams (hundreds of small draws each)."""
    return settings(
        props(examples),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def key(symbol: str = "") -> str:
    return f"prop{{symbol={symbol}}}" if symbol else "prop"


def told(out: list[AlertEvent]) -> Keyed:
    """The engine's transitions, in (time, key) order: instances told on one event may come
    in either order, but one key never has two transitions at one time here."""
    return sorted((e.ts_ms, e.key, e.state) for e in out)


def per_key(t: pd.Series, readings: dict[str, tuple[pd.Series, pd.Series]]) -> Keyed:
    """The lifecycle (for: 0, no cooldown) of each key over its (active, cleared) readings."""
    out = [
        (now, k, state)
        for k, (active, cleared) in readings.items()
        for state, now in lifecycle(t, active, cleared, 0, 0)
    ]
    return sorted(out)


def tally_keyed(tally: Tally, want: Keyed) -> None:
    tally.add([(state, now) for now, _, state in want])


def rule_text(when: dict[str, Any], cooldown_ms: int = 0, **extra: Any) -> str:
    """`rules_yaml` (for: 0) with more rule options, e.g. on_no_data."""
    doc = yaml.safe_load(rules_yaml(when, 0, cooldown_ms))
    doc["rules"][0].update(extra)
    return yaml.safe_dump(doc, sort_keys=False)


EngineWith = Callable[..., Engine]


@pytest.fixture
def engine_with(make_engine: MakeEngine, tmp_path: Path) -> EngineWith:
    """`make_engine`, with more in alerts.yaml and files next to it (an earnings calendar)."""

    def make(rules: str, alerts_extra: str = "", files: dict[str, str] | None = None) -> Engine:
        (tmp_path / "alerts.yaml").write_text(ENGINE_ALERTS + alerts_extra)
        for name, text in (files or {}).items():
            (tmp_path / name).write_text(text)
        return make_engine(rules)

    return make


def ny_time(t: pd.Series) -> pd.Series:
    """Epoch ms as New York wall-clock timestamps."""
    return pd.to_datetime(t, unit="ms", utc=True).dt.tz_convert(NY)


def epoch_ms(ts: pd.Series) -> pd.Series:
    """Timezone-aware timestamps as epoch ms (whatever the series' time unit)."""
    return (ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)


# --- 1. headline ---------------------------------------------------------------------------

HEADLINE_SYMBOLS = ("AAPL", "MSFT", "NVDA", "XOM", "TSLA")
# A title is made of these: the keywords in other cases and inflections, words that merely
# contain one (capexes, capex_plan, AI2, FAIR, shortcut: not whole words), hyphens and
# possessives that border one (capex-heavy, AI's: whole words), and the phrases with and
# without their single space.
WORDS = (
    "Microsoft", "Nvidia", "shares", "on", "after", "the", "plan",
    "capex", "Capex", "CAPEX", "capexes", "capex-heavy", "capex_plan",
    "raises", "Raises", "raised", "lifts", "LIFTS", "raise",
    "cut", "cuts", "Cuts", "cutting", "shortcut",
    "AI", "ai", "AI's", "AI2", "FAIR",
    "guidance", "Guidance", "guidances",
    "price target", "Price Target", "price targets", "price-target", "price  target",
    "capital spending", "Capital Spending", "capital-spending",
    "rumor", "Rumor:", "rumors",
    "beats", "tops", "misses", "missed",
)  # fmt: skip
SEPARATORS = (" ", " ", " ", ", ", ": ", " - ", " — ", "\n")
KEYWORDS = (
    "capex", "raises|lifts", "cut|cuts", "price target", "AI", "guidance", "rumor",
    "capital spending", "beats|misses|tops", "raise",
)  # fmt: skip
# the label bands' edges and either side of them
SCORES = (-0.6, -0.35, -0.3499, -0.2, -0.15, -0.1499, 0.0, 0.1499, 0.15, 0.2, 0.3499, 0.35, 0.6)
LABELS = ("Bearish", "Somewhat-Bearish", "Neutral", "Somewhat-Bullish", "Bullish")


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    n = rng.randint(lo, hi)
    return "".join(rng.choice(WORDS) + rng.choice(SEPARATORS) for _ in range(n)).strip()


def headline_stream(draw: Draw) -> pd.DataFrame:
    """Headlines seconds to half an hour apart (some at the same instant), with 0-3 tags; now
    and then a recent story runs again (another wire, a rewritten summary).

    The words come from a seeded `random.Random` (one draw per headline rather than one per
    word: drawing every word through hypothesis made this the slowest test here).
    """
    n = draw(st.integers(5, 25), label="headlines")
    gaps = st.sampled_from([0, 10 * SEC, 30 * SEC, MIN, 3 * MIN, 10 * MIN, 30 * MIN])
    at = T0 + np.cumsum(draw(st.lists(gaps, min_size=n, max_size=n)))
    rows: list[dict[str, Any]] = []
    for i, t in enumerate(at):
        rng = random.Random(draw(st.integers(0, 2**32 - 1), label="words"))
        k = draw(st.sampled_from([0, 1, 2, 2, 3]), label="tags")
        tags = draw(st.permutations(HEADLINE_SYMBOLS))[:k]
        title = sentence(rng, 1, 7)
        if rows and draw(st.booleans(), label="runs again"):
            again = rows[draw(st.integers(max(0, len(rows) - 4), len(rows) - 1))]
            tags, title = again["symbols"], again["title"]
        scored = draw(st.lists(st.sampled_from(tags), unique=True)) if tags else []
        rows.append(
            {
                "i": i,
                "t": int(t),
                "title": title,
                "summary": sentence(rng, 0, 4),
                "symbols": tags,
                "sentiment": draw(st.sampled_from([*SCORES, None, None, None])),
                "tsent": {s: draw(st.sampled_from(SCORES)) for s in scored},
            }
        )
    return pd.DataFrame(rows)


def headline_cond(draw: Draw, focus: str) -> dict[str, Any]:
    """A headline condition. `keywords`: up to 3 any_of, 2 all_of, 1 none_of, no sentiment
    filter; `sentiment`: at most one keyword, and a filter of 0-3 bounds."""
    cond: dict[str, Any] = {}
    symbols = draw(
        st.sampled_from([None, "mag7", ["NVDA"], ["MSFT", "XOM"], list(HEADLINE_SYMBOLS)]),
        label="symbols",
    )
    sizes = {"any_of": [0, 1, 2, 3], "all_of": [0, 0, 1, 1, 2], "none_of": [0, 1]}
    if focus == "sentiment":
        sizes = {"any_of": [0, 1], "all_of": [0], "none_of": [0]}
    for field, k in sizes.items():
        words = draw(st.permutations(KEYWORDS))[: draw(st.sampled_from(k), label=field)]
        if words:
            cond[field] = words
    if symbols is not None or not ("any_of" in cond or "all_of" in cond):
        cond["symbols"] = symbols or "mag7"
    if focus == "sentiment":
        values = {
            "min": st.sampled_from([-0.35, -0.15, 0.0, 0.15]),
            "max": st.sampled_from([-0.15, 0.0, 0.15, 0.35]),
            "min_abs": st.sampled_from([0.15, 0.3499, 0.35]),
            "label": st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True),
        }
        k = draw(st.sampled_from([0, 1, 1, 2, 2, 3]), label="bounds")  # 0: `sentiment: {}`
        bounds = draw(st.permutations(list(values)), label="which bounds")[:k]
        cond["sentiment"] = {b: draw(values[b], label=b) for b in bounds}
    per = draw(st.sampled_from([None, "symbol", "headline", "headline"]), label="per")
    if per is not None:
        cond["per"] = per
    return cond


def keyword_in(df: pd.DataFrame, entry: str) -> pd.Series:
    """The keyword entry as a whole word (no letter, digit or _ either side), any case, in the
    title or in the summary; `a|b` lists alternatives."""
    alternatives = "|".join(re.escape(a.strip()) for a in entry.split("|"))
    pattern = rf"\b(?:{alternatives})\b"
    title = df.title.str.contains(pattern, case=False, regex=True)
    return title | df.summary.str.contains(pattern, case=False, regex=True)


def label_of(score: pd.Series) -> pd.Series:
    """Alpha Vantage's bands: x <= -0.35 Bearish; -0.35 < x <= -0.15 Somewhat-Bearish;
    -0.15 < x < 0.15 Neutral; 0.15 <= x < 0.35 Somewhat-Bullish; x >= 0.35 Bullish."""
    bands = {
        "Bearish": score <= -0.35,
        "Somewhat-Bearish": (score > -0.35) & (score <= -0.15),
        "Neutral": (score > -0.15) & (score < 0.15),
        "Somewhat-Bullish": (score >= 0.15) & (score < 0.35),
        "Bullish": score >= 0.35,
    }
    out = pd.Series(None, index=score.index, dtype=object)
    for name, inside in bands.items():
        out[inside] = name
    return out


def sentiment_passes(score: pd.Series, f: dict[str, Any] | None) -> pd.Series:
    """Every bound the filter gives holds; NaN (nobody scored it) fails any bound, so an
    unscored headline passes only a filter with none."""
    ok = pd.Series(True, index=score.index)
    if f is None:
        return ok
    if "min" in f:
        ok &= score >= f["min"]
    if "max" in f:
        ok &= score <= f["max"]
    if "min_abs" in f:
        ok &= score.abs() >= f["min_abs"]
    if "label" in f:
        ok &= label_of(score).isin(f["label"])
    return ok


def headline_reference(df: pd.DataFrame, cond: dict[str, Any], cooldown_ms: int) -> pd.DataFrame:
    """One row per alert the keywords and symbols call for, in order: its key and time, its
    score, whether the sentiment filter passes it, and whether it is told (cooldown)."""
    text = pd.Series(True, index=df.index)
    if "any_of" in cond:
        text &= pd.concat([keyword_in(df, k) for k in cond["any_of"]], axis=1).any(axis=1)
    for k in cond.get("all_of", []):
        text &= keyword_in(df, k)
    for k in cond.get("none_of", []):
        text &= ~keyword_in(df, k)
    # one row per tagged symbol, in the headline's order (NaN for a headline with no tag)
    rows = df[text].explode("symbols")
    sym = cond.get("symbols")
    watched = list(MAG7) if sym == "mag7" else [sym] if isinstance(sym, str) else sym
    if watched:  # a rule with symbols: only the tags it watches, and none is no alert
        rows = rows[rows.symbols.isin(watched)]
    rows = rows.assign(symbol=rows.symbols.fillna(""))
    rows["tags_watched"] = rows.groupby(level=0).symbol.transform("size")
    if cond.get("per") == "headline":  # one alert per headline, under its first symbol
        rows = rows[~rows.index.duplicated(keep="first")]
    # the ticker's own score where the provider gave one, else the headline's
    score = [
        ts.get(s, overall) if s else overall
        for s, ts, overall in zip(rows.symbol, rows.tsent, rows.sentiment, strict=True)
    ]
    rows = rows.assign(score=pd.Series(score, index=rows.index, dtype=float))
    rows = rows.assign(key=rows.symbol.map(key))
    rows["passes"] = sentiment_passes(rows.score, cond.get("sentiment"))
    # cooldown: per alert key, a firing is told unless a told one was less than cooldown ago
    told_at: dict[str, int] = {}
    tell = []
    for k, now, passes in zip(rows.key, rows.t, rows.passes, strict=True):
        tell.append(passes and (k not in told_at or now - told_at[k] >= cooldown_ms))
        if tell[-1]:
            told_at[k] = now
    return rows.assign(told=tell)


@pytest.mark.parametrize("focus", ["keywords", "sentiment"])
def test_headline_matches_pandas(make_engine: MakeEngine, focus: str) -> None:
    tally = Tally()

    @many(40)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        df = headline_stream(draw)
        cond = headline_cond(draw, focus)
        cooldown_ms = draw(st.sampled_from([0, MIN, 10 * MIN, HOUR]), label="cooldown")
        alerts = headline_reference(df, cond, cooldown_ms)
        want = [(k, t) for k, t, ok in zip(alerts.key, alerts.t, alerts.told, strict=True) if ok]

        eng = make_engine(rules_yaml({"headline": cond}, 0, cooldown_ms))
        got = []
        for r in df.itertuples():
            h = Headline(
                id=f"h{r.i}", ts_ms=r.t, title=r.title, summary=r.summary,
                symbols=tuple(r.symbols), source="wire",
                sentiment=None if pd.isna(r.sentiment) else r.sentiment,
                ticker_sentiment=r.tsent,
            )  # fmt: skip
            got += [(e.key, e.ts_ms) for e in eng.on_headline(h)]

        tally.add([("firing", t) for _, t in want])
        raised = alerts[alerts.passes]
        c = tally.c
        c["held by cooldown"] += not raised.told.all()
        c["two alerts from one headline"] += raised.duplicated("i").any()
        c["per headline, of several tags"] += cond.get("per") == "headline" and bool(
            (raised.tags_watched > 1).any()
        )
        c["filtered some, passed some"] += not alerts.passes.all() and alerts.passes.any()
        c["an unscored one vs bounds"] += bool(cond.get("sentiment")) and alerts.score.isna().any()
        assert got == want

    check()
    tally.check(fired=0.3)
    cases = {
        "keywords": [
            "held by cooldown",
            "two alerts from one headline",
            "per headline, of several tags",
        ],
        "sentiment": ["filtered some, passed some", "an unscored one vs bounds"],
    }
    for case in cases[focus]:
        # at least one: which examples a derandomized run draws still varies a little with what
        # ran before it in the process (seen: 2 to 8 unscored-vs-bounds cases)
        assert tally.c[case] >= 1, tally.c


# --- 2. earnings window ------------------------------------------------------------------

REPORT_DAYS = pd.date_range("2026-03-02", "2026-03-20").strftime("%Y-%m-%d").tolist()  # DST: 8th
SPANS = [0, 30 * MIN, 90 * MIN, 16 * HOUR, DAY, 2 * DAY]


def market_moment(cal: pd.DataFrame) -> pd.Series:
    """When the report meets the market (epoch ms): 09:30 New York for BMO, 16:00 for AMC and
    unknown timing (`when` in any case, blank = unknown)."""
    at = np.where(cal["when"].str.lower() == "bmo", "09:30", "16:00")
    local = pd.to_datetime(cal["date"] + " " + at).dt.tz_localize(NY)
    return epoch_ms(local)


def test_earnings_window_matches_pandas(engine_with: EngineWith) -> None:
    """Inside [report - before, report + after], both ends included, of any of the symbol's
    reports, judged on each tick of that symbol."""
    tally = Tally()

    @many(30)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        rows = []
        for sym in MAG7:
            days = draw(st.lists(st.sampled_from(REPORT_DAYS), unique=True, max_size=3))
            whens = st.sampled_from(["bmo", "amc", "unknown", "", "BMO", "AMC"])
            rows += [(sym, d, draw(whens)) for d in days]
        cal = pd.DataFrame(rows, columns=["symbol", "date", "when"])
        cal["m"] = market_moment(cal) if len(cal) else pd.Series(dtype="int64")
        before = draw(st.sampled_from(SPANS), label="before")
        after = draw(st.sampled_from(SPANS), label="after")

        # ticks at random minutes over four weeks, and some a millisecond either side of, or
        # exactly on, the window's edges
        n = draw(st.integers(20, 120), label="ticks")
        start, end = ny(2026, 2, 27), ny(2026, 3, 24)
        minutes = draw(st.lists(st.integers(0, (end - start) // MIN), min_size=n, max_size=n))
        syms = draw(st.lists(st.sampled_from(MAG7), min_size=n, max_size=n))
        ticks = [(s, start + m * MIN) for s, m in zip(syms, minutes, strict=True)]
        for r in cal.itertuples():
            for edge in (r.m - before, r.m + after):
                if draw(st.booleans()):
                    ticks.append((r.symbol, edge + draw(st.sampled_from([-1, 0, 1]))))
        df = pd.DataFrame(ticks, columns=["sym", "t"]).sort_values("t", kind="stable")
        df = df.reset_index(drop=True)

        pairs = df.reset_index().merge(cal, left_on="sym", right_on="symbol", how="left")
        pairs["inside"] = (pairs.t >= pairs.m - before) & (pairs.t <= pairs.m + after)
        inside = pairs.groupby("index").inside.any().reindex(df.index, fill_value=False)
        want = sorted(
            (now, key(s), state)
            for s, g in df.groupby("sym")
            for state, now in lifecycle(g.t, inside[g.index], ~inside[g.index], 0, 0)
        )

        csv = "symbol,date,when\n" + "".join(f"{s},{d},{w}\n" for s, d, w in rows)
        when = {"earnings": {"symbols": "mag7", "before": f"{before}ms", "after": f"{after}ms"}}
        eng = engine_with(rules_yaml(when), "calendar: {earnings: cal.csv}\n", {"cal.csv": csv})
        out: list[AlertEvent] = []
        for s, t in zip(df.sym, df.t, strict=True):
            out += eng.on_tick(Tick(s, int(t), 100.0))
        tally_keyed(tally, want)
        assert told(out) == want

    check()
    tally.check(fired=0.5, resolved=0.4)


# --- 3. stale, and the clocked streams it shares with no-data -----------------------------


@functools.cache
def xnys_hours() -> pd.DataFrame:
    """The NYSE regular session per date (open, close as epoch ms), from exchange_calendars."""
    with warnings.catch_warnings():
        # exchange_calendars 4.13 uses pandas APIs that pandas 3 deprecates (as in sessions.py)
        warnings.simplefilter("ignore", Pandas4Warning)
        sched = xcals.get_calendar("XNYS", start="2026-01-02", end="2026-12-31").schedule
    return pd.DataFrame({"open": epoch_ms(sched.open), "close": epoch_ms(sched.close)})


def session(t: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(whether the regular session is open at t, that New York date's open or NaN)."""
    date = ny_time(t).dt.tz_localize(None).dt.normalize()
    hours = xnys_hours().reindex(date.to_numpy())
    opened = pd.Series(hours.open.to_numpy(), index=t.index)
    closed = pd.Series(hours.close.to_numpy(), index=t.index)
    return (t >= opened) & (t < closed), opened


def silent_for(ev: pd.DataFrame, sym: str, opened: pd.Series) -> pd.Series:
    """How long `sym` has been silent at each event: since its last tick (this one included)
    or, if it never ticked, since the engine began watching (its first event: no alarm storm at
    start-up), and during the session never since before that day's open."""
    last = ev.t.where(ev.sym == sym).ffill().fillna(ev.t.iloc[0])
    return ev.t - np.maximum(last, opened)


def clocked_stream(
    draw: Draw,
    syms: tuple[str, ...],
    days: list[dt.date],
    after_ms: int,
    cadence_ms: int,
    clock_hours: tuple[int, int] = (0, 24),
    tick_first: bool = True,
) -> pd.DataFrame:
    """Ticks of `syms` and of a probe symbol (AAPL), and `on_clock` every `cadence`.

    With `tick_first`, AAPL ticks a second after midnight on the first day, before the clock
    starts: the engine has seen a tick before its first clock check. Without it, the first
    day's ticks start late in the morning, after the clock has been running for hours.

    Each symbol ticks on most days, from a random time between 06:00 and 11:00 New York to
    one between 12:00 and 20:00 (going quiet during the session, or ticking on after the
    close), mostly seconds to minutes apart with some gaps of about `after` and longer ones
    (the gaps come from a seeded generator: hundreds of draws each through hypothesis would
    be slow). AAPL ticks exactly `after` (and a second either side) after random ticks: it
    drives the engine's clock check at the instant a silence reaches `after`. Ticks are on
    whole seconds, never on a whole minute, and never two at once; the clock runs on whole
    minutes over `clock_hours` of each day. So every event is at least a second after the one
    before and the engine judges on every one of them (it skips clock checks within a second
    of the last).
    """
    after_s = after_ms // SEC
    longs = np.array([after_s - 1, after_s, after_s + 1, 2 * after_s, 17 * 60, 45 * 60])
    ticks: list[tuple[str, int]] = []
    for day in days:
        midnight = ny(day.year, day.month, day.day)
        begin = (6 * 60, 11 * 60) if tick_first or day != days[0] else (9 * 60 + 40, 12 * 60)
        for sym in syms:
            if draw(st.integers(0, 5), label="silent all day") == 0:
                continue
            first = draw(st.integers(*begin), label="first tick (minute of the day)")
            last = draw(st.integers(12 * 60, 20 * 60), label="last tick (minute of the day)")
            rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="gaps"))
            k = max(0, (last - first) * 12)  # more gaps than fit: at least 5 s each
            gaps = np.where(rng.random(k) < 0.8, rng.integers(5, 201, k), rng.choice(longs, k))
            at = first * MIN + np.concatenate([[0], np.cumsum(gaps)]) * SEC
            ticks += [(sym, int(midnight + x)) for x in at[at <= last * MIN]]
    if tick_first:
        ticks.append(("AAPL", ny(days[0].year, days[0].month, days[0].day) + SEC))
    if ticks:
        probes = draw(st.lists(st.integers(0, len(ticks) - 1), max_size=8))
        for i in probes:
            d = draw(st.sampled_from([-SEC, 0, SEC]))
            ticks.append(("AAPL", ticks[i][1] + after_ms + d))
    df = pd.DataFrame(ticks, columns=["sym", "t"], dtype=object).astype({"t": "int64"})
    df.loc[df.t % MIN == 0, "t"] += SEC
    df = df.drop_duplicates("t")
    lo, hi = clock_hours
    clock = [
        ny(d.year, d.month, d.day) + m
        for d in days
        for m in range(lo * HOUR, hi * HOUR, cadence_ms)
    ]
    ev = pd.concat([df, pd.DataFrame({"sym": "", "t": clock})], ignore_index=True)
    return ev.sort_values("t", kind="stable").reset_index(drop=True)


def run_clocked(eng: Engine, ev: pd.DataFrame, prices: pd.Series | None = None) -> Keyed:
    out: list[AlertEvent] = []
    p = prices if prices is not None else pd.Series(100.0, index=ev.index)
    for s, t, price in zip(ev.sym, ev.t, p, strict=True):
        out += eng.on_tick(Tick(s, int(t), float(price))) if s else eng.on_clock(int(t))
    return told(out)


# Thanksgiving (Thu 26th: closed; Fri 27th: closes 13:00), a weekend, Christmas Eve (13:00)
# and Christmas Day
STALE_STARTS = [dt.date(2026, 11, d) for d in (24, 25, 27, 29)] + [dt.date(2026, 12, 23)]


@pytest.mark.parametrize(
    "first_event",
    ["a tick", "the clock"],
)
def test_stale_matches_pandas_and_exchange_calendars(
    engine_with: EngineWith, first_event: str
) -> None:
    """Stale when, during the regular session, now - max(last tick, the day's open) >= after;
    never outside it (closed: resolves). Judged on the watched symbols' ticks, on other
    symbols' ticks and on the clock."""
    tally = Tally()
    watched = ("NVDA", "MSFT")

    def check(data: st.DataObject) -> None:
        draw = data.draw
        start = draw(st.sampled_from(STALE_STARTS), label="first day")
        days = [start + dt.timedelta(days=i) for i in range(draw(st.integers(1, 3)))]
        after_ms = draw(st.sampled_from([MIN, 150 * SEC, 5 * MIN, 20 * MIN]), label="after")
        cadence_ms = draw(st.sampled_from([MIN, 2 * MIN, 5 * MIN]), label="cadence")
        tick_first = first_event == "a tick"
        ev = clocked_stream(draw, watched, days, after_ms, cadence_ms, tick_first=tick_first)

        regular, opened = session(ev.t)
        readings = {}
        for sym in watched:
            stale = regular & (silent_for(ev, sym, opened) >= after_ms)
            readings[key(sym)] = (stale, ~stale)
        want = per_key(ev.t, readings)

        when = {"stale": {"symbols": list(watched), "after": f"{after_ms}ms"}}
        got = run_clocked(engine_with(rules_yaml(when)), ev)
        tally_keyed(tally, want)
        tally.c["closed day in the stream"] += any(
            pd.Timestamp(d) not in xnys_hours().index for d in days
        )
        assert got == want

    # the known failure needs no shrinking (it would take minutes): the first example will do
    phases = tuple(Phase) if first_event == "a tick" else (Phase.explicit, Phase.generate)
    settings(many(25), phases=phases)(given(st.data())(check))()
    tally.check(fired=0.4, resolved=0.3)
    assert tally.c["closed day in the stream"] >= 5, tally.c


# --- 4. volume spike -----------------------------------------------------------------------

# two weeks of sessions around the switch to daylight saving time (Sunday the 8th): the same
# New York time of day is a different UTC time either side of it
VOLUME_DAYS = [dt.date(2026, 3, d) for d in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13)]
SIZES = (0, 100, 100, 200, 300, 500, 800, 1000, 3000)


def volume_reference(df: pd.DataFrame, slot_ms: int, days: int, min_days: int) -> pd.DataFrame:
    """Per tick: this slot's volume so far today, and the mean and count of the same slot's
    volume over the last `days` earlier sessions (days with any trade), counting those that
    traded in the slot at all (a session with no trade in the slot is not in the baseline)."""
    local = ny_time(df.t)
    day = local.dt.tz_localize(None).dt.normalize()
    of_day = local.dt.hour * HOUR + local.dt.minute * MIN + local.dt.second * SEC + df.t % SEC
    slot = of_day // slot_ms
    today = df.v.groupby([day, slot]).cumsum()
    traded = df.v > 0
    table = df.v[traded].groupby([day[traded], slot[traded]]).sum().unstack(0)  # slot x day
    usual, n = {}, {}
    for d, s in set(zip(day, slot, strict=True)):
        cols = table.columns[table.columns < d][-days:]
        past = table.loc[s, cols].dropna() if s in table.index else pd.Series(dtype=float)
        usual[d, s], n[d, s] = past.mean(), len(past)
    pairs = list(zip(day, slot, strict=True))
    out = pd.DataFrame({"today": today, "slot": slot}, index=df.index)
    out["usual"] = [usual[p] for p in pairs]
    out["n"] = [n[p] for p in pairs]
    out["valid"] = (out.n >= min_days) & (out.usual > 0)
    return out


def test_volume_spike_matches_pandas_groupby(make_engine: MakeEngine) -> None:
    tally = Tally()

    @many(30)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        days = sorted(draw(st.lists(st.sampled_from(VOLUME_DAYS), unique=True, min_size=4)))
        minutes = draw(st.integers(4, 25), label="minutes traded from 09:30")
        rows = []
        for d in days:
            # one trade a minute, at a second that varies (on the minute now and then: a slot's
            # first instant); some minutes trade nothing (a quote: size 0), busy days 3-6x
            busy = draw(st.sampled_from([1, 1, 1, 3, 6]), label="busy day")
            sizes = draw(st.lists(st.sampled_from(SIZES), min_size=minutes, max_size=minutes))
            at = ny(d.year, d.month, d.day, 9, 30)
            rows += [(at + k * MIN + (k * 13 % 60) * SEC, busy * v) for k, v in enumerate(sizes)]
        df = pd.DataFrame(rows, columns=["t", "v"])
        slot_ms = draw(st.sampled_from([MIN, 2 * MIN, 5 * MIN, 15 * MIN]), label="slot")
        lookback = draw(st.sampled_from([1, 2, 3, 5, 7, 10, 14]), label="days")
        min_days = draw(st.integers(1, 3), label="min_days")
        ratio = draw(st.sampled_from([1.5, 2.0, 3.0]), label="ratio")

        ref = volume_reference(df, slot_ms, lookback, min_days)
        x = ref.today / ref.usual
        when = {
            "volume_spike": {
                "symbols": "NVDA", "slot": f"{slot_ms}ms", "days": lookback, "ratio": ratio,
                "min_days": min_days,
            }
        }  # fmt: skip
        leaf = Leaf(when, (x >= ratio) & ref.valid, (x < ratio) & ref.valid, ref.valid)
        want = expected(df, leaf, 0, 0)

        eng = make_engine(rules_yaml(when))
        got = []
        for t, v in zip(df.t, df.v, strict=True):
            got += [(e.state, e.ts_ms) for e in eng.on_tick(Tick("NVDA", int(t), 100.0, size=v))]
        tally.add(want)
        tally.c["baseline short of min_days"] += bool((ref.n.between(1, min_days - 1)).any())
        sessions_between = [d for d in VOLUME_DAYS if days[0] <= d <= days[-1]]
        tally.c["a session missing"] += len(days) < len(sessions_between)
        assert got == want

    check()
    tally.check(fired=0.4, resolved=0.3)
    assert tally.c["baseline short of min_days"] >= 5, tally.c
    assert tally.c["a session missing"] >= 5, tally.c


# --- 5. breadth ----------------------------------------------------------------------------

GROUP = ("AAPL", "MSFT", "NVDA", "AMZN", "META")


def group_ticks(draw: Draw) -> pd.DataFrame:
    """The group ticking in a random order, 1-20 minutes apart with a few overnight gaps (so
    each symbol has previous closes), each symbol on its own walk with a few 3% jumps; now and
    then a tick exactly at New York midnight (it belongs to the new day)."""
    n = draw(st.integers(30, 150), label="ticks")
    t = times(draw, n, (1, 20), [10 * 60, 14 * 60], MIN)
    first, last = ny_time(pd.Series([t[0], t[-1]])).dt.normalize()
    midnights = epoch_ms(pd.Series(pd.date_range(first, last, freq="D")[1:]))
    at_midnight = [m for m in midnights if draw(st.booleans(), label="a tick at midnight")]
    t = np.sort(np.concatenate([t, np.array(at_midnight, dtype=np.int64)]))
    n = len(t)
    syms = draw(st.lists(st.sampled_from(GROUP), min_size=n, max_size=n))
    df = pd.DataFrame({"sym": syms, "t": t, "step": np.diff(walk(draw, n, 0.0), prepend=0.0)})
    df["p"] = 100.0 + df.groupby("sym").step.cumsum()
    return df.drop(columns="step")


def prev_close_moves(g: pd.DataFrame) -> pd.Series:
    """% move from the last price before the New York midnight starting the tick's own day."""
    midnight = epoch_ms(ny_time(g.t).dt.normalize())
    obs = g[["t", "p"]].rename(columns={"t": "tc", "p": "close"})
    ref = pd.merge_asof(
        pd.DataFrame({"m": midnight.to_numpy()}), obs, left_on="m", right_on="tc",
        allow_exact_matches=False,
    )  # fmt: skip
    return pd.Series((g.p.to_numpy() / ref.close.to_numpy() - 1) * 100, index=g.index)


def breadth_part(draw: Draw, df: pd.DataFrame, part: str) -> tuple[dict[str, Any], pd.Series]:
    """The per-symbol condition, and on each tick of a symbol its own reading: 1 holds,
    0 does not, -1 cannot be judged (no previous close yet)."""
    if part == "threshold":
        side = draw(st.sampled_from(["above", "below"]))
        level = round(float(np.quantile(df.p, draw(st.floats(0.2, 0.8)))) / GRID) * GRID
        level += draw(st.sampled_from([0.0, GRID / 2]))
        holds = df.p > level if side == "above" else df.p < level
        return {"threshold": {"symbols": list(GROUP), side: level}}, holds.astype(int)
    if part == "prev_close":
        move = pd.concat([prev_close_moves(g) for _, g in df.groupby("sym")]).sort_index()
        body: dict[str, Any] = {"since": "prev_close"}
    else:
        w = draw(st.sampled_from([10, 30, 60]), label="window minutes") * MIN
        move = pd.concat(
            [pct_moves(g.reset_index(drop=True), w).set_axis(g.index) for _, g in df.groupby("sym")]
        ).sort_index()
        body = {"window": f"{w}ms"}
    direction = draw(st.sampled_from(["up", "down", "either"]), label="direction")
    signed = move if direction == "up" else -move if direction == "down" else move.abs()
    pos = signed[signed > 0]
    q = draw(st.floats(0.0, 0.7), label="magnitude quantile")
    mag = 0.5 if pos.empty else float(np.quantile(pos, q, method="nearest"))  # a move: ties
    body |= {"symbols": list(GROUP), direction: mag}
    reading = (signed >= mag).astype(int).where(move.notna(), -1)
    return {"pct_move": body}, reading


@pytest.mark.parametrize("part", ["prev_close", "window", "threshold"])
def test_breadth_matches_pandas(make_engine: MakeEngine, part: str) -> None:
    """The count of group members whose condition holds, each as of its own last tick
    (forward-filled), against at_least / clear_below; no reading while none can be judged."""
    tally = Tally()

    @many(20)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        df = group_ticks(draw)
        of, reading = breadth_part(draw, df, part)
        latest = pd.DataFrame({s: reading.where(df.sym == s) for s in GROUP}).ffill()
        count = (latest == 1).sum(axis=1)
        valid = (latest >= 0).any(axis=1)
        assume(valid.any())
        some = count[valid & (count > 0)]
        q = draw(st.floats(0.2, 0.8), label="at_least quantile")
        at_least = int(np.quantile(some, q, method="nearest")) if len(some) else 1
        clear_below = draw(
            st.sampled_from([None, None, 0, *range(1, at_least + 1)]), label="clear_below"
        )
        low = at_least if clear_below is None else clear_below
        body: dict[str, Any] = {"at_least": at_least, "of": of}
        if clear_below is not None:
            body["clear_below"] = clear_below
        leaf = Leaf({"breadth": body}, count >= at_least, count < low, valid)
        want = expected(df, leaf, 0, 0)

        eng = make_engine(rules_yaml(leaf.when))
        got = []
        for s, t, p in zip(df.sym, df.t, df.p, strict=True):
            got += [(e.state, e.ts_ms) for e in eng.on_tick(Tick(s, int(t), float(p)))]
        tally.add(want)
        assert got == want

    check()
    tally.check(fired=0.6, resolved=0.2)


# --- 6. no data ----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["ok", "alerting"])
def test_no_data_on_a_spread_matches_pandas(engine_with: EngineWith, action: str) -> None:
    """`on_no_data` with `no_data_after` on a difference spread. On a tick of either leg:
    no data (a leg never ticked, or one silent `after` during the session, counted as stale
    counts) stands for ok (not holding, cleared) or alerting (holding); else the spread
    against its level. On the clock and on other symbols' ticks: judged only when a leg is
    silent, as no data."""
    tally = Tally()
    legs = ("XMAG", "MAGS")
    stands_for = (False, True) if action == "ok" else (True, False)

    @many(20)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        days = [dt.date(2026, 3, 16), dt.date(2026, 3, 17)][: draw(st.integers(1, 2))]
        after_ms = draw(st.sampled_from([2 * MIN, 5 * MIN, 10 * MIN]), label="no_data_after")
        ev = clocked_stream(draw, legs, days, after_ms, MIN, clock_hours=(8, 18))
        is_leg = ev.sym.isin(legs)
        assume(is_leg.any())
        ev["p"] = np.nan
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="prices"))
        for s, start in zip(legs, (120.0, 100.0), strict=True):
            mine = ev.sym == s  # each leg on its own walk on the grid, steps of up to 2 points
            ev.loc[mine, "p"] = start + GRID * np.cumsum(rng.integers(-2, 3, int(mine.sum())))
        a, b = (ev.p.where(ev.sym == s).ffill() for s in legs)
        spread_ok = a.notna() & b.notna()
        judged = is_leg & spread_ok
        assume(judged.sum() >= 2)
        inner = level_leaf(draw, a - b, judged, {"a": "XMAG", "b": "MAGS"}, on_grid=True)

        regular, opened = session(ev.t)
        silent = pd.concat(
            [regular & (silent_for(ev, s, opened) >= after_ms) for s in legs], axis=1
        ).any(axis=1)
        no_data = silent | ~spread_ok
        valid = is_leg | silent
        active = (inner.active.where(~no_data, stands_for[0]) & valid).astype(bool)
        cleared = (inner.cleared.where(~no_data, stands_for[1]) & valid).astype(bool)
        want = expected(ev, Leaf({}, active, cleared, valid), 0, 0)

        rule = rule_text({"spread": inner.when}, on_no_data=action, no_data_after=f"{after_ms}ms")
        got = [(state, now) for now, _, state in run_clocked(engine_with(rule), ev, ev.p)]
        tally.add(want)
        tally.c["no data stood in"] += bool(
            (valid & no_data & (active if action == "alerting" else cleared)).any()
        )
        assert got == want

    check()
    # `ok` fires only on the spread itself; `alerting` on no data too
    tally.check(fired=0.3 if action == "ok" else 0.6, resolved=0.3)
    assert tally.c["no data stood in"] >= 10, tally.c
