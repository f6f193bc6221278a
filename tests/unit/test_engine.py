"""The rules engine end to end in memory: YAML rules → compile → ticks and headlines → alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from daemon.alerts import AlertEvent
from daemon.events import Headline, Tick, dt_to_ms
from daemon.notify.slack_blocks import build_message
from daemon.rules.evaluate import Engine
from daemon.rules.lifecycle import AlertState
from tests.conftest import MakeEngine

NY = ZoneInfo("America/New_York")
SEC = 1000
MIN = 60 * SEC


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch ms of a New York wall-clock time."""
    return dt_to_ms(dt.datetime(year, month, day, hour, minute, tzinfo=NY))


T0 = ny(2026, 3, 16, 10, 0)


def feed(engine: Engine, ticks: list[Tick]) -> list[AlertEvent]:
    out: list[AlertEvent] = []
    for t in ticks:
        out += engine.on_tick(t)
    return out


def told(events: list[AlertEvent]) -> list[tuple[str, str, int]]:
    return [(e.key, e.state, e.ts_ms) for e in events]


# --- threshold -----------------------------------------------------------------------------

THRESHOLD_ABOVE = """\
rules:
  - name: nvda-high
    when:
      threshold: {symbols: NVDA, above: 100, clear: 98}
    message: "{symbol} {price:.2f} is {comparison} {threshold:g} ({rule}, {severity})"
    resolved_message: "{symbol} back to {value:.1f}"
    severity: critical
    labels: {desk: chips}
    channels: [console]
"""


def test_threshold_above_with_clear(make_engine: MakeEngine) -> None:
    eng = make_engine(THRESHOLD_ABOVE)
    key = "nvda-high{symbol=NVDA}"  # the key names the instance; rule labels ride along
    prices = [99.0, 100.0, 100.5, 99.0, 98.5, 101.0, 98.0, 97.9, 99.0, 100.01]
    # 100.0 is not above 100; 98.0 is not below the clear level 98
    expected = {2: "firing", 7: "resolved", 9: "firing"}
    for i, p in enumerate(prices):
        events = eng.on_tick(Tick("NVDA", T0 + i * MIN, p))
        assert [e.state for e in events] == ([expected[i]] if i in expected else []), i
        for e in events:
            assert e.key == key
            assert e.ts_ms == T0 + i * MIN
            assert e.value == p
    assert eng.states[key].seq == 2


def test_threshold_event_fields_and_message(make_engine: MakeEngine) -> None:
    eng = make_engine(THRESHOLD_ABOVE)
    (ev,) = eng.on_tick(Tick("NVDA", T0, 123.456))
    assert ev.summary == "NVDA 123.46 is above 100 (nvda-high, critical)"
    assert (ev.rule, ev.severity, ev.channels) == ("nvda-high", "critical", ("console",))
    assert ev.labels == {"desk": "chips", "symbol": "NVDA"}
    assert (ev.threshold, ev.comparison, ev.seq) == (100.0, "above", 1)
    assert ev.id == "nvda-high{symbol=NVDA}#1:firing"
    (res,) = eng.on_tick(Tick("NVDA", T0 + MIN, 97.25))
    assert res.summary == "NVDA back to 97.2"
    assert res.id == "nvda-high{symbol=NVDA}#1:resolved"


def test_threshold_below_with_clear_and_for(make_engine: MakeEngine) -> None:
    eng = make_engine("""\
rules:
  - name: xmag-low
    when:
      threshold: {symbols: XMAG, below: 50, clear: 52}
    for: 2m
    channels: [console]
""")
    ticks = [
        Tick("XMAG", T0, 49.0),  # pending
        Tick("XMAG", T0 + MIN, 50.0),  # not below: back to inactive
        Tick("XMAG", T0 + 2 * MIN, 49.5),  # pending again from here
        Tick("XMAG", T0 + 3 * MIN, 49.0),
        Tick("XMAG", T0 + 4 * MIN, 48.0),  # 2m after 49.5 → fires
        Tick("XMAG", T0 + 5 * MIN, 51.0),  # above the level, below clear: still firing
        Tick("XMAG", T0 + 6 * MIN, 52.5),  # past clear → resolved
    ]
    events = feed(eng, ticks)
    assert told(events) == [
        ("xmag-low{symbol=XMAG}", "firing", T0 + 4 * MIN),
        ("xmag-low{symbol=XMAG}", "resolved", T0 + 6 * MIN),
    ]
    assert events[0].summary == "XMAG 48.00 is below 50"


