"""The desk's Slack buttons: on firing messages, and their clicks answered at
`POST /hooks/slack/actions`, signed as Slack signs them (slack-sdk's `SignatureVerifier`).

Real parts: Redis, the escalator and desk, the slack-sdk client against the loopback fake Slack,
and the handler served by aiohttp on a loopback port. A click is the `block_actions` payload
Slack sends, built from the very message the fake Slack received.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from redis.asyncio import Redis
from slack_sdk.signature import SignatureVerifier

from daemon.notify.notification import Notification
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.rules import Escalate
from daemon.store import Keys
from daemon.web.slack_hook import SlackHook
from tests.fakes.slack_server import FakeSlackServer
from tests.integration.test_delivery import alert
from tests.integration.test_escalation import escalator, feed, queued

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
MIN = 60_000


@dataclass
class Desk:
    url: str
    slack: FakeSlackServer
    notifier: SlackNotifier
    config: SlackConfig


@pytest_asyncio.fixture
async def desk(redis: Redis, keys: Keys, slack_server: FakeSlackServer) -> AsyncIterator[Desk]:
    cfg = SlackConfig(type="slack", token=slack_server.token, channel="#desk",
                      base_url=slack_server.base_url, signing_secret=SECRET,
                      allow_users=["U0ANN", "u0bob"])  # fmt: skip
    notifier = SlackNotifier("slack_desk", cfg)
    hook = SlackHook(lambda: {"slack_desk": cfg}, lambda: {"slack_desk": notifier},
                     lambda: redis, keys)  # fmt: skip
    app = web.Application()
    app.router.add_post("/hooks/slack/actions", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Desk(f"http://127.0.0.1:{port}/hooks/slack/actions", slack_server, notifier, cfg)
    await notifier.aclose()
    await runner.cleanup()


def click_payload(message: dict[str, Any], action_id: str, user: str, **extra: Any) -> str:
    """Slack's `block_actions` payload for a click on `action_id` in `message`."""
    blocks = message["attachments"][0]["blocks"]
    actions = next(b for b in blocks if b["type"] == "actions")
    element = next(e for e in actions["elements"] if e["action_id"] == action_id)
    action = {"action_id": action_id, "block_id": actions["block_id"], "type": element["type"],
              "action_ts": f"{time.time():.6f}", **extra}  # fmt: skip
    if "value" in element:
        action["value"] = element["value"]
    return json.dumps({
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower()},
        "channel": {"id": message["channel"], "name": "desk"},
        "container": {"type": "message", "message_ts": message["ts"]},
        "message": {"ts": message["ts"], "text": message["text"],
                    "attachments": [{**message["attachments"][0],
                                     "color": message["attachments"][0]["color"].lstrip("#")}]},
        "actions": [action],
    })  # fmt: skip


async def post(url: str, payload: str, *, secret: str = SECRET, age_s: float = 0,
               signed: bool = True) -> int:  # fmt: skip
    body = urlencode({"payload": payload})
    ts = str(int(time.time() - age_s))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signed:
        headers |= {"X-Slack-Request-Timestamp": ts,
                    "X-Slack-Signature": SignatureVerifier(secret).generate_signature(
                        timestamp=ts, body=body)}  # fmt: skip
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
        return r.status


async def fire(redis: Redis, keys: Keys, desk: Desk, n: int = 1, symbol: str = "NVDA") -> Any:
    """A firing (with a 10-minute escalation to SMS) posted to Slack; the message Slack holds."""
    a = alert(n, ("slack_desk",), symbol=symbol)
    policy = Escalate(after=dt.timedelta(minutes=10), to=["sms"])
    await feed(redis, keys, escalator(redis, keys, **{"nvda-high": policy}), [a],
               int(time.time() * 1000))  # fmt: skip
    await desk.notifier.deliver(Notification.single(a, "slack_desk"))
    channel, message = desk.slack.top_level()[-1]
    return a, {**message, "channel": channel}


async def test_firing_messages_carry_the_buttons_and_the_resolve_removes_them(
    redis: Redis, keys: Keys, desk: Desk
) -> None:
    _, message = await fire(redis, keys, desk)
    blocks = message["attachments"][0]["blocks"]
    [controls] = [b for b in blocks if b["type"] == "actions"]
    assert [e["action_id"] for e in controls["elements"]] == [
        "tickwatch_ack", "tickwatch_snooze", "tickwatch_silence_day"]  # fmt: skip
    assert controls["elements"][2]["text"]["text"] == "Silence NVDA today"
    assert blocks[-1]["type"] == "context"  # the id line stays last
    receipt = {"channel": message["channel"], "ts": message["ts"],
               "blocks": json.dumps(blocks)}  # fmt: skip
    resolve = Notification(channel="slack_desk", key="r", alerts=(
        alert(1, ("slack_desk",), state="resolved"),), thread=receipt)  # fmt: skip
    await desk.notifier.deliver(resolve)
    _, _, changed = desk.slack.updates[-1]
    assert not [b for b in changed["attachments"][0]["blocks"] if b["type"] == "actions"]


