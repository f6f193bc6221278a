"""Chaos: the wall clock steps forward an hour and back while ticks flow. Event time drives the
rules, the clock's timers recover; delivery's waits and time budget do not jump with it.

The daemon runs in process on a tick stream, its evaluator's wall clock (the system clock it
reads by default, `runner._wall_ms`) simulated: New York session time running at real speed,
plus a step the test sets. The expectation is the pure driver on the same ticks, on true time.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.alerts import NEW_YORK, AlertEvent
from daemon.app import Daemon
from daemon.config import load_config
from daemon.events import Tick, dt_to_ms
from daemon.notify.base import Notifier
from daemon.notify.delivery import Delivery
from daemon.notify.retry import Clock, RetryPolicy
from daemon.rules import runner
from daemon.rules.driver import Driver, simulate
from daemon.rules.runner import Evaluator
from daemon.store.keys import Keys
from daemon.store.state import StateStore
from daemon.store.streams import StreamStore
from tests.chaos import ChaosTable
from tests.e2e.test_e2e import slack_alert_ids
from tests.e2e.test_retry_after import queue, webhook_channel
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.webhook_server import FakeWebhookServer
from tests.helpers import wait_until
from tests.integration.test_delivery import Running, alert, settings

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
HOUR = 3_600_000
#: Monday 2026-03-16 11:00 in New York: the regular session is open, and stays open an hour on.
BASE_MS = dt_to_ms(datetime(2026, 3, 16, 11, 0, tzinfo=NEW_YORK))
#: The evaluator's clock steps this often here (the daemon's 5 s, shortened for the test).
CLOCK_MS = 200
STALE_AFTER_MS = 2_000
RULES = f"""\
rules:
  - name: nvda-over
    when: {{threshold: {{symbols: NVDA, above: 100}}}}
    channels: [desk]
  - name: nvda-silent
    when: {{stale: {{symbols: NVDA, after: {STALE_AFTER_MS}ms}}}}
    channels: [desk]
"""


class SteppedWall:
    """Simulated session time at the pace of `time.monotonic`, plus `step_ms`: the wall clock
    as the evaluator reads it. `true_ms` is the time the feed stamps its ticks with."""

    def __init__(self, base_ms: int) -> None:
        self.base_ms = base_ms
        self.m0 = time.monotonic()
        self.step_ms = 0

    def true_ms(self) -> int:
        return self.base_ms + int((time.monotonic() - self.m0) * 1000)

    def __call__(self) -> int:
        return self.true_ms() + self.step_ms


def alerts_yaml(tmp: Path, redis_url: str, keys: Keys, slack: FakeSlackServer) -> Path:
    (tmp / "alerts.yaml").write_text(f"""\