def test_threshold_reads_mid_from_bid_ask(make_engine: MakeEngine) -> None:
    eng = make_engine("""\
rules:
  - name: mid
    when:
      threshold: {symbols: NVDA, above: 100, price: mid}
    channels: [console]
""")
    # last trade is above, but the mid (99 + 100.5) / 2 = 99.75 is not
    assert eng.on_tick(Tick("NVDA", T0, 101.0, bid=99.0, ask=100.5)) == []
    (ev,) = eng.on_tick(Tick("NVDA", T0 + 1, 101.0, bid=100.5, ask=101.5))
    assert ev.value == pytest.approx(101.0)


def test_group_rule_one_alert_per_symbol_with_independent_state(make_engine: MakeEngine) -> None:
    eng = make_engine("""\
rules:
  - name: mag7-high
    when:
      threshold: {symbols: mag7, above: 200}
    channels: [console]
""")
    assert {i.key for i in eng.plan.instances} == {
        "mag7-high{symbol=AAPL}",
        "mag7-high{symbol=MSFT}",
        "mag7-high{symbol=NVDA}",
    }
    events = feed(
        eng,
        [
            Tick("AAPL", T0, 201.0),
            Tick("MSFT", T0 + 1, 150.0),
            Tick("NVDA", T0 + 2, 250.0),
            Tick("AAPL", T0 + 3, 199.0),
            Tick("TSLA", T0 + 4, 999.0),  # not in the group: no instance
            Tick("NVDA", T0 + 5, 260.0),  # still firing: nothing new
        ],
    )
    assert told(events) == [
        ("mag7-high{symbol=AAPL}", "firing", T0),
        ("mag7-high{symbol=NVDA}", "firing", T0 + 2),
        ("mag7-high{symbol=AAPL}", "resolved", T0 + 3),
    ]
    assert eng.states["mag7-high{symbol=AAPL}"].state == "resolved"
    assert eng.states["mag7-high{symbol=MSFT}"].state == "inactive"
    assert eng.states["mag7-high{symbol=NVDA}"].state == "firing"
    assert "mag7-high{symbol=TSLA}" not in eng.states


# --- spread --------------------------------------------------------------------------------


def test_spread_difference(make_engine: MakeEngine) -> None:
    eng = make_engine("""\
rules:
  - name: gap
    when:
      spread: {a: XMAG, b: MAGS, above: 5}
    channels: [console]
""")
    assert eng.on_tick(Tick("XMAG", T0, 60.0)) == []  # no MAGS price yet
    assert eng.on_tick(Tick("MAGS", T0 + 1, 56.0)) == []  # 4 is not above 5
    (ev,) = eng.on_tick(Tick("MAGS", T0 + 2, 54.5))  # 5.5: fires on a tick of b
    assert ev.key == "gap{pair=XMAG/MAGS}"
    assert ev.value == pytest.approx(60.0 - 54.5)
    assert ev.values["a_price"] == 60.0 and ev.values["b_price"] == 54.5
    assert ev.summary == "XMAG-MAGS difference spread 5.50 is above 5"
    (res,) = eng.on_tick(Tick("XMAG", T0 + 3, 59.0))  # 4.5: back (no clear: plain crossing)
    assert res.state == "resolved"


def test_spread_ratio(make_engine: MakeEngine) -> None:
    eng = make_engine("""\
rules:
  - name: ratio
    when:
      spread: {a: NVDA, b: AAPL, as: ratio, below: 0.5, clear: 0.6}
    message: "ratio {value:.3f} a={a_value:g} b={b_value:g}"
    channels: [console]
""")
    events = feed(
        eng,
        [
            Tick("NVDA", T0, 100.0),
            Tick("AAPL", T0 + 1, 190.0),  # 0.526
            Tick("AAPL", T0 + 2, 250.0),  # 0.4 → fires
            Tick("AAPL", T0 + 3, 180.0),  # 0.556: not yet cleared
            Tick("NVDA", T0 + 4, 115.0),  # 0.639 → resolved
        ],
    )
    assert [(e.state, round(e.value or 0, 3)) for e in events] == [
        ("firing", round(100 / 250, 3)),
        ("resolved", round(115 / 180, 3)),
    ]
    assert events[0].summary == "ratio 0.400 a=100 b=250"