async def test_an_ack_click_stops_the_escalation_and_updates_the_message(
    redis: Redis, keys: Keys, desk: Desk
) -> None:
    _, message = await fire(redis, keys, desk)
    _, other = await fire(redis, keys, desk, 2, "MSFT")
    assert await post(desk.url, click_payload(message, "tickwatch_ack", "U0ANN")) == 200
    ch, ts, changed = desk.slack.updates[-1]
    assert (ch, ts) == (message["channel"], message["ts"])
    new_blocks = changed["attachments"][0]["blocks"]
    assert not [b for b in new_blocks if b["type"] == "actions"]
    note = new_blocks[-2]["elements"][0]["text"]
    assert note.startswith("Acknowledged by <@U0ANN> at ") and note.endswith(" ET")
    assert changed["attachments"][0]["color"] == message["attachments"][0]["color"]
    [reply] = desk.slack.replies(message["ts"])
    assert reply["text"] == "<@U0ANN> acknowledged this alert: its escalation stops."
    # the ack ends NVDA's escalation; MSFT's, unacknowledged, goes on
    e = escalator(redis, keys, **{"nvda-high": Escalate(after=dt.timedelta(minutes=10),
                                                        to=["sms"])})  # fmt: skip
    assert await e.take_due(now_ms=int(time.time() * 1000) + 11 * MIN) == 1
    assert [n.alert.key for n in await queued(redis, keys, "sms")] == [alert(2, symbol="MSFT").key]
    assert other["ts"] not in {u[1] for u in desk.slack.updates}


@pytest.mark.parametrize(
    ("how", "kw"),
    [("unsigned", {"signed": False}), ("wrong secret", {"secret": "not-the-secret"}),
     ("stale", {"age_s": 6 * 60})],
)  # fmt: skip
async def test_unsigned_mis_signed_or_stale_requests_are_refused_and_change_nothing(
    redis: Redis, keys: Keys, desk: Desk, how: str, kw: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    _, message = await fire(redis, keys, desk)
    updates = len(desk.slack.updates)
    assert await post(desk.url, click_payload(message, "tickwatch_ack", "U0ANN"), **kw) == 401
    assert await redis.hgetall(keys.acks) == {}
    assert len(desk.slack.updates) == updates
    assert "no valid signature" in caplog.text


async def test_a_click_from_outside_the_allow_list_changes_nothing_and_is_logged(
    redis: Redis, keys: Keys, desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tickwatch.notify")
    _, message = await fire(redis, keys, desk)
    assert await post(desk.url, click_payload(message, "tickwatch_ack", "U0EVE")) == 200
    assert await redis.hgetall(keys.acks) == {}
    assert desk.slack.updates == [] and desk.slack.replies(message["ts"]) == []
    assert "u0eve (U0EVE) is not in slack_desk's allow_users: the ack on" in caplog.text


async def test_snooze_and_silence_for_the_day_become_silences(
    redis: Redis, keys: Keys, desk: Desk
) -> None:
    _, message = await fire(redis, keys, desk)
    snooze = json.loads(click_payload(message, "tickwatch_snooze", "U0BOB"))
    element = next(e for b in message["attachments"][0]["blocks"] if b["type"] == "actions"
                   for e in b["elements"] if e["action_id"] == "tickwatch_snooze")  # fmt: skip
    snooze["actions"][0]["selected_option"] = element["options"][1]  # "4 hours"
    assert await post(desk.url, json.dumps(snooze)) == 200
    silences = [json.loads(v) for v in (await redis.hgetall(keys.silences)).values()]
    [s] = silences
    assert sorted(s["matchers"]) == ["n=1", "rule=nvda-high", "symbol=NVDA"]
    assert abs(s["ends_ms"] - s["starts_ms"] - 240 * MIN) < 1000
    assert s["author"] == "u0bob" and s["reason"] == "snoozed via slack"
    assert "Snoozed by <@U0BOB> until" in desk.slack.updates[-1][2]["text"]
    assert await post(desk.url, click_payload(message, "tickwatch_silence_day", "U0ANN")) == 200
    day = [json.loads(v) for v in (await redis.hgetall(keys.silences)).values()
           if json.loads(v)["matchers"] == ["symbol=NVDA"]]  # fmt: skip
    assert len(day) == 1
    end = dt.datetime.fromtimestamp(day[0]["ends_ms"] / 1000, dt.UTC).astimezone(
        dt.timezone(dt.timedelta(hours=-5))
    )
    assert (end.hour, end.minute) in ((0, 0), (1, 0))  # New York midnight (EST, or EDT)
