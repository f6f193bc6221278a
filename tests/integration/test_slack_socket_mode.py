"""The desk's Slack buttons over Socket Mode (`daemon.web.slack_socket`): no public endpoint.

Real parts: Redis, the escalator and desk, slack-sdk's own `SocketModeClient` and Web API client
against the loopback fake Slack (`apps.connections.open` and a real websocket link, on the same
port as `chat.*`). A click is the `block_actions` payload Slack sends, built from the very
message the fake Slack received (`test_slack_actions.click_payload`), pushed as an `interactive`
envelope.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from daemon.notify.acks import AckBook
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.store import Keys
from daemon.web.slack_socket import SlackSocket
from tests.fakes.slack_server import FakeSlackServer
from tests.helpers import wait_until
from tests.integration.test_slack_actions import Desk, click_payload, fire

WRONG_APP_TOKEN = "xapp-1-A0FAKEAPP-9999-notthetokenslackknows"


def channel(slack: FakeSlackServer, app_token: str) -> SlackConfig:
    return SlackConfig(type="slack", token=slack.token, channel="#desk", base_url=slack.base_url,
                       app_token=app_token, allow_users=["U0ANN", "u0bob"])  # fmt: skip


@pytest_asyncio.fixture
async def desk(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer
) -> AsyncIterator[tuple[Desk, SlackSocket]]:
    cfg = channel(slack_server, slack_server.app_token)
    notifier = SlackNotifier("slack_desk", cfg)
    socket = SlackSocket(lambda: {"slack_desk": cfg}, lambda: {"slack_desk": notifier},
                         lambda: redis, keys)  # fmt: skip
    await socket.start()
    assert await socket.wait_connected(10), "the Socket Mode link did not come up"
    yield Desk("(socket mode)", slack_server, notifier, cfg), socket
    await socket.stop()
    await notifier.aclose()


def envelope(message: dict[str, Any], action_id: str, user: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(click_payload(message, action_id, user))
    return payload


async def test_a_click_over_the_socket_acknowledges_the_alert(
    redis: Redis, keys: Keys, desk: tuple[Desk, SlackSocket]
) -> None:
    d, _ = desk
    fake = d.slack.socket_mode
    [session] = fake.live()
    assert session.ws.closed is False
    a, message = await fire(redis, keys, d)
    envelope_id = await fake.push(envelope(message, "tickwatch_ack", "U0ANN"))
    await wait_until(lambda: len(d.slack.replies(message["ts"])) == 1, 10, "the thread reply")
    assert fake.acks == [envelope_id]  # acked by its id, once
    ack = await AckBook(redis, keys).get(a.key)
    assert ack is not None and (ack.by, ack.via) == ("u0ann", "slack")
    ch, ts, changed = d.slack.updates[-1]
    assert (ch, ts) == (message["channel"], message["ts"])  # updated in place
    blocks = changed["attachments"][0]["blocks"]
    assert not [b for b in blocks if b["type"] == "actions"]
    assert blocks[-2]["elements"][0]["text"].startswith("Acknowledged by <@U0ANN> at ")
    [reply] = d.slack.replies(message["ts"])
    assert reply["text"] == "<@U0ANN> acknowledged this alert: its escalation stops."
    # the link was opened with the app token, the messages sent with the bot token
    [opened] = [r for r in d.slack.requests if r.path == "/api/apps.connections.open"]
    assert opened.headers["Authorization"] == f"Bearer {d.slack.app_token}"
    chat = [r for r in d.slack.requests if r.path.startswith("/api/chat.")]
    assert {r.headers["Authorization"] for r in chat} == {f"Bearer {d.slack.token}"}


async def test_a_click_from_outside_the_allow_list_changes_nothing(
    redis: Redis, keys: Keys, desk: tuple[Desk, SlackSocket], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tickwatch.notify")
    d, _ = desk
    _, message = await fire(redis, keys, d)
    envelope_id = await d.slack.socket_mode.push(envelope(message, "tickwatch_ack", "U0EVE"))
    await wait_until(lambda: "is not in slack_desk's allow_users" in caplog.text, 10,
                     "the refusal logged")  # fmt: skip
    assert d.slack.socket_mode.acks == [envelope_id]  # acked all the same: Slack must not resend
    assert await redis.hgetall(keys.acks) == {}
    assert d.slack.updates == [] and d.slack.replies(message["ts"]) == []
    assert "u0eve (U0EVE) is not in slack_desk's allow_users: the ack on" in caplog.text


async def test_envelopes_not_ours_are_acked_and_ignored(
    redis: Redis, keys: Keys, desk: tuple[Desk, SlackSocket], caplog: pytest.LogCaptureFixture
) -> None:
    d, _ = desk
    fake = d.slack.socket_mode
    other = await fake.push({"type": "view_submission", "view": {"id": "V1"}})
    event = await fake.push({"event": {"type": "app_mention"}}, type="events_api")
    await wait_until(lambda: fake.acks == [other, event] or fake.acks == [event, other], 10,
                     "both envelopes acked")  # fmt: skip
    _, message = await fire(redis, keys, d)  # the link still answers clicks
    await fake.push(envelope(message, "tickwatch_ack", "U0BOB"))
    await wait_until(lambda: len(d.slack.updates) == 1, 10, "the message updated")
    assert "we cannot read" not in caplog.text


async def test_after_slack_refreshes_the_link_clicks_come_over_the_new_one(
    redis: Redis, keys: Keys, desk: tuple[Desk, SlackSocket]
) -> None:
    d, _ = desk
    fake = d.slack.socket_mode
    await fake.refresh()  # Slack's `disconnect`: the client asks for a new URL and reconnects
    await wait_until(lambda: len(fake.sessions) == 2 and fake.live() == fake.sessions[1:], 20,
                     "a second link, the first closed")  # fmt: skip
    opens = [r for r in d.slack.requests if r.path == "/api/apps.connections.open"]
    assert len(opens) == 2
    a, message = await fire(redis, keys, d)
    await fake.push(envelope(message, "tickwatch_ack", "U0ANN"))
    await wait_until(lambda: len(d.slack.updates) == 1, 10, "the message updated")
    assert await AckBook(redis, keys).get(a.key) is not None


async def test_channels_of_one_slack_app_share_one_link(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer
) -> None:
    cfgs = {name: channel(slack_server, slack_server.app_token) for name in ("desk_a", "desk_b")}
    notifiers = {name: SlackNotifier(name, cfg) for name, cfg in cfgs.items()}
    socket = SlackSocket(lambda: cfgs, lambda: notifiers, lambda: redis, keys)
    await socket.start()
    try:
        assert await socket.wait_connected(10)
        assert socket.links == 1 and len(slack_server.socket_mode.live()) == 1
        await socket.start()  # again (a reload that changed nothing): the same link
        assert socket.links == 1 and len(slack_server.socket_mode.sessions) == 1
        del cfgs["desk_a"], cfgs["desk_b"]  # a reload that drops them: the link is closed
        await socket.start()
        assert socket.links == 0
        await wait_until(lambda: slack_server.socket_mode.live() == [], 10, "the link closed")
    finally:
        await socket.stop()
        for n in notifiers.values():
            await n.aclose()


async def test_a_wrong_app_token_is_refused_logged_and_kept_out_of_the_logs(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the SDK's own debug lines too
    cfg = channel(slack_server, WRONG_APP_TOKEN)
    notifier = SlackNotifier("slack_desk", cfg)
    socket = SlackSocket(lambda: {"slack_desk": cfg}, lambda: {"slack_desk": notifier},
                         lambda: redis, keys, retry_s=0.05)  # fmt: skip
    await socket.start()  # returns at once: the link connects (or not) in the background
    try:
        await wait_until(lambda: caplog.text.count("Slack refused Socket Mode (invalid_auth)") >= 2,
                         10, "the refusal logged, and retried")  # fmt: skip
        assert not await socket.wait_connected(0.1)
        assert slack_server.socket_mode.sessions == []
        [record, *_] = [r for r in caplog.records if "refused Socket Mode" in r.getMessage()]
        assert record.levelno == logging.ERROR and record.name == "tickwatch.slack"
        text = record.getMessage()
        assert "channel slack_desk" in text and "channels.slack_desk.app_token" in text
        assert "xapp-" in text and "Socket Mode is on in the Slack app's settings" in text
    finally:
        await socket.stop()  # nothing crashed: it stops cleanly
        await notifier.aclose()
    opens = [r for r in slack_server.requests if r.path == "/api/apps.connections.open"]
    assert opens and {r.status for r in opens} == {200}
    for secret in (WRONG_APP_TOKEN, "notthetokenslackknows", slack_server.token):
        assert secret not in caplog.text


async def test_a_rate_limited_open_waits_as_slack_asks_then_connects(
    redis: Redis, keys: Keys, slack_server: FakeSlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    slack_server.rate_limit(retry_after=1)
    cfg = channel(slack_server, slack_server.app_token)
    notifier = SlackNotifier("slack_desk", cfg)
    socket = SlackSocket(lambda: {"slack_desk": cfg}, lambda: {"slack_desk": notifier},
                         lambda: redis, keys, retry_s=30)  # fmt: skip
    await socket.start()
    try:
        assert await socket.wait_connected(10)  # after Retry-After's 1 s, not retry_s's 30
        assert "Slack rate-limits Socket Mode; retrying in 1s" in caplog.text
        assert "refused" not in caplog.text
        assert [r.status for r in slack_server.requests] == [429, 200]
    finally:
        await socket.stop()
        await notifier.aclose()
