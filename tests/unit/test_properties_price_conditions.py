"""Property tests: the streaming engine against a straightforward pandas computation.

For each condition kind, hypothesis draws a random price series (random step sizes and gaps
between ticks), the real engine (`make_engine` + `Engine.on_tick`) runs it, and pandas computes
independently, vectorised, what the condition reads on each tick: shift for crossings, ffill for
the two legs of a spread, merge_asof for the percent-move reference price, rolling for window
functions. The alert state machine is then run over those readings from its documented
semantics (`lifecycle` / `events` below) and the told transitions must be the same, to the tick.

Prices sit on a 0.25 grid and levels are drawn from the series's own quantiles, on the grid or
between grid points, so most examples cross their levels and ties (value == level) happen often.
Each test also counts, across its examples, how many fired (and resolved) and asserts a good
share did: a generator that drifts into never crossing anything fails instead of passing
vacuously. The thresholds are about half the rates seen over repeated runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from daemon.events import Tick
from tests.conftest import MakeEngine
from tests.unit.test_engine import MIN, SEC, T0, feed, ny

GRID = 0.25


def props(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # make_engine chdirs into a tmp dir: a relative .hypothesis/ would scatter
        # the same examples on every run, so CI never flakes on the "enough of them fired" guards
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )


Transitions = list[tuple[str, int]]


# --- the reference: readings per tick, then the documented state machine --------------------


@dataclass
class Leaf:
    """A condition as pandas sees it: what each tick reads, aligned with the tick frame."""

    when: dict[str, Any]
    active: pd.Series  # the firing condition holds
    cleared: pd.Series  # the resolve condition holds (hysteresis), else `not active`
    valid: pd.Series  # the condition can be judged on this tick (enough data)
    event: bool = False  # an edge: fires on the tick, no pending, no resolve


def lifecycle(
    t: pd.Series, active: pd.Series, cleared: pd.Series, for_ms: int, cooldown_ms: int
) -> Transitions:
    """inactive → pending (`for`) → firing → resolved, over the ticks that could be judged.

    A run of consecutive active readings that starts at t0 may fire from its first tick with
    t - t0 >= `for` (a reading that does not hold ends the run, and with it the pending clock).
    An alert that is not firing fires on its first such tick; a firing alert resolves on its
    first cleared tick. A firing is told unless a told firing happened less than `cooldown`
    before it; its resolve is told exactly when its firing was.
    """
    assert not (active & cleared).any(), "a reading both holds and clears"
    run = active.ne(active.shift()).cumsum()
    run_start = t.groupby(run).transform("first")
    eligible = active & (t - run_start >= for_ms)
    out: Transitions = []
    firing, told, last_told = False, False, None
    for now, may_fire, clear in zip(t.tolist(), eligible.tolist(), cleared.tolist(), strict=True):
        if not firing and may_fire:
            firing = True
            told = last_told is None or now - last_told >= cooldown_ms
            if told:
                out.append(("firing", now))
                last_told = now
        elif firing and clear:
            firing = False
            if told:
                out.append(("resolved", now))
    return out


def events(t: pd.Series, active: pd.Series, cooldown_ms: int) -> Transitions:
    """An edge fires on every tick it happens on, unless within `cooldown` of the last told."""
    out: Transitions = []
    last = None
    for now in t[active].tolist():
        if last is None or now - last >= cooldown_ms:
            out.append(("firing", now))
            last = now
    return out


def expected(df: pd.DataFrame, leaf: Leaf, for_ms: int, cooldown_ms: int) -> Transitions:
    ok = leaf.valid
    t, active, cleared = df.t[ok], leaf.active[ok].astype(bool), leaf.cleared[ok].astype(bool)
    if leaf.event:
        return events(t, active, cooldown_ms)
    return lifecycle(t, active, cleared, for_ms, cooldown_ms)


def rules_yaml(when: dict[str, Any], for_ms: int = 0, cooldown_ms: int = 0) -> str:
    """One rule. Its legs (if it reads several symbols) are judged on each other's last price
    however far apart and however long ago they ticked (`max_skew` and `stale_after` of ten
    years): these properties are about what each condition computes, against pandas
    forward-filling each leg; alignment of legs has its own tests
    (tests/integration/test_aligned_legs.py, tests/unit/test_driver.py)."""
    rule = {
        "name": "prop",
        "when": when,
        "for": f"{for_ms}ms",
        "cooldown": f"{cooldown_ms}ms",
        "max_skew": "3650d",
        "stale_after": "3650d",
        "channels": ["console"],
    }
    return yaml.safe_dump({"rules": [rule]}, sort_keys=False)


def run_engine(
    make_engine: MakeEngine, df: pd.DataFrame, when: dict[str, Any], for_ms: int, cooldown_ms: int
) -> Transitions:
    eng = make_engine(rules_yaml(when, for_ms, cooldown_ms))
    assert len(eng.plan.instances) == 1
    rows = zip(df.sym.tolist(), df.t.tolist(), df.p.tolist(), strict=True)
    return [(e.state, e.ts_ms) for e in feed(eng, [Tick(s, t, p) for s, t, p in rows])]


class Tally:
    """Across a test's examples: how many fired and resolved, so a vacuous run fails."""

    def __init__(self) -> None:
        self.c: Counter[str] = Counter()

    def add(self, want: Transitions) -> None:
        fired = any(s == "firing" for s, _ in want)
        resolved = any(s == "resolved" for s, _ in want)
        self.c["examples"] += 1
        self.c["fired"] += fired
        self.c["resolved"] += resolved
        event(f"fired={fired} resolved={resolved}")  # shown by pytest --hypothesis-show-statistics

    def check(self, fired: float = 0.5, resolved: float = 0.0) -> None:
        n = self.c["examples"]
        assert n >= 20, self.c
        assert self.c["fired"] >= fired * n, f"too few examples fired: {self.c}"
        assert self.c["resolved"] >= resolved * n, f"too few examples resolved: {self.c}"