def test_spread_return_ytd_anchors_on_the_last_price_before_new_york_midnight(
    make_engine: MakeEngine,
) -> None:
    eng = make_engine("""\
rules:
  - name: ytd
    when:
      spread: {a: XMAG, b: MAGS, as: return, since: ytd, below: 9, clear: 9.5}
    message: "{mode} {value:.2f} pts (XMAG {a_value:+.2f}%, MAGS {b_value:+.2f}%)"
    channels: [console]
""")
    late_dec = ny(2025, 12, 31, 15, 0)
    after_hours = ny(2025, 12, 31, 22, 0)  # already Jan 1 in UTC: still last year in New York
    assert dt.datetime.fromtimestamp(after_hours / 1000, dt.UTC).date() == dt.date(2026, 1, 1)
    jan2 = ny(2026, 1, 2, 10, 0)
    anchor_x, anchor_m = 101.0, 50.0
    ticks = [
        Tick("XMAG", late_dec, 100.0),
        Tick("MAGS", late_dec, anchor_m),
        Tick("XMAG", after_hours, anchor_x),
        Tick("XMAG", jan2, 111.1),  # MAGS has no 2026 tick yet: no anchor, no reading
        Tick("MAGS", jan2 + MIN, 51.0),
    ]
    events = feed(eng, ticks)
    x_ret = (111.1 / anchor_x - 1) * 100  # 10%
    m_ret = (51.0 / anchor_m - 1) * 100  # 2%
    (ev,) = events
    assert ev.state == "firing" and ev.ts_ms == jan2 + MIN
    assert ev.value == pytest.approx(x_ret - m_ret)
    assert ev.value == pytest.approx(8.0)
    assert ev.values["a_value"] == pytest.approx(10.0)
    assert ev.values["b_value"] == pytest.approx(2.0)
    assert ev.summary == "YTD 8.00 pts (XMAG +10.00%, MAGS +2.00%)"
    assert eng.market.anchors.get("XMAG", dt.date(2026, 1, 1)) == anchor_x
    # the spread widens back past the clear level: XMAG +12%, MAGS +2% → 10 pts
    (res,) = eng.on_tick(Tick("XMAG", jan2 + 2 * MIN, anchor_x * 1.12))
    assert res.state == "resolved"
    assert res.value == pytest.approx(12.0 - m_ret)


def test_spread_return_since_a_date(make_engine: MakeEngine) -> None:
    eng = make_engine("""\
rules:
  - name: since-march
    when:
      spread: {a: XMAG, b: MAGS, as: return, since: 2026-03-02, above: 4}
    channels: [console]
""")
    before = ny(2026, 2, 27, 16, 0)  # the Friday before
    after = ny(2026, 3, 2, 9, 31)
    events = feed(
        eng,
        [
            Tick("XMAG", before, 40.0),
            Tick("MAGS", before, 80.0),
            Tick("XMAG", after, 42.0),  # +5%
            Tick("MAGS", after + 1, 80.4),  # +0.5% → 4.5 pts
        ],
    )
    (ev,) = events
    assert ev.value == pytest.approx((42 / 40 - 1) * 100 - (80.4 / 80 - 1) * 100)
    assert ev.values["mode"] == "since 2026-03-02"


# --- pct_move ------------------------------------------------------------------------------


def pct_rule(direction: str, magnitude: float, clear: float | None = None) -> str:
    extra = f", clear: {clear}" if clear is not None else ""
    return f"""\
rules:
  - name: move
    when:
      pct_move: {{symbols: NVDA, window: 30m, {direction}: {magnitude}{extra}}}
    channels: [console]
"""


