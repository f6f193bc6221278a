"""Crossings, channels, all/any/not, and the TradingView words, through the real engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daemon.config import ConfigError
from daemon.events import Tick
from daemon.sources.replay import load_timeline
from tests.conftest import MakeEngine
from tests.unit.test_engine import MIN, T0, feed, told

CROSSES = """\
rules:
  - name: up200
    when: {crossing_up: {symbols: NVDA, level: 200}}
    channels: [console]
  - name: any200
    when: {crosses: {symbols: NVDA, level: 200, direction: any}}
    channels: [console]
"""


def test_crossing_fires_on_the_tick_that_crosses_each_way(make_engine: MakeEngine) -> None:
    e = make_engine(CROSSES)
    prices = [199.0, 199.5, 201.0, 202.0, 199.0, 200.5]
    out = feed(e, [Tick("NVDA", T0 + i * MIN, p) for i, p in enumerate(prices)])
    assert told(out) == [
        ("up200{symbol=NVDA}", "firing", T0 + 2 * MIN),
        ("any200{symbol=NVDA}", "firing", T0 + 2 * MIN),
        ("any200{symbol=NVDA}", "firing", T0 + 4 * MIN),
        ("up200{symbol=NVDA}", "firing", T0 + 5 * MIN),
        ("any200{symbol=NVDA}", "firing", T0 + 5 * MIN),
    ]
    assert out[0].comparison == "crossed up" and out[2].comparison == "crossed down"
    assert out[0].values["from_price"] == 199.5 and out[0].value == 201.0
    assert len({(a.key, a.seq) for a in out}) == len(out)  # each crossing is its own alert


def test_crossing_matches_a_plain_loop_on_random_walks(make_engine: MakeEngine) -> None:
    for seed in range(4):
        e = make_engine(CROSSES)
        rng = np.random.default_rng(seed)
        prices = 200 + np.cumsum(rng.normal(0, 0.6, 400))
        out = feed(e, [Tick("NVDA", T0 + i * MIN, float(p)) for i, p in enumerate(prices)])
        steps = range(1, len(prices))
        ups = [i for i in steps if prices[i - 1] <= 200 < prices[i]]
        downs = [i for i in steps if prices[i - 1] >= 200 > prices[i]]
        expected_up = [T0 + i * MIN for i in ups]
        expected_any = [T0 + i * MIN for i in sorted(ups + downs)]
        assert [a.ts_ms for a in out if a.rule == "up200"] == expected_up
        assert [a.ts_ms for a in out if a.rule == "any200"] == expected_any
        assert expected_up, "the walk never crossed: the test proves nothing"


def test_crossing_with_for_is_refused(make_engine: MakeEngine) -> None:
    with pytest.raises(ConfigError, match="remove 'for'"):
        make_engine(
            "rules:\n  - name: x\n    when: {crossing: {symbols: NVDA, level: 1}}\n"
            "    for: 5m\n    channels: [console]\n"
        )


BAND = """\
rules:
  - name: enters
    when: {entering_channel: {symbols: NVDA, lower: 190, upper: 210}}
    channels: [console]
  - name: exits
    when: {band: {symbols: NVDA, lower: 190, upper: 210, on: exits}}
    channels: [console]
  - name: outside
    when: {outside_channel: {symbols: NVDA, lower: 190, upper: 210}}
    channels: [console]
"""


def test_channel_enter_exit_events_and_outside_state(make_engine: MakeEngine) -> None:
    e = make_engine(BAND)
    prices = [185.0, 195.0, 205.0, 215.0, 216.0, 200.0]
    out = feed(e, [Tick("NVDA", T0 + i * MIN, p) for i, p in enumerate(prices)])
    assert told(out) == [
        ("outside{symbol=NVDA}", "firing", T0),
        ("enters{symbol=NVDA}", "firing", T0 + MIN),
        ("outside{symbol=NVDA}", "resolved", T0 + MIN),
        ("exits{symbol=NVDA}", "firing", T0 + 3 * MIN),
        ("outside{symbol=NVDA}", "firing", T0 + 3 * MIN),
        ("enters{symbol=NVDA}", "firing", T0 + 5 * MIN),
        ("outside{symbol=NVDA}", "resolved", T0 + 5 * MIN),
    ]


COMBINED = """\
rules:
  - name: move-while-high
    when:
      all:
        - pct_move: {symbols: mag7, window: 10m, up: 3}
        - threshold: {symbols: mag7, above: 100}
    message: "{symbol} +{value:.1f}% while at {price:.0f}"
    channels: [console]
  - name: either
    when:
      any:
        - threshold: {symbols: NVDA, above: 300}
        - threshold: {symbols: NVDA, below: 50}
    channels: [console]
  - name: not-high
    when:
      not: {threshold: {symbols: AAPL, above: 100}}
    channels: [console]