def compare(
    make_engine: MakeEngine,
    df: pd.DataFrame,
    leaf: Leaf,
    for_ms: int,
    cooldown_ms: int,
    tally: Tally,
) -> None:
    want = expected(df, leaf, for_ms, cooldown_ms)
    got = run_engine(make_engine, df, leaf.when, for_ms, cooldown_ms)
    tally.add(want)
    assert got == want


# --- drawing series and levels -------------------------------------------------------------

Draw = Callable[..., Any]
JUMPS = st.integers(-12, 12)
FALLS = st.integers(-12, -4)


def walk(
    draw: Draw,
    n: int,
    start: float,
    jump: st.SearchStrategy[int] = JUMPS,
    min_jumps: int = 0,
) -> np.ndarray:
    """A random walk on the grid: steps of up to 2 grid points, and a few `jump`s."""
    steps = np.array(draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n)), dtype=float)
    jumps = draw(st.dictionaries(st.integers(0, n - 1), jump, min_size=min_jumps, max_size=4))
    for i, size in jumps.items():
        steps[i] = size
    return start + GRID * np.cumsum(steps)


def times(draw: Draw, n: int, short: tuple[int, int], longs: list[int], unit: int) -> np.ndarray:
    """Tick times: gaps of `short` units, and at a few random places one of the `longs`."""
    gaps = np.array(draw(st.lists(st.integers(*short), min_size=n, max_size=n)))
    if longs:
        at = draw(st.dictionaries(st.integers(0, n - 1), st.sampled_from(longs), max_size=6))
        for i, gap in at.items():
            gaps[i] = gap
    return T0 + np.cumsum(gaps) * unit


