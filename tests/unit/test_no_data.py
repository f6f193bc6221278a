"""`on_no_data`, `no_data_after` and `on_error`: what a rule does when it cannot be judged."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.config import ConfigError
from daemon.events import Tick, dt_to_ms
from daemon.rules.conditions import Reading
from daemon.rules.evaluate import Engine
from daemon.rules.market import Market
from tests.conftest import MakeEngine

NY = ZoneInfo("America/New_York")
MIN = 60_000


def ny(day: int, hour: int, minute: int = 0) -> int:
    return dt_to_ms(dt.datetime(2026, 3, day, hour, minute, tzinfo=NY))


T0 = ny(16, 10)  # a Monday, regular session

SPREAD = """\
rules:
  - name: spread
    when:
      spread: {{a: XMAG, b: MAGS, below: 1.0}}
    on_no_data: {action}
    no_data_after: 5m
    channels: [console]
"""


def told(events: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(e.rule, e.state) for e in events]


def both(eng: Engine, t: int, xmag: float, mags: float) -> list:  # type: ignore[type-arg]
    return eng.on_tick(Tick("XMAG", t, xmag)) + eng.on_tick(Tick("MAGS", t, mags))


def test_silent_leg_resolves_with_ok(make_engine: MakeEngine) -> None:
    eng = make_engine(SPREAD.format(action="ok"))
    assert told(both(eng, T0, 10.5, 10.0)) == [("spread", "firing")]  # spread 0.5 < 1
    # XMAG keeps ticking, MAGS goes quiet: after 5 minutes the spread is no longer trusted
    assert eng.on_tick(Tick("XMAG", T0 + 4 * MIN, 10.5)) == []
    (ev,) = eng.on_tick(Tick("XMAG", T0 + 6 * MIN, 10.5))
    assert (ev.state, ev.values["no_data"]) == ("resolved", "no data from MAGS")
    assert ev.summary == "spread resolved: no data from MAGS"  # not "?-? ? spread nan ..."


def test_silence_is_caught_by_the_clock_with_no_tick_at_all(make_engine: MakeEngine) -> None:
    eng = make_engine(SPREAD.format(action="alerting"))
    # the first leg's tick sees no price for the other one yet: that is no data, too
    assert told(eng.on_tick(Tick("XMAG", T0, 12.0))) == [("spread", "firing")]
    assert told(eng.on_tick(Tick("MAGS", T0, 10.0))) == [("spread", "resolved")]  # spread 2
    assert eng.on_clock(T0 + 4 * MIN) == []
    (ev,) = eng.on_clock(T0 + 5 * MIN)
    assert (ev.rule, ev.state, ev.comparison) == ("spread", "firing", "no data")
    assert ev.values["no_data"] == "no data from XMAG, MAGS"
    assert ev.summary == "spread: no data from XMAG, MAGS"
    # data returns with a healthy spread: the no-data alert resolves on the next tick pair
    assert told(both(eng, T0 + 7 * MIN, 12.0, 10.0)) == [("spread", "resolved")]


def test_silence_after_the_close_is_not_no_data(make_engine: MakeEngine) -> None:
    eng = make_engine(SPREAD.format(action="alerting"))
    eng.warm(Tick("XMAG", ny(16, 15, 59), 12.0))  # prices known, as after a restart
    eng.warm(Tick("MAGS", ny(16, 15, 59), 10.0))
    assert eng.on_clock(ny(16, 17, 0)) == []  # after the close
    assert eng.on_clock(ny(16, 20, 0)) == []
    # the next morning counts from the open, not from yesterday's last tick
    assert eng.on_clock(ny(17, 9, 33)) == []
    assert told(eng.on_clock(ny(17, 9, 35))) == [("spread", "firing")]


def test_keep_holds_the_state(make_engine: MakeEngine) -> None:
    eng = make_engine(SPREAD.format(action="keep"))
    assert told(both(eng, T0, 10.5, 10.0)) == [("spread", "firing")]
    assert eng.on_clock(T0 + 30 * MIN) == []
    assert eng.states["spread{pair=XMAG/MAGS}"].state == "firing"


def test_missing_anchor_is_no_data(make_engine: MakeEngine) -> None:
    rules = """\
rules:
  - name: ytd
    when:
      spread: {a: XMAG, b: MAGS, as: return, since: ytd, below: 8}
    on_no_data: alerting
    channels: [console]
"""
    eng = make_engine(rules)
    # no year-end price was ever seen: the spread cannot be judged, and the rule says: alert
    (ev,) = both(eng, T0, 10.0, 10.0)
    assert (ev.state, ev.values["no_data"]) == ("firing", "no data")
    assert ev.value is not None and math.isnan(ev.value)


class Boom:
    """Stands in for a condition with a bug: evaluating it raises."""

    kind = "boom"
    event = False

    def __init__(self, symbols: tuple[str, ...], labels: dict[str, str]) -> None:
        self.symbols = symbols
        self.labels = labels
        self.fail = True

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        if self.fail:
            raise ZeroDivisionError("float division by zero")
        return False, True

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        return Reading(0.0, False, True, dict(self.labels))

    explain = measure


@pytest.mark.parametrize(("action", "expected"), [("keep", []), ("alerting", ["firing"])])
def test_on_error(make_engine: MakeEngine, action: str, expected: list[str]) -> None:
    rules = f"""\
rules:
  - name: guarded
    when: {{threshold: {{symbols: [NVDA], above: 100}}}}
    on_error: {action}
    channels: [console]
  - name: healthy
    when: {{threshold: {{symbols: [NVDA], above: 100}}}}
    channels: [console]
"""
    eng = make_engine(rules)
    broken = next(i for i in eng.plan.instances if i.rule == "guarded")
    boom = Boom(broken.cond.symbols, broken.cond.labels)
    broken.cond = boom  # type: ignore[assignment]
    events = eng.on_tick(Tick("NVDA", T0, 120.0))
    # the other rule on the same tick is unaffected
    assert [e.key for e in events if e.rule == "healthy"] == ["healthy{symbol=NVDA}"]
    mine = [e for e in events if e.rule == "guarded"]
    assert [e.state for e in mine] == expected
    if mine:
        assert mine[0].values["error"] == "ZeroDivisionError: float division by zero"
        want = "guarded: cannot be evaluated (ZeroDivisionError: float division by zero)"
        assert mine[0].summary == want
    assert eng.errors["guarded"][0] == 1
    # the bug goes away: the condition's own verdict takes over again
    boom.fail = False
    later = [e.state for e in eng.on_tick(Tick("NVDA", T0 + MIN, 120.0)) if e.rule == "guarded"]
    assert later == (["resolved"] if expected else [])


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "when: {headline: {any_of: [capex]}}\n    on_no_data: ok",
            "apply to price conditions, not to headline rules",
        ),
        (
            "when: {crosses: {symbols: [NVDA], level: 100}}\n    on_no_data: alerting",
            "would fire on every tick without data",
        ),
        ("when: {threshold: {symbols: [NVDA], above: 1}}\n    on_no_data: maybe", "keep"),
    ],
)
def test_misuse_is_a_load_error(make_engine: MakeEngine, rule: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        make_engine(f"rules:\n  - name: x\n    {rule}\n    channels: [console]\n")
    assert message in str(exc.value)
    assert "r.yaml:" in str(exc.value)


def test_example_in_the_catalogue_loads(repo: Path) -> None:
    text = (repo / "rules" / "examples" / "catalogue.yaml").read_text()
    assert "on_no_data:" in text and "no_data_after:" in text and "on_error:" in text
