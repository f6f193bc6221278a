"""The desk end to end, on a real daemon: two critical alerts fire to Slack; one is acked by a
click over Socket Mode, the other goes unanswered and escalates to SMS after `after`; a text
reply `ACK <number>` through the daemon's own Twilio webhook stops its next step.

Real parts throughout: the daemon, Redis, slack-sdk (Web API and Socket Mode) against the
loopback fake Slack, the twilio client against the fake Twilio, and twilio's RequestValidator
signing the reply the way Twilio does.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis
from twilio.request_validator import RequestValidator

from daemon.app import Daemon
from daemon.config import load_config
from daemon.events import Tick
from daemon.store import Keys, StreamStore
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import wait_until
from tests.integration.test_slack_actions import click_payload

pytestmark = pytest.mark.slow
T0 = 1_775_000_000_000
PHONE = "+15550100001"
ALERTS = """\
redis: {{url: "{url}", prefix: {prefix}}}
http: {{listen: "127.0.0.1:0"}}
channels:
  slack_desk:
    type: slack
    token: {slack_token}
    channel: "#desk"
    base_url: {slack_url}
    app_token: {app_token}
  sms_oncall:
    type: sms
    account_sid: {sid}
    auth_token: {auth}
    from: "+15550100000"
    to: ["{phone}"]
    base_url: {twilio_url}
rules:
  - name: above-100
    when: {{threshold: {{symbols: [NVDA, MSFT], above: 100}}}}
    severity: critical
    channels: [slack_desk]
    escalate: {{after: 1s, to: [sms_oncall], repeat: 3}}
"""


async def test_ack_by_click_and_by_text_stop_the_escalation_of_their_alert_only(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys, slack_server: FakeSlackServer,
    twilio_server: FakeTwilioServer,
) -> None:  # fmt: skip
    path = tmp_path / "alerts.yaml"
    path.write_text(ALERTS.format(
        url=redis_url, prefix=keys.prefix, slack_token=slack_server.token,
        slack_url=slack_server.base_url, app_token=slack_server.app_token,
        sid=twilio_server.account_sid, auth=twilio_server.auth_token, phone=PHONE,
        twilio_url=twilio_server.origin,
    ))  # fmt: skip
    daemon = Daemon(load_config(path, env={}), console=io.StringIO(), watch=False)
    await daemon.start()
    try:
        assert daemon.slack_socket is not None and await daemon.slack_socket.wait_connected(10)
        await StreamStore(redis, keys).write([
            Tick("NVDA", T0, 99.0), Tick("MSFT", T0, 99.0),
            Tick("NVDA", T0 + 1, 101.0), Tick("MSFT", T0 + 1, 102.0)])  # fmt: skip
        await wait_until(lambda: len(slack_server.top_level()) == 2, 20, "both alerts in Slack")
        by_symbol = {}
        for ch, m in slack_server.top_level():
            sym = "NVDA" if "NVDA" in json.dumps(m["attachments"]) else "MSFT"
            by_symbol[sym] = {**m, "channel": ch}
        # NVDA: acked by a click over Socket Mode, before its first step is due
        await slack_server.socket_mode.push(
            json.loads(click_payload(by_symbol["NVDA"], "tickwatch_ack", "U0ANN"))
        )
        await wait_until(lambda: bool(slack_server.updates), 10, "the NVDA message updated")
        # MSFT: unanswered, so it escalates to the phone after 1 s ...
        await twilio_server.wait_for(lambda _: len(twilio_server.sent) >= 1, timeout=10)
        [(first_id, _)] = (await redis.xrange(keys.outbox, count=1))[:1]
        queued_s = int(first_id.split("-")[0]) / 1000  # when the firings reached delivery
        assert twilio_server.requests[-1].at - queued_s >= 1.0  # not before `after`
        [text] = twilio_server.sent
        assert "MSFT" in text["body"] and "ESCALATED" in text["body"]
        number = int(text["body"].split()[0].lstrip("#"))
        # ... and the reply ACK <number> through the daemon's webhook stops the next step
        assert daemon.http is not None
        url = f"http://127.0.0.1:{daemon.http.port}/hooks/twilio/sms"
        params = {"From": PHONE, "To": "+15550100000", "Body": f"ACK {number}"}
        sig = RequestValidator(twilio_server.auth_token).compute_signature(url, params)
        async with aiohttp.ClientSession() as s, s.post(
            url, data=params, headers={"X-Twilio-Signature": sig}) as r:  # fmt: skip
            assert r.status == 200 and "Acknowledged above-100{symbol=MSFT}" in await r.text()
        acks = await redis.hgetall(keys.acks)
        assert {json.loads(v)["via"] for v in acks.values()} == {"slack", "sms"}
        # both chains end (at their next due time), with nothing more sent
        deadline = time.monotonic() + 10
        while await redis.zcard(keys.escalations):  # the escalator looks every 200 ms
            assert time.monotonic() < deadline, "the acked chains did not end"
            await asyncio.sleep(0.05)
        assert len(twilio_server.sent) == 1  # no second step for MSFT, none at all for NVDA
    finally:
        await daemon.stop()