def ticks(draw: Draw, lo: int = 20, hi: int = 100, unit: int = 30 * SEC) -> pd.DataFrame:
    """One symbol (NVDA) ticking 1-8 units apart."""
    n = draw(st.integers(lo, hi), label="ticks")
    t = times(draw, n, (1, 8), [], unit)
    return pd.DataFrame({"sym": "NVDA", "t": t, "p": walk(draw, n, 100.0)})


def level_from(
    draw: Draw, values: pd.Series, on_grid: bool = True, qs: tuple[float, float] = (0.1, 0.9)
) -> float:
    """A level the series crosses: a quantile, on the grid (ties) or between grid points."""
    q = draw(st.floats(*qs), label="quantile")
    x = float(np.quantile(values.to_numpy(), q))
    if not on_grid:
        return round(x, 4)
    snapped = round(x / GRID) * GRID
    return snapped + draw(st.sampled_from([0.0, GRID / 2]), label="level offset")


def for_and_cooldown(draw: Draw, event_kind: bool = False) -> tuple[int, int]:
    for_ms = 0 if event_kind else draw(st.sampled_from([0, 0, 30 * SEC, 90 * SEC, 3 * MIN]))
    cooldown_ms = draw(st.sampled_from([0, 0, 60 * SEC, 4 * MIN, 15 * MIN]))
    return for_ms, cooldown_ms


def level_leaf(
    draw: Draw,
    value: pd.Series,
    valid: pd.Series,
    cond: dict[str, Any],
    on_grid: bool,
    often: bool = False,
) -> Leaf:
    """`above`/`below` a level drawn from `value`, with an optional `clear` level."""
    side = draw(st.sampled_from(["above", "below"]), label="side")
    # the condition holds on roughly 10% to 70% of the ticks (`often`: 50% to 90%)
    lo, hi = (0.1, 0.5) if often else (0.3, 0.9)
    qs = (lo, hi) if side == "above" else (1 - hi, 1 - lo)
    level = level_from(draw, value[valid], on_grid, qs)
    clear = None
    if draw(st.booleans(), label="hysteresis"):
        # 0 to half the series's range back from the level, on the grid when the level is
        frac = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5]), label="clear distance")
        span = float(value[valid].max() - value[valid].min())
        back = round(frac * span / GRID) * GRID if on_grid else round(frac * span, 4)
        clear = level - back if side == "above" else level + back
    if side == "above":
        active = value > level
        cleared = value < clear if clear is not None else ~active
    else:
        active = value < level
        cleared = value > clear if clear is not None else ~active
    body = {**cond, side: level} | ({"clear": clear} if clear is not None else {})
    return Leaf(body, active & valid, cleared & valid, valid)


def threshold_leaf(draw: Draw, df: pd.DataFrame, often: bool = False) -> Leaf:
    leaf = level_leaf(draw, df.p, df.p.notna(), {"symbols": "NVDA"}, on_grid=True, often=often)
    leaf.when = {"threshold": leaf.when}
    return leaf


def pct_moves(df: pd.DataFrame, window_ms: int) -> pd.Series:
    """Percent move since the price `window` ago (the gap rule of `Window.reference`).

    Reference: the last price at or before now - W, if it is not older than now - 2W; else (a
    gap: a night, an outage) the oldest price at or after now - W.
    """
    obs = df[["t", "p"]]
    cut = pd.DataFrame({"cut": df.t - window_ms})
    back = pd.merge_asof(
        cut,
        obs.rename(columns={"t": "tb", "p": "pb"}),
        left_on="cut",
        right_on="tb",
        direction="backward",
    )
    fwd = pd.merge_asof(
        cut,
        obs.rename(columns={"t": "tf", "p": "pf"}),
        left_on="cut",
        right_on="tf",
        direction="forward",
    )
    recent = back.tb.notna() & (back.tb >= cut.cut - window_ms)
    ref = back.pb.where(recent, fwd.pf)
    return (df.p / ref - 1) * 100


