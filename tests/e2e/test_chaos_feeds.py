"""Chaos on the way in: a feed that repeats itself, sends garbage, and sends a 10 MB frame.

The shipped rules run on the fake Alpaca streams. Every trade frame comes twice (providers
re-send on reconnect or by mistake), garbage and truncated frames come in between, and a
frame far over `max_frame` forces a reconnect. The spread alert and the capex alert must each
reach Slack exactly once, and the daemon must stay up.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from daemon.app import Daemon
from daemon.config import load_config
from daemon.store.keys import Keys
from tests.chaos import ChaosTable
from tests.e2e.test_e2e_live import MIN, YEAR_END, alerts_yaml
from tests.e2e.test_restart_replay import CAPEX, SPREAD, posted
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.fakes.ws_feeds import FakeAlpacaServer
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


async def test_a_feed_that_repeats_itself_and_sends_garbage_tells_each_alert_once(
    tmp_path: Path, repo: Path, redis_url: str, keys: Keys,
    slack_server: FakeSlackServer, twilio_server: FakeTwilioServer, chaos: ChaosTable,
) -> None:  # fmt: skip
    now = int(time.time() * 1000)
    async with FakeAlpacaServer(one_session=False) as alpaca:
        t = alpaca.trade
        cfg = load_config(alerts_yaml(tmp_path, repo, redis_url, keys, alpaca, slack_server,
                                      twilio_server), env={})  # fmt: skip
        daemon = Daemon(cfg, console=io.StringIO(), watch=False)

        def subscribed() -> bool:
            stocks = [s for s in alpaca.live if "trades" in s.subs]
            news = [s for s in alpaca.live if "news" in s.subs]
            return bool(stocks and news) and {"XMAG", "MAGS"} <= stocks[0].subs["trades"]

        await daemon.start()
        try:
            await wait_until(subscribed, 20, "both streams subscribed")
            frames = [[t("XMAG", 100.0, ms=YEAR_END, trade_id=1),
                       t("MAGS", 100.0, ms=YEAR_END, trade_id=2)]]  # fmt: skip
            for i, ago in enumerate((17, 10)):
                ms = now - ago * MIN
                frames.append([t("XMAG", 107.5, ms=ms, trade_id=10 + 2 * i),
                               t("MAGS", 100.0, ms=ms, trade_id=11 + 2 * i)])  # fmt: skip
            for frame in frames:
                await alpaca.send(frame)
                await alpaca.send_raw("not json at all")
                await alpaca.send_raw('[{"T":"t","S":"XMAG","p":1')  # truncated
                await alpaca.send(frame)  # the same trades again
            # far over max_frame (4 MiB): the feed drops the connection and reconnects
            await alpaca.send_raw(json.dumps([{"T": "t", "S": "XMAG", "pad": "x" * 10_000_000}]))
            await wait_until(lambda: not subscribed(), 20, "the oversized frame's disconnect")
            await wait_until(subscribed, 30, "the reconnect")
            last = [
                t("XMAG", 107.5, ms=now - MIN, trade_id=14),
                t("MAGS", 100.0, ms=now - MIN, trade_id=15),
            ]
            story = alpaca.news(9001, "Microsoft raises AI capex guidance, shares gain", ["MSFT"])
            for _ in range(2):
                await alpaca.send(last)
                await alpaca.send([story])
            await wait_until(
                lambda: any(SPREAD in x for x in posted(slack_server))
                and any(CAPEX in x for x in posted(slack_server)),
                30, "the spread and capex alerts on Slack",
            )  # fmt: skip
            assert daemon.evaluator is not None
            await wait_until(daemon.evaluator.idle.is_set, 10, "the evaluator idle")
            up = not daemon.failed.is_set()
            status = daemon.sources[0].status()
        finally:
            await daemon.stop()
    sent = posted(slack_server)
    chaos.record(
        "feed repeats every frame, garbage and truncated frames, a 10 MB frame",
        [SPREAD, CAPEX],
        [rule for x in sent for rule in (SPREAD, CAPEX) if rule in x],
        up=up,
    )
    assert status["reconnects"] >= 1, status
