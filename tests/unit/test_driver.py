"""The pure driver: event-time steps, aligned legs, bar-close evaluation, series crossings,
configured anchors, history that never fires, reminders and the clock. No Redis, no sockets."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.alerts import AlertEvent
from daemon.config import load_config
from daemon.events import Tick, dt_to_ms
from daemon.rules.compile import Plan
from daemon.rules.driver import Driver, simulate

NY = ZoneInfo("America/New_York")
SEC = 1000
MIN = 60 * SEC


def ny(hour: int, minute: int = 0, second: int = 0, day: int = 16) -> int:
    return dt_to_ms(dt.datetime(2026, 3, day, hour, minute, second, tzinfo=NY))


ALERTS = """\
channels: {console: {type: console}}
symbols: [XMAG, MAGS, NVDA]
include: [rules/*.yaml]
"""


@pytest.fixture
def plan_of(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "rules").mkdir()

    def make(rules: str, alerts_extra: str = "") -> Plan:
        (tmp_path / "alerts.yaml").write_text(ALERTS + alerts_extra)
        (tmp_path / "rules" / "r.yaml").write_text(rules)
        return load_config(tmp_path / "alerts.yaml", env={}).compile()

    return make


def told(alerts: list[AlertEvent]) -> list[tuple[str, str, int]]:
    return [(a.rule, a.state, a.ts_ms) for a in alerts]


RATIO = """\
rules:
  - name: ratio
    when: {spread: {a: XMAG, b: MAGS, as: ratio, below: 0.5}}
    channels: [console]
"""


def bar(sym: str, ts: int, close: float) -> Tick:
    return Tick(sym, ts, close, kind="bar", source="test")


def test_a_step_applies_every_leg_before_the_rule_is_judged(plan_of) -> None:  # type: ignore[no-untyped-def]
    # 10:01 both legs move: XMAG 26 -> 24, MAGS 50 -> 52. Judged leg by leg the rule would
    # see 24/50 = 0.48 (a state that never existed) and fire; the real state is 24/52 = 0.46,
    # and at 10:02 XMAG 27 / MAGS 52 = 0.519 is back above. Either row order, either way.
    rows = [("XMAG", ny(10, 1), 26.0), ("MAGS", ny(10, 1), 50.0),
            ("XMAG", ny(10, 2), 24.0), ("MAGS", ny(10, 2), 52.0),
            ("XMAG", ny(10, 3), 27.0), ("MAGS", ny(10, 3), 52.0)]  # fmt: skip
    results = set()
    for order in (1, -1):
        ticks = sorted((bar(*r) for r in rows), key=lambda t: (t.ts_ms, order * ord(t.symbol[0])))
        got = Driver(plan_of(RATIO)).feed(ticks)
        results.add(tuple((a.state, a.ts_ms, round(a.value or 0, 6)) for a in got))
    assert results == {
        (("firing", ny(10, 2), round(24 / 52, 6)), ("resolved", ny(10, 3), round(27 / 52, 6)))
    }


def test_bars_split_across_batches_are_judged_once_both_legs_are_in(plan_of) -> None:  # type: ignore[no-untyped-def]
    d = Driver(plan_of(RATIO))
    assert d.feed([bar("XMAG", ny(10, 1), 26.0), bar("MAGS", ny(10, 1), 50.0)]) == []
    # XMAG's 10:02 bar alone: MAGS's latest is 10:01's, not the same bar: not judged
    assert d.feed([bar("XMAG", ny(10, 2), 24.0)]) == []
    got = d.feed([bar("MAGS", ny(10, 2), 52.0)])
    assert told(got) == [("ratio", "firing", ny(10, 2))]
    assert got[0].value == pytest.approx(24 / 52)


def test_trades_are_judged_while_legs_are_within_max_skew(plan_of) -> None:  # type: ignore[no-untyped-def]
    rules = RATIO.replace("    channels:", "    max_skew: 30s\n    channels:")
    d = Driver(plan_of(rules))
    d.feed([Tick("MAGS", ny(10, 0), 52.0)])
    # 40 s apart: more than max_skew, not judged although 24/52 would fire
    assert d.feed([Tick("XMAG", ny(10, 0, 40), 24.0)]) == []
    got = d.feed([Tick("MAGS", ny(10, 0, 50), 52.0)])  # 10 s apart now
    assert told(got) == [("ratio", "firing", ny(10, 0, 50))]
    # the default for trades is 5 minutes
    d2 = Driver(plan_of(RATIO))
    d2.feed([Tick("MAGS", ny(10, 0), 52.0)])
    assert told(d2.feed([Tick("XMAG", ny(10, 4, 59), 24.0)])) == [
        ("ratio", "firing", ny(10, 4, 59))
    ]
    d3 = Driver(plan_of(RATIO))
    d3.feed([Tick("MAGS", ny(10, 0), 52.0)])
    assert d3.feed([Tick("XMAG", ny(10, 5, 1), 24.0)]) == []


def test_a_leg_stale_in_the_session_is_no_data_but_not_overnight(plan_of) -> None:  # type: ignore[no-untyped-def]
    rules = RATIO.replace(
        "    channels:", "    on_no_data: alerting\n    stale_after: 10m\n    channels:"
    )
    d = Driver(plan_of(rules))
    d.feed([Tick("XMAG", ny(10, 0), 30.0), Tick("MAGS", ny(10, 0), 50.0)])  # 0.6: fine
    assert d.feed([Tick("XMAG", ny(10, 8), 30.0)]) == []  # MAGS 8 min old: skewed, not stale
    got = d.feed([Tick("XMAG", ny(10, 11), 30.0)])  # MAGS 11 min old: no data -> alerting
    assert [(a.state, a.values.get("no_data")) for a in got] == [("firing", "no data from MAGS")]
    # overnight silence is not staleness: at 09:31 the age counts from the 09:30 open
    d2 = Driver(plan_of(rules))
    d2.feed([Tick("XMAG", ny(15, 59), 30.0), Tick("MAGS", ny(15, 59), 50.0)])
    assert d2.feed([Tick("XMAG", ny(9, 31, day=17), 30.0)]) == []


def test_order_inside_a_timestamp_never_changes_the_result(plan_of) -> None:  # type: ignore[no-untyped-def]
    rules = (
        RATIO
        + """\
  - name: mags-high
    when: {threshold: {symbols: MAGS, above: 51}}
    channels: [console]
  - name: diff
    when: {spread: {a: MAGS, b: XMAG, as: difference, above: 27, clear: 25}}
    for: 2m
    channels: [console]
"""
    )
    plan_rows = [(s, ny(10, m), p) for m, (x, g) in enumerate(
        [(26, 50), (24, 52), (25, 53), (27, 52), (24, 52), (24, 53), (26, 50)]
    ) for s, p in (("XMAG", float(x)), ("MAGS", float(g)))]  # fmt: skip
    outcomes = set()
    for perm in itertools.permutations(range(2)):
        ticks = []
        for m in range(0, len(plan_rows), 2):
            pair = plan_rows[m : m + 2]
            ticks += [Tick(*pair[i]) for i in perm]
        got = Driver(plan_of(rules)).feed(ticks)
        outcomes.add(tuple(sorted((a.rule, a.state, a.ts_ms) for a in got)))
    assert len(outcomes) == 1 and len(next(iter(outcomes))) >= 4


BAR_CLOSE = """\
rules:
  - name: nvda-close-above
    when: {threshold: {symbols: NVDA, above: 100}}
    evaluate: bar_close
    bar: 5m
    for: 10m
    channels: [console]
"""


def test_bar_close_judges_each_bar_on_its_last_price(plan_of) -> None:  # type: ignore[no-untyped-def]
    # trades every minute from 10:00; above 100 only inside bars, except the closes of the
    # 10:05-10:10, 10:10-10:15 and 10:15-10:20 bars (the ticks at :09, :14, :19)
    prices = {0: 99, 2: 105, 4: 99, 6: 104, 9: 101, 10: 99, 14: 102, 16: 98, 19: 103, 20: 99}
    ticks = [Tick("NVDA", ny(10, m), float(prices.get(m, 99))) for m in range(0, 26)]
    d = Driver(plan_of(BAR_CLOSE))
    got = simulate(d, ticks, start_ms=ny(10, 0), until_ms=ny(10, 40))
    # closes above 100 at 10:10, 10:15, 10:20: pending at 10:10, firing at 10:20 (for 10m),
    # resolved at the 10:25 close (the 10:24 tick at 99)
    assert told(got) == [
        ("nvda-close-above", "firing", ny(10, 20)),
        ("nvda-close-above", "resolved", ny(10, 25)),
    ]
    assert got[0].value == 103.0


def test_bar_close_on_provider_bars_closes_at_the_bar_stamped_on_the_boundary(plan_of) -> None:  # type: ignore[no-untyped-def]
    rules = BAR_CLOSE.replace("    for: 10m\n", "")
    d = Driver(plan_of(rules))
    # 1-minute bars stamped at their end, 10:01 .. 10:05: the 10:05 bar ends the 5m bar
    assert d.feed([bar("NVDA", ny(10, m), 99.0) for m in range(1, 5)]) == []
    got = d.feed([bar("NVDA", ny(10, 5), 101.0)])
    assert told(got) == [("nvda-close-above", "firing", ny(10, 5))]


def test_the_clock_closes_a_bar_no_tick_follows(plan_of) -> None:  # type: ignore[no-untyped-def]
    d = Driver(plan_of(BAR_CLOSE.replace("    for: 10m\n", "")))
    assert d.feed([Tick("NVDA", ny(10, 3), 101.0)]) == []
    assert d.clock(ny(10, 5)) == []  # within the grace: a tick of the bar may be on its way
    assert told(d.clock(ny(10, 5, 5))) == [("nvda-close-above", "firing", ny(10, 5))]
    assert d.clock(ny(10, 30)) == []  # judged once per bar that had data


def test_a_late_tick_of_a_judged_bar_is_not_a_new_bar(plan_of) -> None:  # type: ignore[no-untyped-def]
    d = Driver(plan_of(BAR_CLOSE.replace("    for: 10m\n", "")))
    d.feed([Tick("NVDA", ny(10, 3), 101.0)])
    assert len(d.clock(ny(10, 6))) == 1
    assert d.feed([Tick("NVDA", ny(10, 4, 59), 99.0)]) == []  # late, for the judged bar
    assert d.clock(ny(10, 11)) == []


def test_crossings_of_a_ratio_and_of_an_expression(plan_of) -> None:  # type: ignore[no-untyped-def]
    rules = """\
rules:
  - name: ratio-down
    when: {crossing_down: {spread: {a: XMAG, b: MAGS, as: ratio}, level: 0.5}}
    channels: [console]
  - name: diff-up
    when: {crossing_up: {expr: "price(MAGS) - price(XMAG)", level: 27}}
    channels: [console]
"""
    steps = [(26, 50), (24, 52), (25, 52), (26, 52), (24, 52)]  # ratio .52 .46 .48 .5 .46
    ticks = [Tick(s, ny(10, m), float(p)) for m, (x, g) in enumerate(steps)
             for s, p in (("MAGS", g), ("XMAG", x))]  # fmt: skip
    got = Driver(plan_of(rules)).feed(ticks)
    assert told(got) == [
        ("ratio-down", "firing", ny(10, 1)),  # .52 -> .46
        ("diff-up", "firing", ny(10, 1)),  # 24 -> 28
        ("ratio-down", "firing", ny(10, 4)),  # .50 -> .46 (from the level itself)
        ("diff-up", "firing", ny(10, 4)),  # 26 -> 28
    ]
    assert got[0].summary == "ratio-down: 0.4615 crossed down 0.5"
    assert all(a.resolves is False for a in got)


def test_a_resolve_names_the_clear_level_that_was_passed(plan_of) -> None:  # type: ignore[no-untyped-def]
    rules = """\
rules:
  - name: spread
    when: {spread: {a: XMAG, b: MAGS, as: difference, below: 8, clear: 9}}
    channels: [console]
"""
    got = Driver(plan_of(rules)).feed(
        [Tick("XMAG", ny(10, m), p) for m, p in enumerate((15.0, 17.5, 19.25))]
        + [Tick("MAGS", ny(10, 0), 10.0)]
    )
    assert [a.state for a in got] == ["firing", "resolved"]
    assert got[1].summary == "spread resolved: value 9.25 is back above 9"


YTD = """\
rules:
  - name: ytd
    when: {spread: {a: XMAG, b: MAGS, as: return, since: ytd, below: 8}}
    channels: [console]
"""


def test_configured_anchors_stand_in_until_history_has_the_year_end(plan_of) -> None:  # type: ignore[no-untyped-def]
    extra = "anchors: {XMAG: {2026-01-01: 25.0}, MAGS: {2026-01-01: 60.0}}\n"
    d = Driver(plan_of(YTD, extra))
    got = d.feed([Tick("XMAG", ny(10), 26.5), Tick("MAGS", ny(10), 60.0)])  # +6% vs 0%
    assert told(got) == [("ytd", "firing", ny(10))]
    assert got[0].value == pytest.approx(6.0)
    # history reaching back past Jan 1 wins over the configured price
    d2 = Driver(plan_of(YTD, extra))
    dec31 = dt_to_ms(dt.datetime(2025, 12, 31, 16, tzinfo=NY))
    d2.feed([Tick("XMAG", dec31, 20.0), Tick("MAGS", dec31, 60.0)])
    got = d2.feed([Tick("XMAG", ny(10), 26.5), Tick("MAGS", ny(10), 60.0)])  # +32.5% vs 0%
    assert got == []
    assert d2.engine.market.anchors.get("XMAG", dt.date(2026, 1, 1)) == 20.0


def test_history_warms_but_never_fires(plan_of) -> None:  # type: ignore[no-untyped-def]
    extra = "anchors: {XMAG: {2026-01-01: 25.0}, MAGS: {2026-01-01: 60.0}}\n"
    d = Driver(plan_of(YTD, extra))
    old = [Tick("XMAG", ny(10), 26.5, history=True), Tick("MAGS", ny(10), 60.0, history=True)]
    assert d.feed(old) == []  # below 8 all along, but in the past
    assert d.engine.market.quotes["XMAG"].price == 26.5
    got = d.feed([Tick("MAGS", ny(10, 1), 60.1), Tick("XMAG", ny(10, 1), 26.5)])
    assert told(got) == [("ytd", "firing", ny(10, 1))]  # the first live step tells the state


def test_reminders_are_due_on_the_clock_in_order(plan_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "cal.csv").write_text("symbol,date,when\nNVDA,2026-03-18,amc\n")
    rules = """\
rules:
  - name: eve
    when:
      earnings_reminder: {symbols: NVDA, remind: [{days_before: 1, at: "18:00"}, {before: 15m}]}
    channels: [console]
"""
    plan = plan_of(rules, "calendar: {earnings: cal.csv}\n")
    d = Driver(plan, reminders_after_ms=ny(9, day=17))
    assert [t.fire_ms for t in d.upcoming()] == [ny(18, day=17), ny(15, 45, day=18)]
    assert d.clock(ny(17, 59, 59, day=17)) == []
    got = d.clock(ny(18, 0, 3, day=17))
    assert [(a.key, a.ts_ms) for a in got] == [
        ("eve{report=2026-03-18,symbol=NVDA}", ny(18, day=17))
    ]
    assert d.clock(ny(19, day=17)) == []  # told once
    # simulated time (tickwatch test, the backtest) reaches the second one by event time too
    out = simulate(d, [Tick("NVDA", ny(15, 50, day=18), 180.0)], start_ms=ny(19, day=17),
                   until_ms=ny(16, day=18))  # fmt: skip
    assert [a.ts_ms for a in out] == [ny(15, 45, day=18)]
    # a reload keeps what was told: nothing again
    d2, _ = d.with_plan(plan, {"eve"})
    assert d2.upcoming() == [] and d2.clock(ny(17, day=18)) == []


def test_an_alert_says_what_it_was_judged_on_and_by_which_rule_version(plan_of) -> None:  # type: ignore[no-untyped-def]
    d = Driver(plan_of(RATIO))
    got = d.feed([Tick("XMAG", ny(10, 1), 24.0, kind="bar", source="alpaca"),
                  Tick("MAGS", ny(10, 1), 52.0, kind="bar", source="polygon")])  # fmt: skip
    (alert,) = got
    assert [(i.symbol, i.price, i.ts_ms, i.source, i.kind) for i in alert.inputs] == [
        ("XMAG", 24.0, ny(10, 1), "alpaca", "bar"),
        ("MAGS", 52.0, ny(10, 1), "polygon", "bar"),
    ]
    assert len(alert.rule_version) == 8
    assert type(alert).from_json(alert.to_json()).inputs == alert.inputs
    # the same rule written differently keeps its version; an edit changes it
    same = RATIO.replace(
        "{spread: {a: XMAG, b: MAGS, as: ratio, below: 0.5}}",
        "{spread: {below: 0.50, as: ratio, b: MAGS, a: XMAG}}  # comment",
    )
    edited = RATIO.replace("below: 0.5", "below: 0.49")
    versions = {}
    for name, text in (("same", same), ("edited", edited)):
        versions[name] = plan_of(text).instances[0].version
    assert versions["same"] == alert.rule_version != versions["edited"]


def test_a_crossing_of_a_series_is_checked_and_its_symbols_are_accepted(tmp_path: Path) -> None:
    from daemon.config import ConfigError

    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(
        "channels: {console: {type: console}}\ninclude: [rules/*.yaml]\n"
    )
    (tmp_path / "rules" / "r.yaml").write_text("""\
rules:
  - name: ratio-down
    when: {crossing_down: {spread: {a: XMAG, b: MAGS, as: ratio}, level: 0.5}}
    channels: [console]
  - name: expr-up
    when: {crossing_up: {expr: "price(NVDA) - price(AMD)", level: 27}}
    channels: [console]
""")
    cfg = load_config(tmp_path / "alerts.yaml", env={})
    assert {"XMAG", "MAGS", "NVDA", "AMD"} <= cfg.universe  # the edge lets their ticks in
    (tmp_path / "rules" / "r.yaml").write_text("""\
rules:
  - name: bad
    when: {crossing_up: {expr: "price(NVDA) -", level: 27}}
    channels: [console]
""")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "alerts.yaml", env={})
    assert "r.yaml:3: rules[0].when.crosses.expr" in str(e.value)
    (tmp_path / "rules" / "r.yaml").write_text("""\
rules:
  - name: two
    when: {crossing_up: {symbols: NVDA, spread: {a: XMAG, b: MAGS}, level: 1}}
    channels: [console]
""")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "alerts.yaml", env={})
    assert "r.yaml:3" in str(e.value) and "cross one series" in str(e.value)


def test_a_tick_older_than_its_symbols_latest_is_never_judged(plan_of) -> None:  # type: ignore[no-untyped-def]
    # a restart with a feed replaying its last minutes: the engine restored 10:05's prices
    # (firing: 24/52 below 0.5) gets XMAG's 10:02 trade (27: would resolve) again
    d = Driver(plan_of(RATIO))
    assert told(d.feed([Tick("XMAG", ny(10, 5), 24.0), Tick("MAGS", ny(10, 5), 52.0)])) == [
        ("ratio", "firing", ny(10, 5))
    ]
    assert d.feed([Tick("XMAG", ny(10, 2), 27.0), Tick("MAGS", ny(10, 2), 52.0)]) == []
    assert d.engine.market.quotes["XMAG"].price == 24.0  # the older price is not the price now
    # the same instant again is judged, and tells nothing new
    assert d.feed([Tick("XMAG", ny(10, 5), 24.0)]) == []
    assert told(d.feed([Tick("XMAG", ny(10, 6), 27.0)])) == [("ratio", "resolved", ny(10, 6))]