def minute_ticks(prices: list[float], start: int = T0) -> list[Tick]:
    return [Tick("NVDA", start + i * MIN, p) for i, p in enumerate(prices)]


def test_pct_move_up_compares_with_the_price_one_window_ago(make_engine: MakeEngine) -> None:
    eng = make_engine(pct_rule("up", 3))
    # flat at 100 for 30 minutes, then 103.5 at minute 30: the price 30m before is 100
    events = feed(eng, minute_ticks([100.0] * 30 + [103.5]))
    (ev,) = events
    assert ev.ts_ms == T0 + 30 * MIN
    assert ev.value == pytest.approx(3.5)
    assert ev.values["from_price"] == 100.0
    assert (ev.threshold, ev.comparison) == (3.0, ">=")
    assert ev.summary == "NVDA moved +3.50% in 30m to 103.50"


def test_pct_move_uses_the_last_price_at_or_before_the_window_start(
    make_engine: MakeEngine,
) -> None:
    eng = make_engine(pct_rule("up", 2.9))
    # at 40m the window starts at 10m; the last price at or before then is the 5m one
    events = feed(
        eng,
        [
            Tick("NVDA", T0, 100.0),
            Tick("NVDA", T0 + 5 * MIN, 101.0),
            Tick("NVDA", T0 + 40 * MIN, 104.0),
        ],
    )
    (ev,) = events
    assert ev.values["from_price"] == 101.0
    assert ev.value == pytest.approx((104 / 101 - 1) * 100)


def test_pct_move_window_trails(make_engine: MakeEngine) -> None:
    eng = make_engine(pct_rule("up", 3))
    # +2% at minute 10, +1.5% more at minute 41: 3.5% since the start, but never 3% in 30m
    prices = [100.0] * 10 + [102.0] * 31 + [103.5]
    assert feed(eng, minute_ticks(prices)) == []
    assert eng.states["move{symbol=NVDA}"].seq == 0


def test_pct_move_down_and_clear(make_engine: MakeEngine) -> None:
    eng = make_engine(pct_rule("down", 2, clear=1))
    prices = [100.0] * 10 + [97.9, 98.0, 98.5, 99.2]
    events = feed(eng, minute_ticks(prices))
    # -2.1% fires; -2.0% and -1.5% hold (not back within 1%); -0.8% resolves
    assert [(e.state, e.ts_ms) for e in events] == [
        ("firing", T0 + 10 * MIN),
        ("resolved", T0 + 13 * MIN),
    ]
    assert events[0].value == pytest.approx(-2.1)
    assert (events[0].threshold, events[0].comparison) == (-2.0, "<=")


def test_pct_move_up_ignores_falls_and_down_ignores_rises(make_engine: MakeEngine) -> None:
    assert feed(make_engine(pct_rule("up", 2)), minute_ticks([100.0, 90.0])) == []
    assert feed(make_engine(pct_rule("down", 2)), minute_ticks([100.0, 110.0])) == []


@pytest.mark.parametrize(("to", "sign"), [(96.0, -1), (104.0, 1)])
def test_pct_move_either(make_engine: MakeEngine, to: float, sign: int) -> None:
    eng = make_engine(pct_rule("either", 3))
    (ev,) = feed(eng, minute_ticks([100.0, to]))
    assert ev.value == pytest.approx(sign * 4.0)
    assert (ev.threshold, ev.comparison) == ((3.0, ">=") if sign > 0 else (-3.0, "<="))


def test_pct_move_across_a_long_gap_does_not_count(make_engine: MakeEngine) -> None:
    eng = make_engine(pct_rule("up", 3))
    close = ny(2026, 3, 16, 15, 59)
    open_ = ny(2026, 3, 17, 9, 30)
    events = feed(
        eng,
        [
            Tick("NVDA", close, 100.0),
            Tick("NVDA", open_, 106.0),  # +6% overnight: a gap, not a move within 30m
            Tick("NVDA", open_ + MIN, 106.5),  # +0.5% since the open
        ],
    )
    assert events == []
    assert eng.states["move{symbol=NVDA}"].state == "inactive"


