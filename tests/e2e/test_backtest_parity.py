"""`tickwatch backtest` tells what `tickwatch run` tells: the shipped config on the bundled
sample through the whole daemon (replay source, real Redis, router, fake Slack and Twilio on
loopback) and through the backtest, alert for alert and channel for channel.

One difference is by design and asserted as such: a daemon replaying old data steps its clock
for reminders only (a March replay in December must not call every feed silent today), while
the backtest is the live daemon on the data's own time, so clock-driven rules (silence,
earnings reminders) are compared separately: the daemon tells none of them here.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.app import Daemon
from daemon.backtest.data import open_history
from daemon.backtest.run import run_backtest
from daemon.store.keys import Keys
from tests.e2e.test_e2e import shipped_config, slack_alert_ids
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
CLOCK_RULES = {"feed-silent", "mag7-earnings-reminder"}


async def test_the_backtest_tells_what_the_daemon_tells(
    repo: Path, redis_url: str, keys: Keys, slack_server: FakeSlackServer,
    twilio_server: FakeTwilioServer,
) -> None:  # fmt: skip
    cfg = shipped_config(repo, redis_url, slack_server, twilio_server)
    cfg.settings.redis.prefix = keys.prefix
    daemon = Daemon(cfg, console=io.StringIO())
    await daemon.start()
    try:
        src = daemon.sources[0]
        await wait_until(lambda: src.accepted >= 73_719, timeout=120, what="the replay played")
        ev = daemon.evaluator
        assert ev is not None
        await wait_until(lambda: ev.stats.ticks >= 73_719 and ev.idle.is_set(), timeout=60,
                         what="every tick judged")  # fmt: skip
        r = Redis.from_url(redis_url, decode_responses=True)
        try:
            told = [AlertEvent.from_json(f["alert"]) for _, f in await r.xrange(keys.outbox)]
        finally:
            await r.aclose()
        want_slack = {a.id for a in told if "slack_desk" in a.channels}
        await wait_until(lambda: set(slack_alert_ids(slack_server)) >= want_slack, timeout=60,
                         what="every Slack-bound alert in Slack")  # fmt: skip
    finally:
        await daemon.stop()

    history = open_history(
        [repo / "data/sample/ticks.csv.gz", repo / "data/sample/news.csv"], symbols=cfg.universe
    )
    result = run_backtest(cfg, history)

    def key(a: AlertEvent) -> tuple[object, ...]:
        return (a.rule, a.key, a.state, a.seq, a.ts_ms, repr(a.value), a.threshold)

    live = [a for a in told if a.rule not in CLOCK_RULES]
    tried = [a for a in result.alerts if a.rule not in CLOCK_RULES]
    assert sorted(map(key, tried)) == sorted(map(key, live))
    assert {a.rule for a in live} >= {"xmag-mags-ytd-spread-compresses", "mag7-sharp-move",
                                      "megacap-ai-capex-guidance"}  # fmt: skip
    # the daemon on a replay of old data tells no clock-driven alert; the backtest, on the
    # data's own time, does (the sample has no data from Jan 2 to Mar 13: silent feeds)
    assert not [a for a in told if a.rule in CLOCK_RULES]
    assert {a.rule for a in result.alerts} & CLOCK_RULES
    # the same channels: what Slack and SMS got, and what the backtest says they would get
    sent = {m.alert_ids[0] for m in result.messages if m.channel == "slack_desk"}
    tried_ids = {a.id for a in tried}
    assert {i for i in sent if i in tried_ids} == set(slack_alert_ids(slack_server))
    sms_rules = Counter(r for m in result.messages if m.channel == "sms_oncall" for r in m.rules
                        if r not in CLOCK_RULES)  # fmt: skip
    assert sum(sms_rules.values()) == len(twilio_server.sent)
