"""Lifecycle options through the real engine: keep_firing_for, repeat, notify_resolved,
TradingView's trigger modes, expires and flap detection."""

from __future__ import annotations

from daemon.events import Tick
from daemon.rules.lifecycle import AlertState
from tests.conftest import MakeEngine
from tests.unit.test_engine import MIN, T0, feed

SEC = 1000


def rule(extra: str, when: str = "{threshold: {symbols: NVDA, above: 100}}") -> str:
    return f"rules:\n  - name: r\n    when: {when}\n    channels: [console]\n{extra}"


def run(
    make_engine: MakeEngine, extra: str, prices: list[float], step: int = MIN
) -> list[tuple[str, int, int]]:
    e = make_engine(rule(extra))
    out = feed(e, [Tick("NVDA", T0 + i * step, p) for i, p in enumerate(prices)])
    return [(a.state, a.repeat, (a.ts_ms - T0) // step) for a in out]


def test_keep_firing_for_holds_the_alert_until_clear_has_lasted(make_engine: MakeEngine) -> None:
    prices = [101, 99, 99, 101, 99, 99, 99, 99]
    assert run(make_engine, "", prices) == [
        ("firing", 0, 0), ("resolved", 0, 1), ("firing", 0, 3), ("resolved", 0, 4)]  # fmt: skip
    # with keep_firing_for: 2m a 2-minute dip does not resolve; a longer one does, once
    assert run(make_engine, "    keep_firing_for: 2m\n", prices) == [
        ("firing", 0, 0), ("resolved", 0, 6)]  # fmt: skip


def test_keep_firing_for_survives_a_restart_of_the_state(make_engine: MakeEngine) -> None:
    e = make_engine(rule("    keep_firing_for: 2m\n"))
    feed(e, [Tick("NVDA", T0, 101.0), Tick("NVDA", T0 + MIN, 99.0)])
    saved = {k: AlertState.from_json(v.to_json()) for k, v in e.states.items()}
    assert saved["r{symbol=NVDA}"].clearing_since_ms == T0 + MIN
    e2 = make_engine(rule("    keep_firing_for: 2m\n"))
    e2.states.update(saved)
    out = feed(e2, [Tick("NVDA", T0 + 3 * MIN, 99.0)])
    assert [(a.state, a.ts_ms) for a in out] == [("resolved", T0 + 3 * MIN)]


def test_repeat_reminds_while_firing_with_distinct_ids(make_engine: MakeEngine) -> None:
    e = make_engine(rule("    repeat: 10m\n"))
    out = feed(e, [Tick("NVDA", T0 + i * 5 * MIN, 101.0) for i in range(6)] +
               [Tick("NVDA", T0 + 30 * MIN, 99.0)])  # fmt: skip
    assert [(a.state, a.repeat, (a.ts_ms - T0) // MIN) for a in out] == [
        ("firing", 0, 0), ("firing", 1, 10), ("firing", 2, 20), ("resolved", 0, 30)]  # fmt: skip
    assert len({a.id for a in out}) == 4 and out[1].id.endswith(":firing.r1")


def test_resolves_can_be_silenced(make_engine: MakeEngine) -> None:
    assert run(make_engine, "    notify_resolved: false\n", [101, 99, 101]) == [
        ("firing", 0, 0), ("firing", 0, 2)]  # fmt: skip


def test_trigger_once_fires_one_time_ever(make_engine: MakeEngine) -> None:
    assert run(make_engine, "    trigger: once\n", [101, 99, 101, 102, 99, 103]) == [
        ("firing", 0, 0)]  # fmt: skip


def test_trigger_every_time_fires_on_each_matching_tick_within_cooldown(
    make_engine: MakeEngine,
) -> None:
    got = run(make_engine, "    trigger: every_time\n", [101, 102, 99, 103])
    assert got == [("firing", 0, 0), ("firing", 0, 1), ("firing", 0, 3)]
    got = run(make_engine, "    trigger: every_time\n    cooldown: 2m\n", [101, 102, 99, 103])
    assert got == [("firing", 0, 0), ("firing", 0, 3)]


def test_trigger_once_per_bar(make_engine: MakeEngine) -> None:
    # ticks every 20 s, 1-minute bars: at most one firing per bar, on the first matching tick
    prices = [99, 101, 102, 103, 99, 99, 99, 104, 105]
    got = run(make_engine, "    trigger: once_per_bar\n", prices, step=20 * SEC)
    assert [(s, i) for s, _, i in got] == [("firing", 1), ("firing", 3), ("firing", 7)]


def test_trigger_once_per_bar_close_judges_the_last_tick_of_each_bar(
    make_engine: MakeEngine,
) -> None:
    # bar 0: 101, 99 (closes below) -> no; bar 1: 99, 102 (closes above) -> fires at its close
    prices = [101, 99, 99, 102, 103, 99, 100]
    got = run(make_engine, "    trigger: once_per_bar_close\n", prices, step=30 * SEC)
    assert [(s, i * 30 * SEC) for s, _, i in got] == [("firing", 2 * MIN)]


def test_expired_rule_stops_evaluating(make_engine: MakeEngine) -> None:
    from tests.unit.test_engine import ny

    expires = "2026-03-16T10:02:00-04:00"
    assert ny(2026, 3, 16, 10, 0) == T0
    got = run(make_engine, f"    expires: {expires}\n", [101, 99, 99, 101, 99])
    assert got == [("firing", 0, 0), ("resolved", 0, 1)]


def test_flapping_alert_holds_notifications_until_it_settles(make_engine: MakeEngine) -> None:
    flappy = [101, 99, 101, 99, 101, 99, 101, 99, 99, 99, 99, 99, 99, 101]
    got = run(make_engine, "    flap: {transitions: 4, within: 5m}\n", flappy)
    # the first three transitions are told; the 4th within 5m marks it flapping; after 5 quiet
    # minutes it settles and the next firing is told again
    assert got == [("firing", 0, 0), ("resolved", 0, 1), ("firing", 0, 2), ("firing", 0, 13)]
