"""The end-to-end path on a 3-master Redis Cluster (`redis.url: redis+cluster://...`).

The shipped alerts.yaml and rules on the sample replay, as tests/e2e/test_e2e.py runs them on
one server, here on a cluster the suite starts itself (tests/cluster.py): every key shares the
`{prefix}` hash tag, so each MULTI/EXEC and script lands in one slot. The spread and capex
alerts reach the fake Slack and Twilio, and a restart mid-scenario sends nothing twice.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from daemon.app import Daemon
from daemon.store import Keys, connect
from tests.cluster import RedisClusterServers
from tests.e2e.test_e2e import SPREAD_RULE, shipped_config, slack_alert_ids
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

pytestmark = pytest.mark.slow


async def test_the_daemon_alerts_and_restarts_on_a_redis_cluster(
    repo: Path, redis_cluster: RedisClusterServers, keys: Keys, slack_server: FakeSlackServer,
    twilio_server: FakeTwilioServer,
) -> None:  # fmt: skip
    url = redis_cluster.url
    cfg = shipped_config(repo, url, slack_server, twilio_server, TICKWATCH_REPLAY_SPEED="150000")
    cfg.settings.redis.prefix = keys.prefix
    cfg.settings.sources[0].max_gap = type(cfg.settings.sources[0].max_gap)(seconds=0.05)
    first = Daemon(cfg, console=io.StringIO())
    await first.start()
    try:
        await wait_until(lambda: len(slack_alert_ids(slack_server)) >= 1, timeout=60,
                         what="a first alert through the cluster")  # fmt: skip
    finally:
        await first.stop()
    r = connect(url)
    slots = {await r.cluster_keyslot(k) for k in (keys.ticks, keys.outbox, keys.alert_state)}
    cursor = await r.hgetall(keys.source_cursor("sample"))
    await r.aclose()
    assert len(slots) == 1  # the hash tag at work
    assert int(cursor["pos"]) < 70_000, "the replay finished before the restart"
    before = Counter(slack_alert_ids(slack_server))

    second = Daemon(cfg, console=io.StringIO())
    await second.start()
    try:
        await wait_until(
            lambda: any(SPREAD_RULE in i and i.endswith(":resolved")
                        for i in slack_alert_ids(slack_server)),
            timeout=120, what="the spread alert to fire and resolve after the restart",
        )  # fmt: skip
        await wait_until(lambda: any("capex" in m["body"].lower() for m in twilio_server.sent),
                         timeout=60, what="the capex SMS")  # fmt: skip
    finally:
        await second.stop()
    delivered = Counter(slack_alert_ids(slack_server))
    assert all(n == 1 for n in delivered.values()), delivered
    assert set(before) <= set(delivered)
    assert any(i.startswith(SPREAD_RULE) and i.endswith(":firing") for i in delivered)