@pytest.mark.parametrize(
    ("gap", "counts"),
    [
        (45 * MIN, True),  # the price 30m ago is 45m old: between one and two windows
        (60 * MIN, True),  # exactly two windows old: still the reference
        (60 * MIN + 1, False),  # older than two windows: a gap
    ],
)
def test_pct_move_gap_boundary_is_two_windows(
    make_engine: MakeEngine, gap: int, counts: bool
) -> None:
    eng = make_engine(pct_rule("up", 3))
    events = feed(eng, [Tick("NVDA", T0, 100.0), Tick("NVDA", T0 + gap, 105.0)])
    assert [e.state for e in events] == (["firing"] if counts else [])


# --- headlines -----------------------------------------------------------------------------

HEADLINE_RULES = """\
rules:
  - name: capex
    when:
      headline:
        symbols: mag7
        all_of:
          - "capex|capital expenditure"
          - "raises|cuts"
        none_of: ["rumor|rumour"]
        sentiment: {min_abs: 0.2}
    cooldown: 30m
    message: "{symbol} capex ({sentiment:+.2f}): {title} [{source}]"
    channels: [console]
  - name: digestion
    when:
      headline:
        any_of: ["demand digestion|digestion phase"]
        sentiment: {max: -0.15}
    channels: [console]
  - name: upbeat
    when:
      headline:
        symbols: [NVDA]
        sentiment: {min: 0.5}
        sources: [Reuters]
    channels: [console]
"""


def news(title: str, symbols: tuple[str, ...] = ("MSFT",), **kw: Any) -> Headline:
    fields: dict[str, Any] = {"sentiment": 0.5, "source": "wire", "ts_ms": T0}
    fields.update(kw)
    return Headline(id=title, title=title, symbols=symbols, **fields)


def fired(eng: Engine, h: Headline) -> list[str]:
    return [e.key for e in eng.on_headline(h)]


def test_headline_all_of_alternatives_and_message(make_engine: MakeEngine) -> None:
    eng = make_engine(HEADLINE_RULES)
    (ev,) = eng.on_headline(news("Microsoft raises capex guidance", source="Reuters"))
    assert ev.key == "capex{symbol=MSFT}"
    assert ev.summary == "MSFT capex (+0.50): Microsoft raises capex guidance [Reuters]"
    assert (ev.state, ev.comparison, ev.value) == ("firing", "headline", 0.5)
    assert ev.values["headline_id"] == "Microsoft raises capex guidance"


@pytest.mark.parametrize(
    ("title", "summary", "hit"),
    [
        ("Microsoft CUTS Capital Expenditure plan", "", True),  # case, multi-word alternative
        ("Microsoft update", "The company raises its capex outlook.", True),  # summary counts
        ("Microsoft raises capex: rumor", "", False),  # none_of
        ("Microsoft raises capexes", "", False),  # whole words only
        ("Microsoft raisescapex", "", False),
        ("Microsoft capex flat", "", False),  # only one of the all_of entries
        ("Microsoft (capex) raises.", "", True),  # punctuation is a word boundary
    ],
)
def test_headline_keyword_matching(
    make_engine: MakeEngine, title: str, summary: str, hit: bool
) -> None:
    eng = make_engine(HEADLINE_RULES)
    assert ("capex{symbol=MSFT}" in fired(eng, news(title, summary=summary))) is hit


def test_headline_symbols_filter_and_primary_symbol(make_engine: MakeEngine) -> None:
    eng = make_engine(HEADLINE_RULES)
    assert fired(eng, news("Exxon raises capex", symbols=("XOM",))) == []
    assert fired(eng, news("No tickers raise capex", symbols=())) == []
    (ev,) = eng.on_headline(news("Exxon and Apple raise... raises capex", symbols=("XOM", "AAPL")))
    assert ev.key == "capex{symbol=AAPL}"
    assert ev.values["symbols"] == "AAPL"


