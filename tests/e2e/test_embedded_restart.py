"""The embedded Redis is the daemon's own child: when it dies, the daemon brings it back.

SIGKILL of the server mid-replay: the daemon restarts it on the same port and data (the
append-only file), every stage resumes from its consumer group, no tick the source had written
and no alert queued for a channel is lost, and delivery goes on. Too many exits in a row stop the
daemon with exit 3 and one clear line.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import load_config
from daemon.store.connect import connect
from daemon.store.keys import Keys
from tests.chaos import ChaosTable
from tests.e2e.test_chaos import slack_bound
from tests.e2e.test_e2e import SPREAD_RULE, shipped_config, slack_alert_ids
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

pytestmark = pytest.mark.slow


async def _group(redis: Redis, stream: str, group: str) -> tuple[int, str, str]:
    """(pending, last-delivered-id, the stream's last id) for `group` on `stream`."""
    info: Any = await redis.xinfo_stream(stream)
    groups: Any = await redis.xinfo_groups(stream)
    g = next(g for g in groups if g["name"] == group)
    return int(g["pending"]), str(g["last-delivered-id"]), str(info["last-generated-id"])


async def _all_consumed(redis: Redis, keys: Keys, channels: list[str]) -> bool:
    """Every entry of every stream read and acknowledged by the stage that consumes it."""
    pairs = [(keys.ticks, keys.EVAL_GROUP), (keys.news, keys.EVAL_GROUP),
             (keys.outbox, keys.NOTIFY_GROUP)]  # fmt: skip
    pairs += [(keys.deliver(ch), keys.DELIVER_GROUP) for ch in channels]
    for stream, group in pairs:
        pending, delivered, last = await _group(redis, stream, group)
        if pending or delivered != last:
            return False
    return True


@pytest.mark.chaos
async def test_sigkill_of_the_embedded_redis_mid_replay_loses_nothing(
    repo: Path,
    tmp_path: Path,
    slack_server: FakeSlackServer,
    twilio_server: FakeTwilioServer,
    caplog: pytest.LogCaptureFixture,
    chaos: ChaosTable,
) -> None:
    caplog.set_level(logging.INFO, logger="tickwatch")
    cfg = shipped_config(repo, "", slack_server, twilio_server, TICKWATCH_REPLAY_SPEED="150000")
    assert cfg.settings.redis.url is None  # the embedded server, as a new user runs it
    cfg.settings.redis.data_dir = tmp_path / "var"
    cfg.settings.sources[0].max_gap = timedelta(seconds=0.05)
    console = io.StringIO()
    daemon = Daemon(cfg, console=console, watch=False)
    await daemon.start()
    redis: Redis | None = None
    try:
        server, delivery, evaluator = daemon.embedded, daemon.delivery, daemon.evaluator
        assert server is not None and delivery is not None and evaluator is not None
        source = daemon.sources[0]
        port, first_pid = server.port, server.pid
        assert first_pid is not None
        await wait_until(
            lambda: sum(delivery.sent.values()) >= 1 and delivery.in_flight == 0,
            what="a first alert delivered and no send in flight",
        )
        assert source.accepted < 70_000, "replay already done: not mid-scenario"
        # No await between the check and the kill: no send starts in between (a send caught
        # between the provider's answer and its marker is at-least-once's documented window).
        os.kill(first_pid, signal.SIGKILL)
        killed_at, ticks_at_kill = time.monotonic(), evaluator.stats.ticks
        await wait_until(lambda: server.pid not in (None, first_pid), 10, "a new redis-server")
        await wait_until(lambda: evaluator.stats.ticks > ticks_at_kill, 10,
                         "the evaluator to take ticks again")  # fmt: skip
        recovered_s = time.monotonic() - killed_at
        assert server.port == port and server.returncode is None
        await wait_until(
            lambda: any(
                i.startswith(SPREAD_RULE) and i.endswith(":resolved")
                for i in slack_alert_ids(slack_server)
            ),
            timeout=120,
            what="the spread alert to fire and resolve after the restart",
        )
        await wait_until(source.done.is_set, 120, "the replay to finish")
        redis = connect(server.url)
        channels = list(delivery.workers)
        deadline = time.monotonic() + 60
        while not (await _all_consumed(redis, daemon.keys, channels) and delivery.in_flight == 0):
            assert time.monotonic() < deadline, "streams not drained after the replay"
            await asyncio.sleep(0.1)
        assert not daemon.failed.is_set()
        k = daemon.keys
        in_streams = await redis.xlen(k.ticks) + await redis.xlen(k.news)
        queued = {ch: await redis.xlen(k.deliver(ch)) for ch in channels}
        # What one more batch read could have added: a write Redis executed but whose reply
        # the kill cut off (the source did not count it, its cursor moved on with it).
        batch = cfg.settings.sources[0].batch  # type: ignore[attr-defined]
        expected = await slack_bound(server.url, cfg.settings.redis.prefix)
    finally:
        if redis is not None:
            await redis.aclose()
        await daemon.stop()

    print(f"\nresumed {recovered_s:.2f}s after the SIGKILL; {source.accepted} events accepted, "
          f"{in_streams} in Redis; queued per channel: {queued}")  # fmt: skip
    chaos.record(
        "embedded Redis SIGKILLed mid-replay, restarted by the daemon",
        expected,
        slack_alert_ids(slack_server),
        up=not daemon.failed.is_set(),
    )
    # no accepted tick lost: all the source counted is in Redis, and the evaluator took it all
    assert source.accepted <= in_streams <= source.accepted + batch, (source.accepted, in_streams)
    st = evaluator.stats
    assert st.ticks + st.headlines >= in_streams  # re-read after the restart counts twice
    # no queued alert lost: every outbox entry was routed (acknowledged above), and every
    # notification queued for a channel was sent once (or found already sent)
    for ch, n in queued.items():
        ws = delivery.workers[ch].stats
        assert ws.sent + ws.skipped_duplicate == n and ws.dead == 0, (ch, n, ws)
    delivered = Counter(slack_alert_ids(slack_server))
    assert all(n == 1 for n in delivered.values()), delivered
    assert len(slack_alert_ids(slack_server)) == queued["slack_desk"]
    assert len(twilio_server.sent) == queued["sms_oncall"]
    rules = {i.split("{")[0] for i in delivered}
    assert {SPREAD_RULE, "megacap-ai-capex-guidance", "cloud-demand-digestion"} <= rules
    assert "tickwatch-redis" in console.getvalue()  # the one ops alert, once Redis was back
    assert console.getvalue().count("tickwatch-redis") == 1
    logged = [r.getMessage() for r in caplog.records]
    crash = [m for m in logged if m.startswith("embedded Redis was killed by SIGKILL")]
    assert len(crash) == 1 and f"127.0.0.1:{port}" in crash[0], logged
    assert any(m.startswith("embedded Redis is back after") for m in logged)
    assert recovered_s < 3, f"the stages took {recovered_s:.1f}s to resume"
    assert not any("retrying in 8.0s" in m or "retrying in 4.0s" in m for m in logged)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


MINIMAL = """\
redis: {data_dir: var}
groups: {mag7: [NVDA]}
channels: {console: {type: console}}
rules:
  - {name: hi, when: {threshold: {symbols: NVDA, above: 500}}, channels: [console]}
"""


async def test_too_many_exits_of_the_embedded_redis_stop_the_daemon_with_exit_3(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tickwatch")
    (tmp_path / "alerts.yaml").write_text(MINIMAL)
    cfg = load_config(tmp_path / "alerts.yaml", env={})
    daemon = Daemon(cfg, console=io.StringIO(), watch=False, redis_restart_limit=1)
    stop = asyncio.Event()
    run = asyncio.create_task(daemon.run_forever(stop))
    try:
        await wait_until(lambda: daemon.evaluator is not None and daemon.embedded is not None,
                         20, "the daemon started")  # fmt: skip
        server = daemon.embedded
        assert server is not None
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)  # the first exit: restarted
        await wait_until(
            lambda: server.pid not in (None, first) and not daemon.reconnect.restarting,
            10,
            "the restart to be complete",
        )
        second = server.pid
        assert second is not None
        os.kill(second, signal.SIGKILL)  # the second within the window: past the limit
        rc = await asyncio.wait_for(run, 30)
    finally:
        stop.set()
        if not run.done():
            await run
    assert rc == 3
    assert daemon.embedded is None  # stopped and cleaned up
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    stops = [m for m in errors if m.startswith("tickwatch stops:")]
    assert stops == [
        "tickwatch stops: the embedded Redis exited 2 times within 5 min (the last time it was "
        f"killed by SIGKILL); not restarting it again: see {tmp_path / 'var' / 'redis.log'}"
    ], errors
    assert daemon.fatal_reasons and "exited 2 times" in daemon.fatal_reasons[0]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
