"""`tickwatch test` runs the daemon's driver: a rule the clock decides (no data, stale) tells the
same transitions at the same times in a rule test as in the evaluator on real Redis."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.config import load_config
from daemon.events import Tick
from daemon.rules.driver import CLOCK_EVERY_MS
from daemon.rules.runner import Evaluator
from daemon.ruletests import load_suite, run_case, run_suite
from daemon.store.keys import Keys
from daemon.store.state import StateStore
from daemon.store.streams import StreamStore

ALERTS = """\
channels: {console: {type: console}}
symbols: [NVDA, XMAG, MAGS]
include: [rules/*.yaml]
"""
RULES = """\
rules:
  - name: nvda-up
    when: {threshold: {symbols: NVDA, above: 100}}
    on_no_data: alerting
    no_data_after: 5m
    channels: [console]
  - name: ratio
    when: {spread: {a: XMAG, b: MAGS, as: ratio, below: 0.5}}
    on_no_data: ok
    stale_after: 3m
    channels: [console]
  - name: nvda-silent
    when: {stale: {symbols: NVDA, after: 7m}}
    channels: [console]
"""
# Monday 2026-03-16 10:00 New York, in the session. NVDA ticks (below 100) for 10 minutes,
# then goes silent for 20 (no data after 5m: alerting fires at 10:14; the 7m stale rule at
# 10:16), then ticks again (both resolve at 10:30). XMAG/MAGS: the ratio fires at 10:01 and
# MAGS then goes silent: 3 minutes later the ratio is no data, which stands for ok (resolves).
TESTS = """\
config: ../alerts.yaml
tests:
  - name: silence decided by the clock
    start: 2026-03-16T10:00:00-04:00
    until: 35m
    input_series:
      NVDA: "99x9 _x20 99x5"
      XMAG: "26 24x34"
      MAGS: "52 52 _x33"
    expect:
      - {at: 1m, rule: ratio, state: firing}
      - {at: 5m, rule: ratio, state: resolved}
      - {at: 14m, rule: nvda-up, state: firing}
      - {at: 16m, rule: nvda-silent, state: firing}
      - {at: 30m, rule: nvda-up, state: resolved}
      - {at: 30m, rule: nvda-silent, state: resolved}
"""


def told(alerts: list[AlertEvent]) -> list[tuple[str, str, int]]:
    return sorted((a.rule, a.state, a.ts_ms) for a in alerts)


async def test_a_rule_test_tells_what_the_daemon_tells(
    tmp_path: Path, redis: Redis, keys: Keys
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "alerts.yaml").write_text(ALERTS)
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    (tmp_path / "tests" / "t.yaml").write_text(TESTS)
    suite, problems = load_suite(tmp_path / "tests" / "t.yaml", env={})
    assert suite is not None, problems
    (result,) = run_suite(suite)
    assert result.passed, result.diff
    case = suite.cases[0]
    harness = told(run_case(suite.plan, case))

    # the daemon's evaluator on real Redis, its wall clock simulated: every 5 s it reads what
    # the feed wrote by then (each tick arriving 100 ms after its event time) and steps its clock
    now = [case.start_ms]
    cfg = load_config(tmp_path / "alerts.yaml", env={})
    store = StreamStore(redis, keys)
    ev = Evaluator(store, StateStore(redis, keys), cfg.compile(), clock=lambda: now[0])
    await ev.restore()
    ticks = sorted((e for e in case.events if isinstance(e, Tick)), key=lambda t: t.ts_ms)
    i = 0
    for t in range(case.start_ms, case.end_ms + 1, CLOCK_EVERY_MS):
        due = []
        while i < len(ticks) and ticks[i].ts_ms <= t:
            due.append(ticks[i])
            i += 1
        now[0] = t + 100
        if due:
            await store.write(due)
            entries = await ev.streams.read_group(
                (keys.ticks, keys.news), keys.EVAL_GROUP, ev.consumer, count=1000, block_ms=None
            )
            await ev.process(entries)
        await ev.check_clock(t)
    daemon = told([AlertEvent.from_json(f["alert"]) for _, f in await redis.xrange(keys.outbox)])
    assert daemon == harness
    assert {r for r, _, _ in harness} == {"nvda-up", "ratio", "nvda-silent"}