def test_headline_sentiment_uses_per_ticker_score(make_engine: MakeEngine) -> None:
    eng = make_engine(HEADLINE_RULES)
    # overall tone is strong but MSFT's own score is neutral: skipped
    h = news("Microsoft raises capex", sentiment=0.9, ticker_sentiment={"MSFT": 0.05})
    assert fired(eng, h) == []
    # overall neutral, MSFT's own score strong (negative counts for min_abs): fires
    h = news("Microsoft cuts capex", sentiment=0.0, ticker_sentiment={"MSFT": -0.4})
    (ev,) = eng.on_headline(h)
    assert ev.value == -0.4
    assert "(-0.40)" in ev.summary
    # a sentiment filter with no score at all: not accepted
    assert fired(eng, news("Microsoft raises capex again", sentiment=None)) == []


def test_headline_sentiment_max_and_min_and_sources(make_engine: MakeEngine) -> None:
    eng = make_engine(HEADLINE_RULES)
    # no symbols filter: any headline; the primary symbol is the first listed
    assert fired(eng, news("Cloud enters digestion phase", ("AMZN",), sentiment=-0.3)) == [
        "digestion{symbol=AMZN}"
    ]
    assert fired(eng, news("Cloud enters digestion phase", ("AMZN",), sentiment=-0.1)) == []
    assert fired(eng, news("Chip demand digestion ahead", (), sentiment=-0.5)) == ["digestion"]
    # `upbeat`: symbols only (no keywords), min sentiment, Reuters only (case-insensitive)
    assert fired(eng, news("Nvidia beats", ("NVDA",), sentiment=0.6, source="reuters")) == [
        "upbeat{symbol=NVDA}"
    ]
    assert fired(eng, news("Nvidia beats", ("NVDA",), sentiment=0.6, source="Blog")) == []
    assert fired(eng, news("Nvidia beats", ("NVDA",), sentiment=0.4, source="Reuters")) == []


def test_headline_cooldown_is_per_symbol(make_engine: MakeEngine) -> None:
    eng = make_engine(HEADLINE_RULES)
    assert fired(eng, news("Microsoft raises capex", ts_ms=T0)) == ["capex{symbol=MSFT}"]
    assert fired(eng, news("Microsoft raises capex more", ts_ms=T0 + 10 * MIN)) == []
    assert fired(eng, news("Apple raises capex", ("AAPL",), ts_ms=T0 + 11 * MIN)) == [
        "capex{symbol=AAPL}"
    ]
    (ev,) = eng.on_headline(news("Microsoft raises capex again", ts_ms=T0 + 30 * MIN))
    assert ev.seq == 3  # the suppressed one still counted as a firing


# --- dirty tracking ------------------------------------------------------------------------


def test_take_dirty_returns_changed_states(make_engine: MakeEngine) -> None:
    eng = make_engine("""\
rules:
  - name: high
    when:
      threshold: {symbols: mag7, above: 100}
    for: 1m
    channels: [console]
""")
    assert eng.take_dirty() == {}
    eng.on_tick(Tick("AAPL", T0, 101.0))  # → pending
    eng.on_tick(Tick("MSFT", T0, 50.0))  # inactive stays inactive
    dirty = eng.take_dirty()
    assert set(dirty) == {"high{symbol=AAPL}"}
    assert dirty["high{symbol=AAPL}"].state == "pending"
    assert eng.take_dirty() == {}  # taken
    eng.on_tick(Tick("AAPL", T0 + 30 * SEC, 102.0))  # still pending: no change
    assert eng.take_dirty() == {}
    eng.on_tick(Tick("AAPL", T0 + MIN, 102.0))  # → firing
    dirty = eng.take_dirty()
    assert [(k, s.state, s.seq) for k, s in dirty.items()] == [("high{symbol=AAPL}", "firing", 1)]


def test_engine_resumes_from_persisted_states(make_engine: MakeEngine) -> None:
    rules = THRESHOLD_ABOVE
    eng = make_engine(rules)
    eng.on_tick(Tick("NVDA", T0, 105.0))
    saved = {k: s.to_json() for k, s in eng.take_dirty().items()}
    eng2 = Engine(eng.plan, {k: AlertState.from_json(v) for k, v in saved.items()})
    # a firing alert is not re-fired after a restart, and still resolves
    assert eng2.on_tick(Tick("NVDA", T0 + MIN, 106.0)) == []
    assert [e.state for e in eng2.on_tick(Tick("NVDA", T0 + 2 * MIN, 90.0))] == ["resolved"]


