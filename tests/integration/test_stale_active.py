"""Session-aware staleness and `active:` windows, through the real engine and evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.config import load_config
from daemon.events import Tick
from daemon.rules.compile import Plan
from daemon.rules.runner import Evaluator
from daemon.store.keys import Keys
from daemon.store.state import StateStore
from daemon.store.streams import StreamStore
from tests.conftest import MakeEngine
from tests.unit.test_engine import MIN, feed, ny

STALE = """\
rules:
  - name: nvda-silent
    when: {stale: {symbols: NVDA, after: 5m}}
    channels: [console]
"""


def told(out: list[AlertEvent]) -> list[tuple[str, str]]:
    return [(a.state, a.time_ny.strftime("%a %H:%M")) for a in out]


def evaluator(redis: Redis, keys: Keys, plan: Plan, **options: Any) -> Evaluator:
    """An evaluator on `redis` under `keys`, as the daemon builds one."""
    return Evaluator(StreamStore(redis, keys), StateStore(redis, keys), plan, **options)


def test_silence_during_the_session_fires_and_a_tick_resolves_it(make_engine: MakeEngine) -> None:
    e = make_engine(STALE)
    t = ny(2026, 3, 16, 10, 0)  # a Monday, regular session
    ticks = [Tick("NVDA", t, 100.0)] + [Tick("MSFT", t + i * MIN, 400.0) for i in range(1, 8)]
    ticks.append(Tick("NVDA", t + 8 * MIN, 101.0))
    assert told(feed(e, ticks)) == [("firing", "Mon 10:05"), ("resolved", "Mon 10:08")]


def test_silence_after_the_close_and_before_the_open_is_not_an_outage(
    make_engine: MakeEngine,
) -> None:
    e = make_engine(STALE)
    close = ny(2026, 3, 16, 16, 0)
    ticks = [Tick("NVDA", close - MIN, 100.0)]
    ticks += [Tick("MSFT", close + i * 10 * MIN, 400.0) for i in range(1, 12)]  # evening
    open_ = ny(2026, 3, 17, 9, 30)
    ticks += [Tick("MSFT", open_ + i * MIN, 400.0) for i in range(0, 7)]  # next morning
    # nothing in the evening; the next day's clock starts at the open: stale at 09:35
    assert told(feed(e, ticks)) == [("firing", "Tue 09:35")]


def test_on_clock_fires_with_no_tick_at_all(make_engine: MakeEngine) -> None:
    e = make_engine(STALE)
    t = ny(2026, 11, 25, 11, 0)
    feed(e, [Tick("NVDA", t, 100.0)])
    assert e.on_clock(t + 4 * MIN) == []
    assert told(e.on_clock(t + 6 * MIN)) == [("firing", "Wed 11:06")]
    # Thanksgiving: the market is closed, silence is expected (and the firing one resolves)
    assert told(e.on_clock(ny(2026, 11, 26, 12, 0))) == [("resolved", "Thu 12:00")]
    e2 = make_engine(STALE)
    assert e2.on_clock(ny(2026, 11, 26, 12, 0)) == []


def test_active_window_limits_evaluation_to_the_regular_session(make_engine: MakeEngine) -> None:
    e = make_engine("""\
rules:
  - name: rth-only
    when: {threshold: {symbols: NVDA, above: 100}}
    active: {sessions: [regular], weekdays: [mon, tue, wed, thu, fri]}
    channels: [console]
""")
    out = feed(e, [
        Tick("NVDA", ny(2026, 3, 16, 9, 0), 105.0),   # pre-market: not evaluated
        Tick("NVDA", ny(2026, 3, 16, 9, 31), 106.0),  # regular: fires
    ])  # fmt: skip
    assert told(out) == [("firing", "Mon 09:31")]


async def test_evaluator_clock_check_commits_stale_alerts(
    tmp_path: Path, redis: Redis, keys: Keys
) -> None:
    (tmp_path / "alerts.yaml").write_text(
        "channels: {console: {type: console}}\nrules:\n  - name: nvda-silent\n"
        "    when: {stale: {symbols: NVDA, after: 5m}}\n    channels: [console]\n"
    )
    ev = evaluator(redis, keys, load_config(tmp_path / "alerts.yaml", env={}).compile())
    await ev.restore()
    t = ny(2026, 3, 16, 10, 0)
    ev.engine.on_tick(Tick("NVDA", t, 100.0))
    ev.stats.last_event_ms = t
    assert await ev.check_clock(t + 2 * MIN) == []
    fired = await ev.check_clock(t + 6 * MIN)
    assert [a.key for a in fired] == ["nvda-silent{symbol=NVDA}"]
    rows = await redis.xrange(keys.outbox)
    assert len(rows) == 1 and "nvda-silent" in rows[0][1]["alert"]
    assert await redis.hget(keys.alert_state, "nvda-silent{symbol=NVDA}") is not None
    # a replay of old data (ticks arriving with event time far behind the wall clock) never
    # trips the clock check
    old = Tick("NVDA", t - 86_400_000, 100.0)
    await ev.process([(keys.ticks, "1-1", old.to_fields())])
    assert await ev.check_clock(t + 60 * MIN) == []


async def test_a_live_feed_silent_longer_than_the_replay_cutoff_is_still_checked(
    tmp_path: Path, redis: Redis, keys: Keys
) -> None:
    (tmp_path / "alerts.yaml").write_text(
        "channels: {console: {type: console}}\nrules:\n  - name: nvda-silent\n"
        "    when: {stale: {symbols: NVDA, after: 20m}}\n    channels: [console]\n"
    )
    t = ny(2026, 3, 16, 10, 0)
    now = [t + 150]  # the tick arrives 150 ms after its event time: a live feed
    ev = evaluator(redis, keys, load_config(tmp_path / "alerts.yaml", env={}).compile(),
                   clock=lambda: now[0])  # fmt: skip
    await ev.restore()
    await ev.process([(keys.ticks, "1-1", Tick("NVDA", t, 100.0).to_fields())])
    now[0] = t + 19 * MIN
    assert await ev.check_clock() == []
    now[0] = t + 21 * MIN  # 21 minutes of silence: more than the 15 that tell a replay apart
    assert [a.key for a in await ev.check_clock()] == ["nvda-silent{symbol=NVDA}"]


async def test_a_daemon_started_mid_session_does_not_report_every_feed_overdue(
    tmp_path: Path, redis: Redis, keys: Keys
) -> None:
    (tmp_path / "alerts.yaml").write_text(
        "channels: {console: {type: console}}\nrules:\n  - name: silent\n"
        "    when: {stale: {symbols: [NVDA, MSFT], after: 5m}}\n    channels: [console]\n"
    )
    ev = evaluator(redis, keys, load_config(tmp_path / "alerts.yaml", env={}).compile())
    await ev.restore()
    started = ev.engine.market.first_ms
    assert started > 0
    # whatever the wall-clock session, one minute after start nothing can be overdue
    assert await ev.check_clock(started + MIN) == []
    # and the silence is measured from the start: on a session day, 6 minutes later it is
    monday_noon = ny(2026, 3, 16, 12, 0)
    ev = evaluator(redis, keys, ev.plan)
    await ev.restore()
    ev.engine.market.first_ms = monday_noon
    fired = await ev.check_clock(monday_noon + 6 * MIN)
    assert sorted(a.key for a in fired) == ["silent{symbol=MSFT}", "silent{symbol=NVDA}"]
