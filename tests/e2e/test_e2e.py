"""End to end: shipped alerts.yaml and rules, sample replay, real Redis, fake Slack and Twilio.

The expected spread alert is recomputed here from the CSV with a plain loop over the bars that
follows the rule's documented semantics (judged at each bar end where both legs have a bar;
YTD anchor = last 2025 close; pending from the first bar below 8, firing once it has held 15
minutes), independently of the engine.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import Config, load_config
from daemon.store.keys import Keys
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until

pytestmark = pytest.mark.slow
NY = ZoneInfo("America/New_York")
SPREAD_RULE = "xmag-mags-ytd-spread-compresses"


def expected_spread_alert(ticks_csv: Path) -> tuple[datetime, float, float, float]:
    """(fire time, spread, XMAG YTD %, MAGS YTD %), judging the pair once per bar time.

    A two-symbol rule is judged only at a bar end where both XMAG and MAGS have a bar, after
    both are applied (never this minute's MAGS against last minute's XMAG), so the row order
    within one timestamp cannot matter. The anchors are the last 2025 closes.
    """
    anchor: dict[str, float] = {}
    anchor_start: dict[str, datetime] = {}
    bars: dict[datetime, dict[str, float]] = {}  # bar end -> symbol -> close
    with gzip.open(ticks_csv, "rt") as f:
        for row in csv.DictReader(f):
            sym = row["symbol"]
            if sym not in ("XMAG", "MAGS"):
                continue
            start = datetime.fromisoformat(row["ts"].replace("Z", "+00:00"))
            close = float(row["close"])
            if start.astimezone(NY).year == 2025:
                if sym not in anchor_start or start >= anchor_start[sym]:
                    anchor_start[sym], anchor[sym] = start, close
                continue
            if start.year > 2030 or close != close or close <= 0:
                continue  # the deliberately bad rows
            end = start + timedelta(minutes=1)  # a bar is told at its end
            bars.setdefault(end, {})[sym] = close  # a repeated bar: the last one stands
    pending_since: datetime | None = None
    for end in sorted(bars):
        legs = bars[end]
        if len(legs) < 2:
            continue  # one leg has no bar at this time: the pair is not judged
        xa = (legs["XMAG"] / anchor["XMAG"] - 1) * 100
        ma = (legs["MAGS"] / anchor["MAGS"] - 1) * 100
        spread = xa - ma
        if spread < 8:
            pending_since = pending_since or end
            if (end - pending_since).total_seconds() >= 15 * 60:
                return end, spread, xa, ma
        else:
            pending_since = None
    raise AssertionError("the sample data never fires the spread rule")


def shipped_config(
    repo: Path, redis_url: str, slack: FakeSlackServer, twilio: FakeTwilioServer, **env: str
) -> Config:
    cfg = load_config(
        repo / "alerts.yaml",
        env={
            "REDIS_URL": redis_url,
            "SLACK_BOT_TOKEN": slack.token,
            "SLACK_CHANNEL": "#rotation-desk",
            "SLACK_API_URL": slack.base_url,
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_FROM": "+15550100000",
            "TICKWATCH_SMS_TO": "+15550100001",
            "TWILIO_API_URL": twilio.origin,
            **env,
        },
    )
    return cfg


def slack_alert_ids(slack: FakeSlackServer) -> list[str]:
    ids = []
    for rec in slack.requests:
        if rec.path.endswith("chat.postMessage") and rec.status == 200:
            m = re.search(r"alert ([^\s'\"]+)", str(rec.body.get("attachments")))
            assert m, rec.body
            ids.append(m.group(1))
    return ids


async def test_spread_and_capex_alerts_reach_slack_and_sms(
    repo: Path, redis_url: str, keys: Keys, slack_server: FakeSlackServer,
    twilio_server: FakeTwilioServer,
) -> None:  # fmt: skip
    fire_at, spread, xa, ma = expected_spread_alert(repo / "data/sample/ticks.csv.gz")
    cfg = shipped_config(repo, redis_url, slack_server, twilio_server)
    cfg.settings.redis.prefix = keys.prefix
    console = io.StringIO()
    daemon = Daemon(cfg, console=console)
    await daemon.start()
    try:
        await wait_until(
            lambda: any(SPREAD_RULE in str(r.body) for r in slack_server.requests),
            what="the spread alert in Slack",
        )
        await wait_until(lambda: len(twilio_server.sent) >= 1, what="an SMS")
    finally:
        await daemon.stop()

    spread_msgs = [
        r.body for r in slack_server.requests
        if SPREAD_RULE in str(r.body) and "FIRING" in str(r.body)
    ]  # fmt: skip
    assert len(spread_msgs) == 1
    body = str(spread_msgs[0])
    assert f"{spread:.2f}" in body
    assert f"XMAG {xa:+.2f}%" in body and f"MAGS {ma:+.2f}%" in body
    fire_ny = fire_at.astimezone(NY)
    assert f"{fire_ny:%H:%M:%S}" in body and f"{fire_ny:%b} {fire_ny.day} {fire_ny:%Y}" in body
    assert spread_msgs[0]["channel"] == "#rotation-desk"
    assert "2026-04-09" in console.getvalue() and SPREAD_RULE in console.getvalue()

    capex_sms = [m for m in twilio_server.sent if "capex" in m["body"].lower()]
    assert capex_sms, [m["body"] for m in twilio_server.sent]
    assert capex_sms[0]["to"] == "+15550100001"
    assert len(capex_sms[0]["body"]) <= 160
    assert "MSFT" in capex_sms[0]["body"]


async def test_restart_mid_scenario_sends_nothing_twice(
    repo: Path, redis_url: str, keys: Keys, slack_server: FakeSlackServer,
    twilio_server: FakeTwilioServer,
) -> None:  # fmt: skip
    # Slow the replay down enough to stop it part-way: ~150k x real time, nights cut to 50 ms.
    cfg = shipped_config(repo, redis_url, slack_server, twilio_server,
                         TICKWATCH_REPLAY_SPEED="150000")  # fmt: skip
    cfg.settings.redis.prefix = keys.prefix
    cfg.settings.sources[0].max_gap = type(cfg.settings.sources[0].max_gap)(seconds=0.05)
    first = Daemon(cfg, console=io.StringIO())
    await first.start()
    try:
        await wait_until(lambda: len(slack_alert_ids(slack_server)) >= 1, what="a first alert")
    finally:
        await first.stop()
    r = Redis.from_url(redis_url, decode_responses=True)
    cursor = await r.hgetall(keys.source_cursor("sample"))
    total = await r.xlen(keys.ticks)
    states_before = await r.hgetall(keys.alert_state)
    await r.aclose()
    delivered_before = Counter(slack_alert_ids(slack_server))
    assert int(cursor["pos"]) < 70_000, "the replay finished before the restart: not mid-scenario"
    assert total > 0 and states_before

    second = Daemon(cfg, console=io.StringIO())
    await second.start()
    try:
        await wait_until(
            lambda: any(
                SPREAD_RULE in i and i.endswith(":resolved") for i in slack_alert_ids(slack_server)
            ),
            timeout=90,
            what="the spread alert to fire and resolve after the restart",
        )
        assert second.sources[0].accepted < 73_700, "the restart replayed from the beginning"
    finally:
        await second.stop()

    delivered = Counter(slack_alert_ids(slack_server))
    assert delivered_before, "nothing was delivered before the restart"
    assert all(n == 1 for n in delivered.values()), delivered
    assert any(i.startswith(SPREAD_RULE) and i.endswith(":firing") for i in delivered)
    assert set(delivered_before) <= set(delivered)


async def test_daemon_runs_on_embedded_redis_without_tokens(repo: Path, tmp_path: Path) -> None:
    """No REDIS_URL, no secrets: embedded Redis under data_dir, console only, spread alert."""
    cfg = load_config(repo / "alerts.yaml", env={})
    cfg.settings.redis.data_dir = tmp_path / "var"
    console = io.StringIO()
    daemon = Daemon(cfg, console=console)
    await daemon.start()
    try:
        assert daemon.embedded is not None
        assert set(daemon.notifiers) == {"console"}
        await wait_until(lambda: SPREAD_RULE in console.getvalue(), what="the console alert")
    finally:
        await daemon.stop()
    assert (tmp_path / "var" / "appendonly.aof").exists()
    line = next(x for x in console.getvalue().splitlines() if SPREAD_RULE in x)
    assert "FIRING" in line and line.startswith("2026-04-09")