# --- property: the engine against a re-implementation from the documented semantics --------


def reference_transitions(
    ts: np.ndarray, prices: np.ndarray, side: str, level: float, clear: float, for_ms: int
) -> list[tuple[str, int]]:
    """Fires: the first tick of an active run that is `for` after the run's first tick, unless
    already firing. Resolves: the first tick past `clear` while firing (hysteresis)."""
    df = pd.DataFrame({"t": ts, "p": prices})
    df["active"] = df.p > level if side == "above" else df.p < level
    df["cleared"] = df.p < clear if side == "above" else df.p > clear
    run = (df.active != df.active.shift()).cumsum()
    df["run_start"] = df.t.groupby(run).transform("first")
    df["eligible"] = df.active & (df.t - df.run_start >= for_ms)
    out: list[tuple[str, int]] = []
    firing = False
    rows = zip(df.t.tolist(), df.eligible.tolist(), df.cleared.tolist(), strict=True)
    for t, eligible, cleared in rows:
        if not firing and eligible:
            out.append(("firing", t))
            firing = True
        elif firing and cleared:
            out.append(("resolved", t))
            firing = False
    return out


@pytest.mark.parametrize("seed", [1, 7, 42, 2026])
@pytest.mark.parametrize(
    ("side", "quantile", "band", "for_"),
    [("above", 0.6, 0.3, "3m"), ("below", 0.4, 0.2, "90s"), ("above", 0.5, 0.0, "0")],
)
def test_threshold_random_walk_matches_reference(
    make_engine: MakeEngine, seed: int, side: str, quantile: float, band: float, for_: str
) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    ts = T0 + np.cumsum(rng.integers(1, 60, n)) * SEC
    prices = np.round(100 + np.cumsum(rng.normal(0, 0.05, n)), 2)
    # a level the walk crosses, and the clear level `band` back on the other side
    level = round(float(np.quantile(prices, quantile)), 2)
    clear = round(level - band if side == "above" else level + band, 2)
    for_ms = {"3m": 3 * MIN, "90s": 90 * SEC, "0": 0}[for_]
    eng = make_engine(f"""\
rules:
  - name: walk
    when:
      threshold: {{symbols: NVDA, {side}: {level}, clear: {clear}}}
    for: {for_}
    channels: [console]
""")
    got = [
        (e.state, e.ts_ms)
        for t, p in zip(ts.tolist(), prices.tolist(), strict=True)
        for e in eng.on_tick(Tick("NVDA", t, p))
    ]
    want = reference_transitions(ts, prices, side, level, clear, for_ms)
    assert len(want) >= 4, "the walk should cross the level a few times"
    assert got == want


def test_alerts_carry_the_symbols_recent_minute_prices(make_engine: MakeEngine) -> None:
    eng = make_engine(
        "rules:\n  - name: hi\n    when: {threshold: {symbols: NVDA, above: 100}}\n"
        "    channels: [console]\n"
    )
    ticks = [Tick("NVDA", T0 + i * 20 * SEC, p) for i, p in enumerate([97, 98, 99, 98.5, 101])]
    (ev,) = feed(eng, ticks)
    # minutes 0, 0, 0, 1, 1: the last price of each minute
    assert ev.values["series"] == "99 101"
    assert "▁" in str(build_message(ev)) or "█" in str(build_message(ev))


def test_one_shot_alerts_say_they_will_not_resolve(make_engine: MakeEngine) -> None:
    eng = make_engine(
        "rules:\n"
        "  - {name: level, when: {threshold: {symbols: NVDA, above: 100}}, channels: [console]}\n"
        "  - {name: cross, when: {crosses: {symbols: NVDA, level: 100}}, channels: [console]}\n"
        "  - {name: each, when: {threshold: {symbols: NVDA, above: 100}}, trigger: every_time,\n"
        "     channels: [console]}\n"
    )
    events = feed(eng, [Tick("NVDA", T0, 99.0), Tick("NVDA", T0 + SEC, 101.0)])
    assert {e.rule: e.resolves for e in events} == {"level": True, "cross": False, "each": False}
