"""The evaluator against real Redis: atomic batches, crash replay, restored state, warm windows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.config import load_config
from daemon.events import Headline, Tick
from daemon.rules.compile import Plan
from daemon.rules.runner import Evaluator
from daemon.store.keys import Keys
from daemon.store.state import StateStore
from daemon.store.streams import StreamStore
from tests.helpers import run_until_idle

CONFIG = """
groups: {{megas: [NVDA, MSFT]}}
channels: {{console: {{type: console}}}}
rules:
  - name: nvda-high
    when: {{threshold: {{symbols: NVDA, above: 100, clear: 95}}}}
    for: {for_}
    channels: [console]
  - name: fast-move
    when: {{pct_move: {{symbols: megas, window: 10m, up: 5}}}}
    channels: [console]
  - name: capex
    when: {{headline: {{symbols: megas, any_of: [capex]}}}}
    channels: [console]
"""
MIN = 60_000
T0 = 1_775_000_000_000  # 2026-03-31


def plan_for(tmp_path: Path, for_: str = "0"):  # type: ignore[no-untyped-def]
    p = tmp_path / "alerts.yaml"
    p.write_text(CONFIG.format(for_=for_))
    return load_config(p, env={}).compile()


def evaluator(redis: Redis, keys: Keys, plan: Plan, **options: Any) -> Evaluator:
    """An evaluator on `redis` under `keys`, as the daemon builds one."""
    return Evaluator(StreamStore(redis, keys), StateStore(redis, keys), plan, **options)


async def outbox(redis: Redis, keys: Keys) -> list[AlertEvent]:
    rows = await redis.xrange(keys.outbox)
    return [AlertEvent.from_json(f["alert"]) for _, f in rows]


async def drain(ev: Evaluator) -> None:
    """Run the evaluator until it has consumed everything, then stop it."""
    await run_until_idle(ev.run, ev.idle)


async def test_batch_commits_state_alerts_and_acks_together(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    store = StreamStore(redis, keys)
    await store.write([Tick("NVDA", T0, 99.0), Tick("NVDA", T0 + MIN, 101.0)])
    ev = evaluator(redis, keys, plan_for(tmp_path))
    await drain(ev)
    alerts = await outbox(redis, keys)
    assert [(a.key, a.state, a.value) for a in alerts] == [
        ("nvda-high{symbol=NVDA}", "firing", 101.0)
    ]
    state = await redis.hget(keys.alert_state, "nvda-high{symbol=NVDA}")
    assert state is not None and '"state":"firing"' in state
    pending = await redis.xpending(keys.ticks, keys.EVAL_GROUP)
    assert pending["pending"] == 0


async def test_crash_before_commit_replays_the_batch_once(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    store = StreamStore(redis, keys)
    await store.write([Tick("NVDA", T0, 99.0), Tick("NVDA", T0 + MIN, 101.0)])
    plan = plan_for(tmp_path)
    crashed = evaluator(redis, keys, plan)
    await crashed.restore()
    # read the batch (it is now pending for this consumer) and "crash" before processing it
    entries = await crashed.streams.read_group(
        (keys.ticks, keys.news), keys.EVAL_GROUP, crashed.consumer, count=100, block_ms=100
    )
    assert len(entries) == 2
    assert await redis.xlen(keys.outbox) == 0

    restarted = evaluator(redis, keys, plan)
    await drain(restarted)
    alerts = await outbox(redis, keys)
    assert [(a.key, a.state) for a in alerts] == [("nvda-high{symbol=NVDA}", "firing")]

    # a third start finds nothing left to do and emits nothing more
    await drain(evaluator(redis, keys, plan))
    assert len(await outbox(redis, keys)) == 1


async def test_restart_keeps_pending_and_firing_state(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    store = StreamStore(redis, keys)
    plan = plan_for(tmp_path, for_="5m")
    await store.write([Tick("NVDA", T0, 101.0), Tick("NVDA", T0 + 2 * MIN, 102.0)])
    await drain(evaluator(redis, keys, plan))
    assert await redis.xlen(keys.outbox) == 0  # pending, 2 of 5 minutes held

    # restart: the pending clock continues from T0, so the 5-minute mark fires
    await store.write([Tick("NVDA", T0 + 5 * MIN, 103.0)])
    await drain(evaluator(redis, keys, plan))
    alerts = await outbox(redis, keys)
    assert [(a.state, a.ts_ms) for a in alerts] == [("firing", T0 + 5 * MIN)]

    # restart again while firing: still above 95, so no re-fire; below 95 resolves once
    await store.write([Tick("NVDA", T0 + 6 * MIN, 99.0), Tick("NVDA", T0 + 7 * MIN, 94.0)])
    await drain(evaluator(redis, keys, plan))
    alerts = await outbox(redis, keys)
    assert [a.state for a in alerts] == ["firing", "resolved"]
    assert alerts[0].seq == alerts[1].seq == 1


async def test_windows_are_warmed_from_history_after_restart(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    store = StreamStore(redis, keys)
    plan = plan_for(tmp_path)
    await store.write([Tick("MSFT", T0 + i * MIN, 100.0 + i * 0.5) for i in range(5)])
    await drain(evaluator(redis, keys, plan))
    assert await redis.xlen(keys.outbox) == 0  # +2% so far

    # after a restart the window must still know MSFT was 100.0 ten minutes before
    restarted = evaluator(redis, keys, plan)
    await store.write([Tick("MSFT", T0 + 10 * MIN, 105.5)])
    await drain(restarted)
    assert restarted.stats.warmed == 5
    alerts = await outbox(redis, keys)
    assert [(a.key, round(a.value or 0, 6)) for a in alerts] == [
        ("fast-move{symbol=MSFT}", round((105.5 / 100.0 - 1) * 100, 6))
    ]


async def test_headlines_and_ticks_are_evaluated_and_malformed_entries_skipped(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    store = StreamStore(redis, keys)
    await store.write(
        [Tick("NVDA", T0, 50.0)],
        [Headline("h1", T0, "MSFT boosts capex again", symbols=("MSFT",))],
    )
    await redis.xadd(keys.ticks, {"s": "NVDA", "t": "not-a-time", "p": "1"})
    ev = evaluator(redis, keys, plan_for(tmp_path))
    await drain(ev)
    alerts = await outbox(redis, keys)
    assert [(a.key, a.state) for a in alerts] == [("capex{symbol=MSFT}", "firing")]
    assert (await redis.xpending(keys.ticks, keys.EVAL_GROUP))["pending"] == 0
    assert ev.stats.headlines == 1


async def test_expression_windows_are_rebuilt_from_history_after_restart(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    p = tmp_path / "alerts.yaml"
    p.write_text(
        "channels: {console: {type: console}}\nrules:\n  - name: sma-high\n"
        '    when: {expr: "sma(price(NVDA), 10m, 2) > 104"}\n    channels: [console]\n'
    )
    plan = load_config(p, env={}).compile()
    store = StreamStore(redis, keys)
    await store.write([Tick("NVDA", T0 + i * MIN, 100.0 + i) for i in range(5)])  # 100..104
    await drain(evaluator(redis, keys, plan))
    assert await redis.xlen(keys.outbox) == 0  # mean 102: not above 104

    # restart: the 10-minute mean must include the five earlier prices, not start afresh
    await store.write([Tick("NVDA", T0 + 5 * MIN, 130.0)])
    await drain(evaluator(redis, keys, load_config(p, env={}).compile()))
    alerts = await outbox(redis, keys)
    expected_mean = (100 + 101 + 102 + 103 + 104 + 130) / 6  # 106.67 > 104
    assert [(a.key, round(a.value or 0, 6)) for a in alerts] == [
        ("sma-high", round(expected_mean, 6))
    ]


async def test_a_ytd_rule_without_its_year_start_price_is_reported_once(
    redis: Redis, keys: Keys, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p = tmp_path / "alerts.yaml"
    p.write_text(
        "channels: {console: {type: console}}\nrules:\n  - name: ytd\n"
        "    when: {spread: {a: XMAG, b: MAGS, as: return, since: ytd, below: 8}}\n"
        "    channels: [console]\n"
    )
    ev = evaluator(redis, keys, load_config(p, env={}).compile())
    ev.anchor_check_every = 2
    ev._next_anchor_check = 2
    store = StreamStore(redis, keys)
    await store.write([Tick(s, T0 + i * MIN, 30.0) for i in range(3) for s in ("XMAG", "MAGS")])
    with caplog.at_level(logging.WARNING, logger="tickwatch.evaluator"):
        await drain(ev)
        await store.write([Tick("XMAG", T0 + 9 * MIN, 30.0)] * 3)
        await drain(ev)
    said = [r.message for r in caplog.records if "year-start price" in r.message]
    assert len(said) == 1 and "no 2026 year-start price yet for MAGS, XMAG" in said[0]


async def test_a_new_plan_takes_effect_while_the_loop_waits_for_ticks(
    redis: Redis, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload on a quiet stream applies at once, not when the blocked read times out (with a
    20 s block here, waiting for it would miss the 5 s deadline); the next tick is judged on
    the new plan, and a state kept across the switch stays."""
    import asyncio

    import daemon.rules.runner as runner

    monkeypatch.setattr(runner, "BLOCK_MS", 20_000)
    store = StreamStore(redis, keys)
    await store.write([Tick("NVDA", T0, 101.0)])
    ev = evaluator(redis, keys, plan_for(tmp_path))
    task = asyncio.create_task(ev.run())
    try:
        await asyncio.wait_for(_until(lambda: ev.stats.alerts == 1), 10)
        assert len(await outbox(redis, keys)) == 1  # committed; the loop now blocks in Redis
        ev.use_plan(plan_for(tmp_path, for_="5m"), keep_rules={"fast-move", "capex"})
        await asyncio.wait_for(ev.plan_applied.wait(), 5)
        assert any(i.policy.for_ms == 5 * MIN for i in ev.plan.instances if i.rule == "nvda-high")
        await store.write([Tick("NVDA", T0 + MIN, 90.0), Tick("NVDA", T0 + 2 * MIN, 102.0)])
        await asyncio.wait_for(_until(lambda: ev.stats.ticks == 3), 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # the changed rule started afresh: its firing was retired, the new one waits 5 m (pending)
    states = [(a.key, a.state) for a in await outbox(redis, keys)]
    assert states[0] == ("nvda-high{symbol=NVDA}", "firing")
    assert ("nvda-high{symbol=NVDA}", "firing") not in states[1:]
    assert ev.engine.states["nvda-high{symbol=NVDA}"].state == "pending"


async def _until(cond) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    while not cond():
        await asyncio.sleep(0.01)