"""


def test_all_pairs_each_symbol_with_itself(make_engine: MakeEngine) -> None:
    e = make_engine(COMBINED)
    ticks = [
        Tick("NVDA", T0, 100.0), Tick("MSFT", T0, 90.0),
        Tick("NVDA", T0 + 5 * MIN, 104.0),  # +4% and above 100: fires for NVDA
        Tick("MSFT", T0 + 5 * MIN, 94.0),  # +4.4% but below 100: MSFT does not fire
    ]  # fmt: skip
    out = [a for a in feed(e, ticks) if a.rule == "move-while-high"]
    assert told(out) == [("move-while-high{symbol=NVDA}", "firing", T0 + 5 * MIN)]
    assert out[0].summary == "NVDA +4.0% while at 104"


def test_any_and_not(make_engine: MakeEngine) -> None:
    e = make_engine(COMBINED)
    out = feed(e, [Tick("NVDA", T0, 40.0), Tick("NVDA", T0 + MIN, 100.0),
                   Tick("AAPL", T0, 120.0), Tick("AAPL", T0 + MIN, 90.0)])  # fmt: skip
    got = [(a.rule, a.state) for a in out if a.rule in ("either", "not-high")]
    assert got == [("either", "firing"), ("either", "resolved"), ("not-high", "firing")]
    assert out[0].key == "either{symbol=NVDA}"


def test_expression_and_catalogue_spread_agree_on_the_sample_data(
    make_engine: MakeEngine, repo: Path
) -> None:
    """The same trigger written two ways must fire and resolve at the same ticks."""
    e = make_engine("""\
rules:
  - name: catalogue
    when: {spread: {a: XMAG, b: MAGS, as: return, since: ytd, below: 8}}
    for: 15m
    channels: [console]
  - name: expression
    when: {expr: "ytd_return(XMAG) - ytd_return(MAGS) < 8"}
    for: 15m
    message: "spread {value:.2f} vs {threshold:g}"
    channels: [console]
""")
    tl = load_timeline(repo / "data/sample/ticks.csv.gz", None, "t")
    out = feed(e, [t for t in tl.events if isinstance(t, Tick) and t.symbol in ("XMAG", "MAGS")
                   and t.price > 0 and t.ts_ms < T0 + 3650 * 86_400_000])  # fmt: skip
    by_rule: dict[str, list[tuple[str, int]]] = {"catalogue": [], "expression": []}
    for a in out:
        by_rule[a.rule].append((a.state, a.ts_ms))
    assert by_rule["catalogue"], "the sample never fired the spread rule"
    assert by_rule["catalogue"] == by_rule["expression"]
    first = next(a for a in out if a.rule == "expression")
    cat = next(a for a in out if a.rule == "catalogue")
    assert first.value == pytest.approx(cat.value) and first.threshold == 8
    assert first.summary == f"spread {cat.value:.2f} vs 8"


def test_expression_errors_are_located(make_engine: MakeEngine) -> None:
    with pytest.raises(ConfigError) as info:
        make_engine('rules:\n  - name: x\n    when: {expr: "zcore(price(NVDA), 20d) < -2"}\n'
                    "    channels: [console]\n")  # fmt: skip
    text = str(info.value)
    assert "rules/r.yaml:3: rules[0].when.expr:" in text
    assert "unknown function 'zcore'" in text and "zscore" in text


def test_change_over_a_window_catches_a_spread_compressing(make_engine: MakeEngine) -> None:
    """`change()` is the spread-compression trigger: down more than 1 point within 30 minutes."""
    e = make_engine("""\