def pct_move_leaf(draw: Draw, df: pd.DataFrame, window_ms: int, often: bool = False) -> Leaf:
    move = pct_moves(df, window_ms)
    direction = draw(st.sampled_from(["up", "down", "either"]), label="direction")
    signed = move if direction == "up" else -move if direction == "down" else move.abs()
    pos = signed[signed > 0]
    q = draw(st.floats(0.0, 0.4) if often else st.floats(0.1, 0.8), label="magnitude quantile")
    if pos.empty:
        mag = 0.5
    elif draw(st.booleans(), label="magnitude is a move (tie)"):
        mag = float(np.quantile(pos.to_numpy(), q, method="nearest"))
    else:
        mag = max(round(float(np.quantile(pos.to_numpy(), q)), 3), 0.001)
    clear = None
    if draw(st.booleans(), label="hysteresis"):
        clear = mag * draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]), label="clear fraction")
    active = signed >= mag
    cleared = signed < clear if clear is not None else ~active
    body: dict[str, Any] = {"symbols": "NVDA", "window": f"{window_ms}ms", direction: mag}
    if clear is not None:
        body["clear"] = clear
    valid = pd.Series(True, index=df.index)
    return Leaf({"pct_move": body}, active, cleared, valid)


def crosses_leaf(draw: Draw, df: pd.DataFrame, direction: str) -> Leaf:
    level = level_from(draw, df.p)
    prev = df.p.shift()
    up = (prev <= level) & (level < df.p)
    down = (prev >= level) & (level > df.p)
    hit = up if direction == "up" else down if direction == "down" else up | down
    when = {"crosses": {"symbols": "NVDA", "level": level, "direction": direction}}
    return Leaf(when, hit, ~hit, pd.Series(True, index=df.index), event=True)


def band_leaf(draw: Draw, df: pd.DataFrame, on: str, often: bool = False) -> Leaf:
    wide = often and on == "inside"
    a = level_from(draw, df.p, qs=(0.05, 0.3) if wide else (0.1, 0.9))
    b = level_from(draw, df.p, qs=(0.7, 0.95) if wide else (0.1, 0.9))
    lower, upper = min(a, b), max(a, b)
    if lower == upper:
        upper += GRID
    inside = (df.p >= lower) & (df.p <= upper)
    prev = df.p.shift()
    was_inside = (prev >= lower) & (prev <= upper)
    has_prev = prev.notna()
    when = {"band": {"symbols": "NVDA", "lower": lower, "upper": upper, "on": on}}
    valid = pd.Series(True, index=df.index)
    if on in ("inside", "outside"):
        active = inside if on == "inside" else ~inside
        return Leaf(when, active, ~active, valid)
    hit = has_prev & (~was_inside & inside if on == "enters" else was_inside & ~inside)
    return Leaf(when, hit, ~hit, valid, event=True)


# --- 1. threshold --------------------------------------------------------------------------


def test_threshold_matches_pandas(make_engine: MakeEngine) -> None:
    tally = Tally()

    @props(40)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        df = ticks(data.draw)
        leaf = threshold_leaf(data.draw, df)
        for_ms, cooldown_ms = for_and_cooldown(data.draw)
        compare(make_engine, df, leaf, for_ms, cooldown_ms, tally)

    check()
    tally.check(fired=0.5, resolved=0.3)


# --- 2. spread -----------------------------------------------------------------------------


def two_symbols(draw: Draw, t: np.ndarray, first_two_differ: bool = False) -> pd.DataFrame:
    """XMAG and MAGS ticking in a random interleaved order at times `t`, each its own walk."""
    n = len(t)
    syms = draw(st.lists(st.sampled_from(["XMAG", "MAGS"]), min_size=n, max_size=n))
    if first_two_differ:
        syms[1] = "MAGS" if syms[0] == "XMAG" else "XMAG"
    df = pd.DataFrame({"sym": syms, "t": t, "step": np.diff(walk(draw, n, 0.0), prepend=0.0)})
    start = df.sym.map({"XMAG": 120.0, "MAGS": 100.0})  # far enough from 0 for any walk here
    df["p"] = start + df.groupby("sym").step.cumsum()
    return df.drop(columns="step")


