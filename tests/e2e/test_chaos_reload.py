"""Chaos: a rule edit lands in the middle of a 5,000 ticks/s burst.

No tick may be dropped, an unchanged rule keeps its firing alert (no second FIRING, no invented
RESOLVED), and the edited rule is judged on its new definition from the next batch on.
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.app import Daemon
from daemon.config import load_config
from daemon.events import Tick
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.chaos import ChaosTable
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
RULES = """\
rules:
  - name: steady
    when: {{threshold: {{symbols: NVDA, above: 100}}}}
    channels: [console]
  - name: edited
    when: {{threshold: {{symbols: AAPL, above: {level}}}}}
    channels: [console]
"""
RATE, SECONDS = 5_000, 4


async def test_a_rule_edit_during_a_5000_ticks_per_second_burst(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys, chaos: ChaosTable,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(
        f'redis: {{url: "{redis_url}", prefix: {keys.prefix}}}\n'
        "symbols: [NVDA, AAPL]\nchannels: {console: {type: console}}\ninclude: [rules/*.yaml]\n"
    )
    (tmp_path / "rules" / "r.yaml").write_text(RULES.format(level=200))
    daemon = Daemon(load_config(tmp_path / "alerts.yaml", env={}), console=io.StringIO(),
                    watch=True)  # fmt: skip
    store = StreamStore(redis, keys)
    await daemon.start()
    written = 0
    try:
        ev = daemon.evaluator
        assert ev is not None
        await asyncio.sleep(0.5)  # the watcher is up
        t0_ms = int(time.time() * 1000) - 60_000
        start = time.monotonic()
        step = 0.01  # 50 ticks every 10 ms
        edited_at = None
        for i in range(int(SECONDS / step)):
            batch = []
            for j in range(RATE // 100):
                n = written + j
                sym = "NVDA" if n % 2 == 0 else "AAPL"
                batch.append(Tick(sym, t0_ms + n, 101.0 if sym == "NVDA" else 160.0))
            await store.write(batch)
            written += len(batch)
            if edited_at is None and i * step >= SECONDS / 2:
                (tmp_path / "rules" / "r.yaml").write_text(RULES.format(level=150))
                edited_at = written
            await asyncio.sleep(max(0.0, start + (i + 1) * step - time.monotonic()))
        rate = written / (time.monotonic() - start)
        await wait_until(lambda: ev.stats.ticks >= written, 30, "every tick judged")
        await wait_until(lambda: any(r.ok for r in daemon.reloads), 10, "the reload applied")
        up = not daemon.failed.is_set()
    finally:
        await daemon.stop()
    alerts = [AlertEvent.from_json(f["alert"]) for _, f in await redis.xrange(keys.outbox)]
    told = [a.id for a in alerts]
    chaos.record(
        f"a rule edit mid-burst at {rate:,.0f} ticks/s ({written:,} ticks, all judged)",
        ["steady{symbol=NVDA}#1:firing", "edited{symbol=AAPL}#1:firing"],
        told,
        up=up and ev.stats.ticks == written,
    )
    assert len(told) == 2, told  # nothing else: no resolve of the unchanged rule
    assert rate > 0.8 * RATE, rate