rules:
  - name: compressing
    when: {expr: "change(price(XMAG) - price(MAGS), 30m) <= -1"}
    channels: [console]
""")
    spread = [10.0] * 31 + [9.8, 9.5, 9.2, 8.9, 8.6]  # minute by minute
    ticks = []
    for i, sp in enumerate(spread):
        ticks += [Tick("MAGS", T0 + i * MIN, 50.0), Tick("XMAG", T0 + i * MIN, 50.0 + sp)]
    out = feed(e, ticks)
    # first minute whose spread is at least 1 below the spread 30 minutes earlier
    first = next(i for i in range(30, len(spread)) if spread[i] - spread[i - 30] <= -1)
    assert [(a.state, a.ts_ms) for a in out] == [("firing", T0 + first * MIN)]
    assert out[0].value == pytest.approx(spread[first] - spread[first - 30])


BREADTH = """\
rules:
  - name: mag-selloff
    when:
      breadth:
        at_least: 2
        of: {pct_move: {symbols: mag7, since: prev_close, down: 2}}
    message: "{count:.0f} of {of:.0f} down 2%+: {symbols}"
    channels: [console]
"""


def test_breadth_counts_group_members_down_since_the_previous_close(
    make_engine: MakeEngine,
) -> None:
    from tests.unit.test_engine import ny

    e = make_engine(BREADTH)
    eve = ny(2026, 3, 16, 15, 59)
    day = ny(2026, 3, 17, 10, 0)
    ticks = [Tick(s, eve, 100.0) for s in ("AAPL", "MSFT", "NVDA")]  # the previous closes
    ticks += [
        Tick("AAPL", day, 97.0),  # -3%: one
        Tick("MSFT", day + MIN, 99.0),  # -1%
        Tick("NVDA", day + 2 * MIN, 97.5),  # -2.5%: two -> fires
        Tick("AAPL", day + 3 * MIN, 99.5),  # back to -0.5%: one -> resolves
    ]
    out = feed(e, ticks)
    assert [(a.state, a.ts_ms) for a in out] == [
        ("firing", day + 2 * MIN), ("resolved", day + 3 * MIN)]  # fmt: skip
    assert out[0].summary == "2 of 3 down 2%+: AAPL NVDA"


def test_breadth_of_a_symbol_free_condition_is_refused(make_engine: MakeEngine) -> None:
    with pytest.raises(ConfigError, match="breadth counts symbols"):
        make_engine(
            "rules:\n  - name: x\n    when:\n      breadth:\n        at_least: 1\n"
            '        of: {expr: "price(NVDA) > 1"}\n    channels: [console]\n'
        )


def test_volume_spike_compares_with_the_same_time_of_day(make_engine: MakeEngine) -> None:
    from tests.unit.test_engine import ny

    e = make_engine("""\
rules:
  - name: heavy
    when: {volume_spike: {symbols: NVDA, slot: 5m, days: 10, ratio: 3, min_days: 3}}
    channels: [console]
""")
    ticks = []
    for d in range(16, 21):  # five earlier days: 100 shares a minute, 10:00-10:04
        ticks += [Tick("NVDA", ny(2026, 3, d, 10, i), 100.0, size=100) for i in range(5)]
        # the open is always busy: 2,000 a minute at 09:30 must not raise the 10:00 baseline
        ticks += [Tick("NVDA", ny(2026, 3, d, 9, 30), 100.0, size=2000)]
    ticks.sort(key=lambda t: t.ts_ms)
    today = [Tick("NVDA", ny(2026, 3, 23, 10, i), 100.0, size=400) for i in range(5)]
    out = feed(e, ticks + today)
    # usual slot volume 500; today 400, 800, 1200, 1600 (3.2x) -> fires at 10:03
    assert [(a.state, a.time_ny.strftime("%m-%d %H:%M")) for a in out] == [
        ("firing", "03-23 10:03")
    ]
    assert out[0].value == pytest.approx(1600 / 500)