redis: {{url: "{redis_url}", prefix: {keys.prefix}}}
symbols: [NVDA]
max_alert_age: 36500d   # the alerts are dated March 2026 by the simulated clock
channels:
  desk: {{type: slack, token: {slack.token}, channel: "#desk", base_url: "{slack.base_url}",
          rate_limit: 10000}}
{RULES}""")
    return tmp / "alerts.yaml"


async def test_wall_clock_stepped_forward_and_back_an_hour_event_time_drives_rules(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys, slack_server: FakeSlackServer,
    chaos: ChaosTable, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="tickwatch")
    wall = SteppedWall(BASE_MS)
    monkeypatch.setattr(runner, "_wall_ms", wall)  # the system wall clock, as the daemon reads it
    monkeypatch.setattr(runner, "CLOCK_EVERY_S", CLOCK_MS / 1000)
    cfg = load_config(alerts_yaml(tmp_path, redis_url, keys, slack_server), env={})
    daemon = Daemon(cfg, console=io.StringIO(), watch=False)
    store = StreamStore(redis, keys)
    ticks: list[Tick] = []
    steps: list[int] = []  # the wall step in force at each clock step the evaluator took
    await daemon.start()
    try:
        ev = daemon.evaluator
        assert ev is not None
        take_step = ev.check_clock

        async def spy(now_ms: int | None = None) -> list[AlertEvent]:
            step = wall.step_ms
            out = await take_step(now_ms)
            steps.append(step)
            return out

        ev.check_clock = spy  # type: ignore[method-assign]

        async def clock_steps(step_ms: int, n: int = 2) -> None:
            mark = len(steps)
            await wait_until(lambda: steps[mark:].count(step_ms) >= n, 10,
                             f"{n} clock steps at a wall step of {step_ms} ms")  # fmt: skip

        async def feed(prices: list[float]) -> None:
            for price in prices:
                ts = max(wall.true_ms(), ticks[-1].ts_ms + 1 if ticks else 0)
                ticks.append(Tick("NVDA", ts, price))
                await store.write([ticks[-1]])
                await wait_until(lambda: ev.stats.ticks == len(ticks), 10, "the tick judged")

        crossing = [101.0, 99.0, 101.0, 99.0, 101.0, 99.0]  # three firings, three resolves
        await clock_steps(0)
        first_ms = ev.engine.market.first_ms
        await feed(crossing)
        for step in (HOUR, 0):  # forward an hour, ticks flowing; then back, ticks flowing
            wall.step_ms = step
            await clock_steps(step)  # the clock has stepped on the new wall time...
            await feed(crossing)  # ...before the ticks come
            await clock_steps(step)
        last_tick_ms = ticks[-1].ts_ms

        async def stale_told() -> list[AlertEvent]:
            rows = await redis.xrange(keys.outbox, min=f"({quiet_from}")
            got = [AlertEvent.from_json(f["alert"]) for _, f in rows]
            return [a for a in got if a.rule == "nvda-silent" and a.state == "firing"]

        # the feed goes quiet: the silence timer still runs on the clock after the step back
        quiet_from = (await redis.xinfo_stream(keys.outbox))["last-generated-id"]
        deadline = asyncio.get_running_loop().time() + 10
        while not (fired := await stale_told()):
            assert asyncio.get_running_loop().time() < deadline, (
                f"no stale alert {STALE_AFTER_MS} ms into the silence after the step back: "
                "the clock's timers stalled"
            )
            await asyncio.sleep(0.05)
        quiet_until = fired[0].ts_ms  # the clock step that told it
        await feed([101.0])  # back: the stale alert resolves, the threshold fires again
        await wait_until(lambda: ev.idle.is_set(), 10, "the evaluator idle")
        rows = await redis.xrange(keys.outbox)
        daemon_told = [AlertEvent.from_json(f["alert"]) for _, f in rows]

        # the pure driver on the same ticks, its clock on true time up to where the daemon's
        # told the stale alert (a stale alert told early would not be in it), then the last tick
        driver = Driver(cfg.compile())
        want = simulate(driver, ticks[:-1], start_ms=first_ms, until_ms=quiet_until,
                        clock_every_ms=CLOCK_MS)  # fmt: skip
        want += driver.feed(ticks[-1:])
        want_ids = [a.id for a in want]
        await wait_until(lambda: Counter(slack_alert_ids(slack_server)) >= Counter(want_ids),
                         20, "every transition delivered to Slack")  # fmt: skip
        up = not daemon.failed.is_set()
    finally:
        await daemon.stop()

    # the scenario is what it says: several tick transitions, and a timer that had to run
    assert sum(a.rule == "nvda-over" for a in want) >= 3 * len(crossing), want_ids
    assert steps.count(HOUR) >= 2 and any(a.rule == "nvda-silent" for a in want), want_ids
    # exactly the pure driver's transitions: none lost, none twice, no spurious stale alert
    assert Counter(a.id for a in daemon_told) == Counter(want_ids), (
        sorted(Counter(a.id for a in daemon_told) - Counter(want_ids)),
        sorted(Counter(want_ids) - Counter(a.id for a in daemon_told)),
    )
    # tick transitions at their event time, whatever the wall clock said
    by_tick = sorted((a.id, a.ts_ms) for a in daemon_told if a.rule == "nvda-over")
    assert by_tick == sorted((a.id, a.ts_ms) for a in want if a.rule == "nvda-over")
    # the stale alert neither early nor an hour late: within two clock steps of its due time
    [stale] = [a for a in daemon_told if a.rule == "nvda-silent" and a.state == "firing"]
    due = last_tick_ms + STALE_AFTER_MS
    assert due <= stale.ts_ms <= due + 2 * CLOCK_MS + 500, stale.ts_ms - due
    said = [r.getMessage() for r in caplog.records if "wall clock stepped" in r.getMessage()]
    assert [s.split(";")[0] for s in said] == [
        "the wall clock stepped forward by 1h",
        "the wall clock stepped back by 1h",
    ], said
    chaos.record(
        "wall clock stepped +1 h then -1 h mid-stream (event time rules)",
        want_ids,
        slack_alert_ids(slack_server),
        up=up,
        note=f"{len(want_ids)} driver transitions; stale fired {stale.ts_ms - due} ms after due",
    )


async def test_a_small_step_back_does_not_stall_the_silence_timer(
    tmp_path: Path, redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """+5 min (the feed still counts as live: the stale alert fires, as the wall clock says),
    then back: staleness is judged again at once, not once the clock passes where it was, and
    the next firing is told (its last notification, dated 5 min ahead, is no cooldown)."""
    (tmp_path / "alerts.yaml").write_text(
        "symbols: [NVDA]\nchannels: {desk: {type: console}}\n" + RULES
    )
    plan = load_config(tmp_path / "alerts.yaml", env={}).compile()
    wall = SteppedWall(BASE_MS)
    monkeypatch.setattr(runner, "_wall_ms", wall)
    ev = Evaluator(StreamStore(redis, keys), StateStore(redis, keys), plan)
    await ev.restore()
    a = Tick("NVDA", wall.true_ms(), 99.0)
    await ev.process([(keys.ticks, "1-1", a.to_fields())])
    wall.step_ms = 5 * 60_000
    ahead = await ev.check_clock()
    assert [x.rule for x in ahead] == ["nvda-silent"]  # 5 min of silence, by the wall clock
    wall.step_ms = 0
    b = Tick("NVDA", max(wall.true_ms(), a.ts_ms + 1), 99.0)
    await ev.process([(keys.ticks, "1-2", b.to_fields())])  # the step back is noticed here
    quiet_ms = b.ts_ms + STALE_AFTER_MS + 100
    pure = Driver(plan)
    pure.feed([a])
    pure.feed([b])
    want = [(x.rule, x.state) for x in pure.clock(quiet_ms)]
    assert want == [("nvda-silent", "firing")]
    assert [(x.rule, x.state) for x in await ev.check_clock(quiet_ms)] == want


class SteppingClock(Clock):
    """The worker's clock: each sleep passes on the monotonic clock, and the wall clock steps
    by the next of `steps` (seconds) on top of it."""

    def __init__(self, steps: list[float]) -> None:
        self.wall = time.time()
        self.mono = 0.0
        self.steps = steps
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        self.wall += seconds + (self.steps.pop(0) if self.steps else 0.0)
        await asyncio.sleep(0)


async def test_a_wall_step_during_retries_neither_spends_nor_stretches_the_budget(
    redis: Redis, keys: Keys, webhook_server: FakeWebhookServer
) -> None:
    """Backoff between three 500s while the wall clock steps +1 h, then -1 h: with a budget of
    1 h the message must not be dead-lettered as "still failing 1h after it was queued", and
    no wait is made zero (or an hour long) by the step."""
    clock = SteppingClock([HOUR / 1000, -HOUR / 1000])
    webhook_server.fail_with(500, times=3)
    nots: dict[str, Notifier] = {"hook": webhook_channel(webhook_server)}
    await queue(redis, keys, alert(1, ("hook",)))
    d = Delivery(redis, keys, settings(nots), nots, clock=clock, policy=RetryPolicy())
    run = Running(d)
    try:
        await run.settled(redis, keys)
    finally:
        await run.stop()
    assert d.dead == 0 and d.sent == {"hook": 1}, await redis.xrange(keys.deadletter)
    assert [r.status for r in webhook_server.requests] == [500, 500, 500, 200]
    assert len(clock.sleeps) == 3 and all(0.25 <= s <= 2.0 for s in clock.sleeps), clock.sleeps
