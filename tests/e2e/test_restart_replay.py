"""A restart while the feed replays its recent history re-tells nothing (issue 12).

Providers resend their last minutes on reconnect (and `alpaca_backfill` does on purpose). The
edge remembers, across the restart, each symbol's latest accepted event time and the headlines
it accepted (read back from what it wrote to Redis), so the replayed trades are refused as out
of order and the replayed story as a duplicate; the engine never judges a tick older than its
symbol's latest. The spread alert and the capex alert reach Slack once each.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import load_config
from daemon.store.keys import Keys
from tests.chaos import ChaosTable
from tests.e2e.test_e2e_live import MIN, YEAR_END, alerts_yaml
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.fakes.ws_feeds import FakeAlpacaServer
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
SPREAD, CAPEX = "xmag-mags-ytd-spread-compresses", "megacap-ai-capex-guidance"


def posted(slack: FakeSlackServer) -> list[str]:
    return [str(r.body) for r in slack.requests
            if r.path.endswith("chat.postMessage") and r.status == 200]  # fmt: skip


async def test_a_restart_with_a_replaying_feed_re_tells_nothing(
    tmp_path: Path, repo: Path, redis_url: str, keys: Keys, redis: Redis,
    slack_server: FakeSlackServer, twilio_server: FakeTwilioServer, chaos: ChaosTable,
) -> None:  # fmt: skip
    now = int(time.time() * 1000)
    async with FakeAlpacaServer(one_session=False) as alpaca:
        t = alpaca.trade
        history = [
            t("XMAG", 100.0, ms=YEAR_END, trade_id=1),
            t("MAGS", 100.0, ms=YEAR_END, trade_id=2),
        ]
        for i, ago in enumerate((17, 10, 1)):  # YTD spread 7.5 points for 16 minutes
            history += [t("XMAG", 107.5, ms=now - ago * MIN, trade_id=10 + 2 * i),
                        t("MAGS", 100.0, ms=now - ago * MIN, trade_id=11 + 2 * i)]  # fmt: skip
        story = alpaca.news(9001, "Microsoft raises AI capex guidance, shares gain", ["MSFT"])
        cfg_path = alerts_yaml(tmp_path, repo, redis_url, keys, alpaca, slack_server, twilio_server)

        async def subscribed(daemon: Daemon) -> None:
            def ok() -> bool:
                stocks = [s for s in alpaca.live if "trades" in s.subs]
                news = [s for s in alpaca.live if "news" in s.subs]
                return bool(stocks and news) and {"XMAG", "MAGS"} <= stocks[0].subs["trades"]

            await wait_until(ok, 20, "both streams subscribed")

        first = Daemon(load_config(cfg_path, env={}), console=io.StringIO(), watch=False)
        await first.start()
        try:
            await subscribed(first)
            await alpaca.send(history)
            await alpaca.send([story])
            await wait_until(
                lambda: any(SPREAD in x for x in posted(slack_server))
                and any(CAPEX in x for x in posted(slack_server)),
                30, "the spread and capex alerts on Slack",
            )  # fmt: skip
        finally:
            await first.stop()
        before = posted(slack_server)
        accepted_before = await redis.xlen(keys.ticks)

        second = Daemon(load_config(cfg_path, env={}), console=io.StringIO(), watch=False)
        await second.start()
        try:
            await subscribed(second)
            # the provider replays everything it sent, then the market goes on (still below 8)
            await alpaca.send(history)
            await alpaca.send([story])
            fresh = [
                t("XMAG", 107.5, ms=now + 1000, trade_id=30),
                t("MAGS", 100.0, ms=now + 1000, trade_id=31),
            ]
            await alpaca.send(fresh)
            assert second.evaluator is not None and second.edge is not None
            edge = second.edge
            await wait_until(
                lambda: second.evaluator is not None and second.evaluator.stats.ticks >= 2
                and edge.rejected["out_of_order"] >= 6 and edge.rejected["duplicate_headline"] >= 1,
                30, "the replay refused and the fresh trades judged",
            )  # fmt: skip
            await wait_until(lambda: second.delivery is not None and second.evaluator.idle.is_set(),
                             10, "the evaluator idle")  # fmt: skip
        finally:
            await second.stop()
    after = posted(slack_server)
    chaos.record(
        "restart while the feed replays its last minutes and news",
        [SPREAD, CAPEX],
        [rule for x in after for rule in (SPREAD, CAPEX) if rule in x],
        up=not second.failed.is_set(),
    )
    assert sum(SPREAD in x for x in after) == 1, after
    assert sum(CAPEX in x for x in after) == 1, after
    assert len(after) == len(before)
    assert edge.rejected["out_of_order"] == 6  # the year-end and the 17, 10 minutes ago trades
    # only the trades at the latest instant (1 minute ago: not older) and the fresh ones got in
    assert await redis.xlen(keys.ticks) == accepted_before + 4