def legs(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each symbol's last price as of every tick (of either symbol)."""
    return df.p.where(df.sym == "XMAG").ffill(), df.p.where(df.sym == "MAGS").ffill()


@pytest.mark.parametrize("mode", ["difference", "ratio"])
def test_spread_matches_pandas(make_engine: MakeEngine, mode: str) -> None:
    tally = Tally()

    @props(30)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        n = draw(st.integers(20, 100), label="ticks")
        df = two_symbols(draw, times(draw, n, (1, 8), [], 30 * SEC))
        a, b = legs(df)
        value = a - b if mode == "difference" else a / b
        valid = a.notna() & b.notna()
        assume(valid.any())
        # a difference of grid prices is on the grid: ties with an on-grid level are exact
        cond = {"a": "XMAG", "b": "MAGS", "as": mode}
        leaf = level_leaf(draw, value, valid, cond, on_grid=mode == "difference")
        leaf.when = {"spread": leaf.when}
        for_ms, cooldown_ms = for_and_cooldown(draw)
        compare(make_engine, df, leaf, for_ms, cooldown_ms, tally)

    check()
    tally.check(fired=0.5, resolved=0.3)


MIDNIGHT = ny(2026, 1, 1)  # New York: 05:00 UTC


def test_spread_return_ytd_matches_pandas(make_engine: MakeEngine) -> None:
    """YTD returns anchor on each symbol's last price before New York midnight on Jan 1.

    The anchor exists once that symbol has ticked at or after midnight (the first tick of the
    year freezes it); a tick exactly at midnight belongs to the new year. Before midnight the
    anchor would be Jan 1 of the previous year, which this series never saw: no reading.
    """
    tally = Tally()

    @props(40)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        k_pre = draw(st.integers(2, 10), label="ticks before midnight")
        k_post = draw(st.integers(10, 80), label="ticks from midnight on")
        pre = draw(st.lists(st.integers(1, 90), min_size=k_pre, max_size=k_pre))
        first = draw(st.integers(0, 10), label="minutes after midnight of the first tick")
        post = draw(st.lists(st.integers(1, 5), min_size=k_post - 1, max_size=k_post - 1))
        t = np.concatenate(
            [
                MIDNIGHT - np.cumsum(pre)[::-1] * MIN,
                MIDNIGHT + (first + np.concatenate([[0], np.cumsum(post)])) * MIN,
            ]
        )
        df = two_symbols(draw, t, first_two_differ=True)  # both have a price before midnight
        a, b = legs(df)
        new_year = df.t >= MIDNIGHT
        anchor = {
            s: (df.p[(df.sym == s) & ~new_year].iloc[-1], ((df.sym == s) & new_year).cummax())
            for s in ("XMAG", "MAGS")
        }
        (base_a, has_a), (base_b, has_b) = anchor["XMAG"], anchor["MAGS"]
        value = (a / base_a - 1) * 100 - (b / base_b - 1) * 100
        valid = has_a & has_b
        assume(valid.any())
        cond = {"a": "XMAG", "b": "MAGS", "as": "return", "since": "ytd"}
        leaf = level_leaf(draw, value, valid, cond, on_grid=False)
        leaf.when = {"spread": leaf.when}
        for_ms, cooldown_ms = for_and_cooldown(draw)
        compare(make_engine, df, leaf, for_ms, cooldown_ms, tally)

    check()
    tally.check(fired=0.5, resolved=0.3)


# --- 3. pct_move ---------------------------------------------------------------------------


def gapped_ticks(draw: Draw, w: int, unit: int = 30 * SEC) -> pd.DataFrame:
    """Ticks mostly well inside the window of `w` units, with a few gaps of one to three
    windows: exactly two windows, one unit either side of it, and further out."""
    n = draw(st.integers(10, 120), label="ticks")
    longs = [w - 1, w, w + 1, 2 * w - 1, 2 * w, 2 * w + 1, 3 * w]
    t = times(draw, n, (1, max(1, w // 4)), longs, unit)
    return pd.DataFrame({"sym": "NVDA", "t": t, "p": walk(draw, n, 100.0)})


def test_pct_move_matches_pandas_including_the_gap_rule(make_engine: MakeEngine) -> None:
    tally = Tally()

    @props(50)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        units = draw(st.sampled_from([4, 10, 20, 60]), label="window in 30s units")
        df = gapped_ticks(draw, units)
        leaf = pct_move_leaf(draw, df, units * 30 * SEC)
        for_ms, cooldown_ms = for_and_cooldown(draw)
        compare(make_engine, df, leaf, for_ms, cooldown_ms, tally)

    check()
    tally.check(fired=0.5, resolved=0.3)


# --- 4. crosses and band -------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["up", "down", "any"])
def test_crosses_matches_pandas(make_engine: MakeEngine, direction: str) -> None:
    tally = Tally()

    @props(20)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        df = ticks(data.draw)
        leaf = crosses_leaf(data.draw, df, direction)
        _, cooldown_ms = for_and_cooldown(data.draw, event_kind=True)
        compare(make_engine, df, leaf, 0, cooldown_ms, tally)

    check()
    tally.check(fired=0.5)


@pytest.mark.parametrize("on", ["inside", "outside", "enters", "exits"])
def test_band_matches_pandas(make_engine: MakeEngine, on: str) -> None:
    tally = Tally()

    @props(20)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        df = ticks(data.draw)
        leaf = band_leaf(data.draw, df, on)
        for_ms, cooldown_ms = for_and_cooldown(data.draw, event_kind=leaf.event)
        compare(make_engine, df, leaf, for_ms, cooldown_ms, tally)

    check()
    tally.check(fired=0.5)


# --- 5. all / any / not --------------------------------------------------------------------


def combine(op: str, parts: list[Leaf]) -> Leaf:
    """`all` holds while every part holds and is cleared once any part is; `any` holds while
    some part holds and is cleared once every part is; `not` holds while its part does not and
    is cleared once it does. A combination with an edge in it is an edge."""
    valid = pd.concat([p.valid for p in parts], axis=1).all(axis=1)
    if op == "not":
        (part,) = parts
        return Leaf({"not": part.when}, ~part.active, part.active.copy(), valid)
    act = pd.concat([p.active for p in parts], axis=1)
    clr = pd.concat([p.cleared for p in parts], axis=1)
    if op == "all":
        active, cleared = act.all(axis=1), clr.any(axis=1)
    else:
        active, cleared = act.any(axis=1), clr.all(axis=1)
    when = {op: [p.when for p in parts]}
    return Leaf(when, active, cleared, valid, event=any(p.event for p in parts))


@pytest.mark.parametrize("shape", ["all", "any", "not all", "not any", "all with a crossing"])
def test_combinations_match_pandas(make_engine: MakeEngine, shape: str) -> None:
    tally = Tally()

    @props(30 if shape == "all with a crossing" else 20)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        units = draw(st.sampled_from([4, 10, 20]), label="window in 30s units")
        df = gapped_ticks(draw, units)
        if shape == "all with a crossing":
            direction = draw(st.sampled_from(["up", "down", "any"]), label="direction")
            parts = [crosses_leaf(draw, df, direction), threshold_leaf(draw, df, often=True)]
            leaf = combine("all", parts)
        else:
            often = shape.endswith("all")  # both parts must hold at once: each holds often
            on = st.sampled_from(["inside", "outside"])
            makers = {
                "threshold": lambda: threshold_leaf(draw, df, often),
                "pct_move": lambda: pct_move_leaf(draw, df, units * 30 * SEC, often),
                "band": lambda: band_leaf(draw, df, draw(on, label="on"), often),
            }
            kinds = draw(st.permutations(list(makers)), label="kinds")[:2]
            leaf = combine(shape.split()[-1], [makers[k]() for k in kinds])
            if shape.startswith("not"):
                leaf = combine("not", [leaf])
        for_ms, cooldown_ms = for_and_cooldown(draw, event_kind=leaf.event)
        compare(make_engine, df, leaf, for_ms, cooldown_ms, tally)

    check()
    # a crossing on a tick where the threshold also holds is the rarest of these
    tally.check(fired=0.15 if shape == "all with a crossing" else 0.3)


# --- 6. expr with window functions ---------------------------------------------------------


def spaced_ticks(draw: Draw, window_ms: int, falls: bool) -> pd.DataFrame:
    """Ticks 5 s to 1 min apart, in 5 s steps so that a sample exactly W before now (the edge of
    (now - W, now]) is common, and a few gaps of one to two windows (the buffer drains to the
    current sample, so min_samples holds the condition back again)."""
    n = draw(st.integers(10, 120), label="ticks")
    w = window_ms // (5 * SEC)
    t = times(draw, n, (1, 12), [w - 1, w, w + 1, 2 * w], 5 * SEC)
    # z < -1.5 mostly takes a sharp fall
    p = walk(draw, n, 100.0, FALLS, min_jumps=1) if falls else walk(draw, n, 100.0)
    return pd.DataFrame({"sym": "NVDA", "t": t, "p": p})


@pytest.mark.parametrize("fn", ["zscore", "sma"])
def test_expr_window_functions_match_pandas_rolling(make_engine: MakeEngine, fn: str) -> None:
    """`zscore(price(NVDA), W) < -1.5` and `sma(price(NVDA), W) > price(NVDA)`.

    expr.py: samples in (now - W, now], the current one included; None until 5 samples;
    stdev is the sample (n - 1) one; zscore is None while stdev is 0. That is pandas
    `rolling(W)` (closed="right") with min_periods=5 and ddof=1. Samples within one W/1000
    bucket coalesce in the engine; ticks here are at least 5 s apart and W <= 30m (buckets of
    at most 1.8 s), so no two ticks share a bucket and every tick is its own sample.

    Prices are multiples of 0.25 and the engine's running sums start from the first sample,
    so the sma comparison is exact. zscore goes through a square root and two different
    summation orders, so an example where some z is within 1e-9 of -1.5 is discarded: there the
    two floating-point answers may legitimately differ in the last bit.
    """
    tally = Tally()

    @props(40)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        draw = data.draw
        minutes = draw(st.sampled_from([5, 10, 30] if fn == "zscore" else [3, 5, 10]))
        window_ms = minutes * MIN
        df = spaced_ticks(draw, window_ms, falls=fn == "zscore")
        p = df.set_index(pd.to_datetime(df.t, unit="ms")).p
        roll = p.rolling(f"{window_ms}ms", closed="right", min_periods=5)
        mean, std = roll.mean(), roll.std(ddof=1)
        flat = roll.max() == roll.min()
        if fn == "zscore":
            text = f"zscore(price(NVDA), {minutes}m) < -1.5"
            z = ((p - mean) / std).where(~flat)
            assume(not ((z + 1.5).abs() < 1e-9).any())
            active, valid = z < -1.5, z.notna()
        else:
            text = f"sma(price(NVDA), {minutes}m) > price(NVDA)"
            active, valid = mean > p, mean.notna()
        on_ticks = [pd.Series(x.to_numpy(), df.index) for x in (active, ~active, valid)]
        leaf = Leaf({"expr": text}, *on_ticks)
        for_ms, cooldown_ms = for_and_cooldown(draw)
        compare(make_engine, df, leaf, for_ms, cooldown_ms, tally)

    check()
    tally.check(fired=0.3, resolved=0.2)
