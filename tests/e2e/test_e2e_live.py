"""End to end on live feeds: the fake Alpaca stream drives the shipped XMAG/MAGS spread rule and
the fake Alpaca news stream the capex-headline rule, delivered to the fake Slack (and Twilio).

The daemon runs the shipped rule files unchanged; only its sources and channels point at the
loopback fakes. Prices are made up so that the YTD spread is 7.5 points (below 8) for more than
the rule's 15 minutes, anchored on a 2025 year-end trade.
"""

from __future__ import annotations

import io
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.app import Daemon
from daemon.config import load_config
from daemon.store.keys import Keys
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.fakes.ws_feeds import FakeAlpacaServer
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
MIN = 60_000
YEAR_END = int(datetime(2025, 12, 31, 20, 59, tzinfo=UTC).timestamp() * 1000)  # 15:59 New York


def alerts_yaml(tmp: Path, repo: Path, redis_url: str, keys: Keys, alpaca: FakeAlpacaServer,
                slack: FakeSlackServer, twilio: FakeTwilioServer) -> Path:  # fmt: skip
    shutil.copytree(repo / "rules", tmp / "rules")
    shutil.copy(repo / "data" / "earnings.csv", tmp / "earnings.csv")
    (tmp / "alerts.yaml").write_text(f"""\
redis: {{url: "{redis_url}", prefix: {keys.prefix}}}
groups:
  mag7: [AAPL, MSFT, GOOGL, AMZN, META, NVDA, TSLA]
  rotation: [XMAG, MAGS]
sources:
  - name: alpaca
    type: alpaca
    key_id: {alpaca.key_id}
    secret_key: {alpaca.secret_key}
    url: {alpaca.stocks_url("iex")}
  - name: alpaca-news
    type: alpaca_news
    key_id: {alpaca.key_id}
    secret_key: {alpaca.secret_key}
    url: {alpaca.news_url}
calendar: {{earnings: earnings.csv}}
channels:
  console: {{type: console}}
  slack_desk: {{type: slack, token: {slack.token}, channel: "#rotation-desk",
               base_url: {slack.base_url}}}
  sms_oncall:
    type: sms
    account_sid: {twilio.account_sid}
    auth_token: {twilio.auth_token}
    from: "+15550100000"
    to: ["+15550100001"]
    base_url: {twilio.origin}
include: [rules/*.yaml]
ops_channels: [console]
""")
    return tmp / "alerts.yaml"


async def test_alpaca_trades_and_news_reach_slack(
    tmp_path: Path, repo: Path, redis_url: str, keys: Keys,
    slack_server: FakeSlackServer, twilio_server: FakeTwilioServer,
) -> None:  # fmt: skip
    async with FakeAlpacaServer(one_session=False) as alpaca:  # stocks and news: two endpoints
        cfg = load_config(alerts_yaml(tmp_path, repo, redis_url, keys, alpaca, slack_server,
                                      twilio_server), env={})  # fmt: skip
        daemon = Daemon(cfg, console=io.StringIO(), watch=False)
        await daemon.start()
        try:

            def subscribed() -> bool:
                stocks = [s for s in alpaca.live if "trades" in s.subs]
                news = [s for s in alpaca.live if "news" in s.subs]
                return (
                    bool(stocks and news)
                    and {"XMAG", "MAGS", "MSFT"} <= stocks[0].subs["trades"]
                    and bool(news[0].subs["news"])
                )

            await wait_until(subscribed, 20, "the rules' symbols subscribed on both streams")
            now = int(time.time() * 1000)
            t = alpaca.trade
            await alpaca.send([t("XMAG", 100.0, ms=YEAR_END, trade_id=1),
                               t("MAGS", 100.0, ms=YEAR_END, trade_id=2)])  # fmt: skip
            # YTD: XMAG +7.5%, MAGS 0%: a 7.5-point spread, held from 17 minutes ago to now
            for i, ago in enumerate((17, 10, 1)):
                ms = now - ago * MIN
                await alpaca.send([t("XMAG", 107.5, ms=ms, trade_id=10 + 2 * i),
                                   t("MAGS", 100.0, ms=ms, trade_id=11 + 2 * i)])  # fmt: skip
            await alpaca.send([alpaca.news(
                9001, "Microsoft raises AI capex guidance, shares gain", ["MSFT"]
            )])  # fmt: skip

            def slack_texts() -> list[str]:
                return [str(r.body) for r in slack_server.requests
                        if r.path.endswith("chat.postMessage") and r.status == 200]  # fmt: skip

            await wait_until(
                lambda: (
                    any("xmag-mags-ytd-spread-compresses" in x for x in slack_texts())
                    and any("megacap-ai-capex-guidance" in x for x in slack_texts())
                ),
                30,
                "the spread alert and the capex alert on Slack",
            )
        finally:
            await daemon.stop()
    spread = next(x for x in slack_texts() if "xmag-mags-ytd-spread-compresses" in x)
    assert "7.50" in spread and "below 8" in spread
    capex = next(x for x in slack_texts() if "megacap-ai-capex-guidance" in x)
    assert "MSFT" in capex and "Microsoft raises AI capex guidance" in capex
    # the capex rule texts the on-call phone too; Alpaca gives no score, VADER's is positive
    assert any("capex" in m["body"] for m in twilio_server.sent)
    assert not daemon.failed.is_set()
