"""The alert state machine on its own: inactive → pending → firing → resolved, in event time."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from daemon.rules.lifecycle import AlertState, fire_event, step

MIN = 60_000
T0 = 1_700_000_000_000  # any positive epoch ms


def obs(
    st: AlertState,
    t: int,
    active: bool,
    cleared: bool | None = None,
    *,
    for_ms: int = 0,
    cooldown_ms: int = 0,
) -> str | None:
    """One observation; with no hysteresis, `cleared` is `not active` (as the engine passes)."""
    return step(
        st,
        active=active,
        cleared=(not active) if cleared is None else cleared,
        now_ms=t,
        for_ms=for_ms,
        cooldown_ms=cooldown_ms,
    )


def test_for_zero_fires_at_once() -> None:
    st = AlertState()
    assert obs(st, T0, active=False) is None
    assert st.state == "inactive"
    assert obs(st, T0 + 1, active=True) == "firing"
    assert (st.state, st.since_ms, st.seq, st.notified) == ("firing", T0 + 1, 1, True)


def test_for_waits_in_pending_then_fires_after_n_of_event_time() -> None:
    st = AlertState()
    f = 5 * MIN
    assert obs(st, T0, True, for_ms=f) is None
    assert (st.state, st.since_ms) == ("pending", T0)
    assert obs(st, T0 + f - 1, True, for_ms=f) is None  # one ms short
    assert st.state == "pending"
    assert obs(st, T0 + f, True, for_ms=f) == "firing"  # exactly `for` later
    assert (st.state, st.since_ms, st.seq) == ("firing", T0 + f, 1)


def test_for_fires_on_the_first_observation_after_the_wait() -> None:
    # no tick arrives at exactly since+for: it fires on the next one, not at a made-up time
    st = AlertState()
    assert obs(st, T0, True, for_ms=MIN) is None
    assert obs(st, T0 + 3 * MIN, True, for_ms=MIN) == "firing"
    assert st.since_ms == T0 + 3 * MIN


def test_pending_that_stops_being_active_goes_back_silently() -> None:
    st = AlertState()
    assert obs(st, T0, True, for_ms=MIN) is None
    assert obs(st, T0 + 30_000, False, for_ms=MIN) is None
    assert (st.state, st.since_ms, st.seq) == ("inactive", T0 + 30_000, 0)
    # the wait starts over: active again for less than `for` is still pending
    assert obs(st, T0 + 40_000, True, for_ms=MIN) is None
    assert obs(st, T0 + 40_000 + MIN - 1, True, for_ms=MIN) is None
    assert st.state == "pending"
    assert obs(st, T0 + 40_000 + MIN, True, for_ms=MIN) == "firing"


def test_hysteresis_firing_holds_until_cleared() -> None:
    st = AlertState()
    assert obs(st, T0, True, False) == "firing"
    # no longer active, but not cleared either (between the level and the clear level)
    for i in range(1, 4):
        assert obs(st, T0 + i * MIN, False, False) is None
        assert st.state == "firing"
    assert obs(st, T0 + 5 * MIN, False, True) == "resolved"
    assert (st.state, st.since_ms, st.seq) == ("resolved", T0 + 5 * MIN, 1)
    # resolved behaves like inactive: a new firing is a new seq
    assert obs(st, T0 + 6 * MIN, False, True) is None
    assert obs(st, T0 + 7 * MIN, True, False) == "firing"
    assert st.seq == 2


def test_active_again_while_firing_is_not_a_new_firing() -> None:
    st = AlertState()
    assert obs(st, T0, True) == "firing"
    assert obs(st, T0 + MIN, True) is None
    assert (st.state, st.seq, st.since_ms) == ("firing", 1, T0)


def test_cooldown_suppresses_refire_and_its_resolve_then_allows() -> None:
    cd = 10 * MIN
    st = AlertState()
    assert obs(st, T0, True, cooldown_ms=cd) == "firing"
    assert obs(st, T0 + MIN, False, cooldown_ms=cd) == "resolved"
    # fires again inside the cooldown: state and seq advance, but nobody is told
    assert obs(st, T0 + 2 * MIN, True, cooldown_ms=cd) is None
    assert (st.state, st.seq, st.notified) == ("firing", 2, False)
    # ... and its resolve is silent too: the firing was never told
    assert obs(st, T0 + 3 * MIN, False, cooldown_ms=cd) is None
    assert st.state == "resolved"
    # exactly `cooldown` after the last told firing: allowed
    assert obs(st, T0 + cd, True, cooldown_ms=cd) == "firing"
    assert (st.seq, st.notified, st.last_notified_ms) == (3, True, T0 + cd)
    assert obs(st, T0 + cd + MIN, False, cooldown_ms=cd) == "resolved"


def test_cooldown_counts_from_the_last_told_firing_not_the_suppressed_one() -> None:
    cd = 10 * MIN
    st = AlertState()
    assert obs(st, T0, True, cooldown_ms=cd) == "firing"
    obs(st, T0 + MIN, False, cooldown_ms=cd)
    assert obs(st, T0 + 9 * MIN, True, cooldown_ms=cd) is None  # suppressed at +9m
    obs(st, T0 + 9 * MIN + 1, False, cooldown_ms=cd)
    # +10m is 10m after the told firing (though only 1m after the suppressed one)
    assert obs(st, T0 + 10 * MIN, True, cooldown_ms=cd) == "firing"


def test_seq_increments_per_firing() -> None:
    st = AlertState()
    seqs = []
    for i in range(4):
        assert obs(st, T0 + 2 * i * MIN, True) == "firing"
        seqs.append(st.seq)
        assert obs(st, T0 + (2 * i + 1) * MIN, False) == "resolved"
        assert st.seq == seqs[-1]  # a firing and its resolve share the number
    assert seqs == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "st",
    [
        AlertState(),
        AlertState("pending", T0, 0, False, 0),
        AlertState("firing", T0 + 5, 7, True, T0 + 5),
        AlertState("resolved", T0 + 9, 3, False, T0 - 1),
    ],
)
def test_state_json_round_trip(st: AlertState) -> None:
    back = AlertState.from_json(st.to_json())
    assert back == st
    assert asdict(back) == asdict(st)


def test_restored_state_continues_where_it_left_off() -> None:
    st = AlertState()
    obs(st, T0, True, for_ms=5 * MIN)
    restored = AlertState.from_json(st.to_json())
    # a restart must not restart the `for` wait, nor re-fire a firing alert
    assert obs(restored, T0 + 5 * MIN, True, for_ms=5 * MIN) == "firing"
    again = AlertState.from_json(restored.to_json())
    assert obs(again, T0 + 6 * MIN, True, for_ms=5 * MIN) is None


def test_fire_event_for_headlines_with_cooldown() -> None:
    cd = 30 * MIN
    st = AlertState()
    assert fire_event(st, now_ms=T0, cooldown_ms=cd) == "firing"
    assert (st.state, st.seq) == ("resolved", 1)  # an event: done at once, nothing to resolve
    assert fire_event(st, now_ms=T0 + MIN, cooldown_ms=cd) is None
    assert fire_event(st, now_ms=T0 + cd - 1, cooldown_ms=cd) is None
    assert (st.seq, st.last_notified_ms) == (3, T0)
    assert fire_event(st, now_ms=T0 + cd, cooldown_ms=cd) == "firing"
    assert (st.state, st.seq, st.last_notified_ms) == ("resolved", 4, T0 + cd)


def test_fire_event_without_cooldown_always_tells() -> None:
    st = AlertState()
    told = [fire_event(st, now_ms=T0 + i, cooldown_ms=0) for i in range(3)]
    assert told == ["firing"] * 3
    assert st.seq == 3
