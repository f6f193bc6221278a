"""Slack channel: Block Kit layout (pure) and the real slack-sdk client against the fake Web API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from daemon.alerts import AlertEvent
from daemon.events import dt_to_ms
from daemon.notify.failure import DeliveryError
from daemon.notify.notification import Notification, Receipt
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.notify.slack_blocks import (
    COLORS,
    RESOLVED_COLOR,
    SPARK_CHARS,
    build_blocks,
    build_message,
    parse_series,
    sparkline,
)
from daemon.notify.wording import compare_text, format_time_ny
from tests.fakes.slack_server import FakeSlackServer
from tests.helpers import make_alert as base_alert


def one(alert: AlertEvent) -> Notification:
    """One alert transition as the notification a channel is asked to send."""
    return Notification.single(alert, "test")


# 2026-04-09 13:47:00 in New York (EDT, UTC-4).
TS_MS = dt_to_ms(datetime(2026, 4, 9, 17, 47, tzinfo=UTC))
NY_TIME = "Thu Apr 9 2026 13:47:00 EDT"


def make_alert(**overrides: Any) -> AlertEvent:
    return base_alert(
        **{
            **{
                "key": "rotation-spread-compresses{symbol=XMAG-MAGS}",
                "seq": 3,
                "summary": "XMAG-MAGS YTD spread compressed to 7.98 (< 8): rotation fading",
                "channels": ("desk",),
                "labels": {"symbol": "XMAG-MAGS"},
                "values": {"spread": 7.98},
            },
            **overrides,
        }
    )


def all_text(blocks: list[dict[str, Any]]) -> str:
    """Every string in the blocks, to search for what a reader would see."""
    return json.dumps(blocks, ensure_ascii=False)


def field_texts(blocks: list[dict[str, Any]]) -> list[str]:
    section = next(b for b in blocks if b["type"] == "section" and "fields" in b)
    return [f["text"] for f in section["fields"]]


# --- pure layout ---------------------------------------------------------------------------


def test_firing_message_layout() -> None:
    msg = build_message(make_alert())
    assert msg["text"].startswith("FIRING warning rotation-spread-compresses (symbol=XMAG-MAGS): ")
    assert "7.98 below 8.00" in msg["text"]
    [attachment] = msg["attachments"]
    assert attachment["color"] == "#F49D37"
    blocks = attachment["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "FIRING: rotation-spread-compresses",
            "emoji": False,
        },
    }
    assert field_texts(blocks) == [
        "*Rule*\nrotation-spread-compresses",
        "*Symbol*\nXMAG-MAGS",
        "*Value*\n7.98 below 8.00",
        "*Severity*\nwarning",
        f"*Time (New York)*\n{NY_TIME}",
    ]
    summary = blocks[2]["text"]["text"]
    assert summary == "XMAG-MAGS YTD spread compressed to 7.98 (&lt; 8): rotation fading"
    assert blocks[-1]["type"] == "context"
    assert "rotation-spread-compresses{symbol=XMAG-MAGS}#3:firing" in all_text(blocks[-1:])


def test_resolved_message_is_green_and_tells_the_truth() -> None:
    msg = build_message(make_alert(state="resolved", value=8.12, severity="critical"))
    attachment = msg["attachments"][0]
    assert attachment["color"] == RESOLVED_COLOR == "#2E933C"
    assert attachment["blocks"][0]["text"]["text"] == "RESOLVED: rotation-spread-compresses"
    assert "*Value*\n8.12 at or above 8.00" in field_texts(attachment["blocks"])
    assert msg["text"].startswith("RESOLVED critical ")


@pytest.mark.parametrize(
    ("severity", "color"),
    [("critical", "#D72638"), ("warning", "#F49D37"), ("info", "#3F88C5")],
)
def test_severity_colours(severity: str, color: str) -> None:
    assert COLORS[severity] == color
    assert build_message(make_alert(severity=severity))["attachments"][0]["color"] == color


def test_time_is_new_york_in_winter_too() -> None:
    jan = dt_to_ms(datetime(2026, 1, 15, 14, 30, 5, tzinfo=UTC))
    assert format_time_ny(make_alert(ts_ms=jan)) == "Thu Jan 15 2026 09:30:05 EST"
    assert format_time_ny(make_alert()) == NY_TIME


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"value": None, "threshold": None}, ""),
        ({"threshold": None}, "7.98"),
        ({"comparison": ""}, "7.98 vs 8.00"),
        ({"comparison": "diverges_from"}, "7.98 diverges from 8.00"),
        ({"comparison": ">", "value": 1234.5, "threshold": 1200}, "1,234.50 above 1,200.00"),
        ({"comparison": "crosses_above", "value": 0.0123, "threshold": 0.01}, "0.0123 above 0.01"),
        ({"comparison": ">=", "value": 3.0, "threshold": 3.0}, "3.00 at or above 3.00"),
    ],
)
def test_compare_text(overrides: dict[str, Any], expected: str) -> None:
    assert compare_text(make_alert(**overrides)) == expected


def test_compare_text_symbols_form() -> None:
    assert compare_text(make_alert(), symbols=True) == "7.98 < 8.00"
    assert compare_text(make_alert(value=8.5), symbols=True) == "8.50 >= 8.00"


def test_block_limits_are_respected() -> None:
    blocks = build_blocks(make_alert(rule="r" * 400, summary="word " * 2000, labels={}))
    assert len(blocks[0]["text"]["text"]) <= 150
    assert len(blocks[2]["text"]["text"]) <= 3000
    assert blocks[2]["text"]["text"].endswith("…")
    assert "*Labels*\nnone" in field_texts(blocks)


# --- through slack-sdk against the fake ----------------------------------------------------


def config(server: FakeSlackServer, **overrides: Any) -> SlackConfig:
    fields: dict[str, Any] = {
        "type": "slack",
        "token": server.token,
        "channel": "#alerts",
        "base_url": server.base_url,
        "timeout": 5,
    }
    fields.update(overrides)
    return SlackConfig(**fields)


@pytest_asyncio.fixture
async def slack(slack_server: FakeSlackServer) -> AsyncIterator[SlackNotifier]:
    notifier = SlackNotifier("desk-slack", config(slack_server))
    yield notifier
    await notifier.aclose()


async def test_firing_and_resolved_arrive(
    slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    await slack.send(one(make_alert()))
    await slack.send(one(make_alert(state="resolved", seq=4, value=8.31)))

    first, second = slack_server.requests
    assert first.path == "/api/chat.postMessage"
    assert first.content_type == "application/json"
    assert first.headers["Authorization"] == f"Bearer {slack_server.token}"
    assert first.status == 200
    assert first.body["channel"] == "#alerts"
    assert first.body["unfurl_links"] is False
    assert "7.98 below 8.00" in first.body["text"]
    [att] = first.body["attachments"]
    assert att["color"] == "#F49D37"
    assert "*Value*\n7.98 below 8.00" in field_texts(att["blocks"])
    assert f"*Time (New York)*\n{NY_TIME}" in field_texts(att["blocks"])

    assert second.body["attachments"][0]["color"] == "#2E933C"
    assert second.body["text"].startswith("RESOLVED warning rotation-spread-compresses")
    assert "8.31 at or above 8.00" in second.body["text"]
    # Both messages were stored by the fake, under increasing string ts.
    stamps = sorted(ts for _, ts in slack_server.messages)
    assert len(stamps) == 2 and stamps[0] < stamps[1]


async def test_connection_is_reused_and_closed(
    slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    await slack.send(one(make_alert()))
    session = slack._client.session if slack._client else None
    await slack.send(one(make_alert(seq=5)))
    assert session is not None and slack._client is not None
    assert slack._client.session is session
    await slack.aclose()
    assert session.closed
    await slack.send(one(make_alert(seq=6)))  # a closed notifier reopens on demand
    assert len(slack_server.requests) == 3


async def test_channel_not_found_is_permanent_and_says_what_to_fix(
    slack: SlackNotifier, slack_server: FakeSlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # slack-sdk logs requests at DEBUG: the token must not leak
    slack_server.fail_with("channel_not_found")
    with pytest.raises(DeliveryError) as info:
        await slack.send(one(make_alert()))
    err = info.value
    assert not err.retryable
    assert str(err) == (
        "Slack says channel_not_found: invite the bot to #alerts or fix channels.desk-slack.channel"
    )
    assert slack_server.token not in str(err)
    assert "chat.postMessage" in caplog.text  # the SDK did log the request...
    assert slack_server.token not in caplog.text  # ...with the token redacted
    assert len(slack_server.requests) == 1


async def test_real_channel_check_names_the_channel(slack_server: FakeSlackServer) -> None:
    slack_server.channels = {"alerts": "C0ALERTS01"}
    typo = SlackNotifier("ops", config(slack_server, channel="alerts-typo"))
    by_id = SlackNotifier("ops", config(slack_server, channel="C0ALERTS01"))
    try:
        with pytest.raises(DeliveryError, match=r"invite the bot to #alerts-typo") as info:
            await typo.send(one(make_alert()))
        assert not info.value.retryable
        await by_id.send(one(make_alert()))
    finally:
        await typo.aclose()
        await by_id.aclose()
    assert [channel for channel, _ in slack_server.messages] == ["C0ALERTS01"]


async def test_wrong_token_is_permanent_and_never_echoed(slack_server: FakeSlackServer) -> None:
    secret = "xoxb-9999-wrong-secret-value"
    notifier = SlackNotifier("desk-slack", config(slack_server, token=secret))
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(one(make_alert()))
    finally:
        await notifier.aclose()
    assert not info.value.retryable
    assert str(info.value).startswith("Slack says invalid_auth: ")
    assert "channels.desk-slack.token" in str(info.value)
    assert secret not in str(info.value)
    assert slack_server.requests[0].headers["Authorization"] == f"Bearer {secret}"


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        ("not_in_channel", "/invite"),
        ("is_archived", "#alerts is archived"),
        ("account_inactive", "reinstall the Slack app"),
        ("not_authed", "set channels.desk-slack.token"),
    ],
)
async def test_other_permanent_errors(
    slack: SlackNotifier, slack_server: FakeSlackServer, error: str, fix: str
) -> None:
    slack_server.fail_with(error)
    with pytest.raises(DeliveryError) as info:
        await slack.send(one(make_alert()))
    assert not info.value.retryable
    assert str(info.value).startswith(f"Slack says {error}: ")
    assert fix in str(info.value)


async def test_rate_limit_is_retryable_with_retry_after(
    slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    slack_server.rate_limit(retry_after=17)
    with pytest.raises(DeliveryError) as info:
        await slack.send(one(make_alert()))
    assert info.value.retryable
    assert info.value.retry_after == 17.0
    assert "17s" in str(info.value)
    # The client did not retry on its own: retry timing belongs to the dispatcher.
    assert [r.status for r in slack_server.requests] == [429]
    await slack.send(one(make_alert()))  # the next call goes through
    assert slack_server.requests[-1].status == 200


async def test_server_error_is_retryable(
    slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    slack_server.server_error(status=500)
    with pytest.raises(DeliveryError) as info:
        await slack.send(one(make_alert()))
    assert info.value.retryable
    assert info.value.retry_after is None
    assert "HTTP 500" in str(info.value)


async def test_transient_ok_false_is_retryable(
    slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    slack_server.fail_with("internal_error")
    with pytest.raises(DeliveryError) as info:
        await slack.send(one(make_alert()))
    assert info.value.retryable


async def test_unreachable_slack_is_retryable() -> None:
    server = FakeSlackServer()
    async with server:
        cfg = config(server)
    # The server is stopped: nothing listens on that port any more.
    notifier = SlackNotifier("desk-slack", cfg)
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(one(make_alert()))
    finally:
        await notifier.aclose()
    assert info.value.retryable
    assert "could not reach Slack" in str(info.value)
    assert server.token not in str(info.value)


def test_missing_token_disables_the_channel() -> None:
    cfg = SlackConfig.model_validate({"type": "slack", "token": "", "channel": "#alerts"})
    notifier = SlackNotifier("desk-slack", cfg)
    assert notifier.disabled_reason() == "token is empty"
    assert notifier.disabled_reason({"token": "SLACK_BOT_TOKEN"}) == (
        "token is empty (export SLACK_BOT_TOKEN)"
    )
    full = SlackConfig.model_validate({"type": "slack", "token": "xoxb-1", "channel": "#a"})
    assert SlackNotifier("desk-slack", full).disabled_reason() is None


# --- the fake itself, through the real client ----------------------------------------------


async def test_fake_supports_update_and_form_bodies(slack_server: FakeSlackServer) -> None:
    client = AsyncWebClient(token=slack_server.token, base_url=slack_server.base_url)
    posted = await client.chat_postMessage(channel="C0TEST0001", text="first")
    ts = posted["ts"]
    assert isinstance(ts, str) and ts.startswith("1700000000.")
    updated = await client.chat_update(channel="C0TEST0001", ts=ts, text="edited")
    assert updated["ts"] == ts and updated["text"] == "edited"
    assert slack_server.messages[("C0TEST0001", ts)]["text"] == "edited"

    # A form-encoded call (as other Web API methods send) is parsed too.
    form = await client.api_call(
        "chat.postMessage", data={"channel": "C0TEST0001", "text": "via form"}
    )
    assert form["ts"] > ts
    assert slack_server.requests[-1].content_type == "application/x-www-form-urlencoded"
    assert slack_server.requests[-1].body["text"] == "via form"

    with pytest.raises(SlackApiError) as info:
        await client.chat_update(channel="C0TEST0001", ts="1.000000", text="x")
    assert info.value.response["error"] == "message_not_found"

    reqs = await slack_server.wait_for(lambda rs: len(rs) == 4)
    assert [r.path for r in reqs] == [
        "/api/chat.postMessage",
        "/api/chat.update",
        "/api/chat.postMessage",
        "/api/chat.update",
    ]


# --- sparkline, threads, resolve edits, groups (through slack-sdk against the fake) ---------


def test_sparkline_scales_between_low_and_high() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▄▄▄"
    assert sparkline([1]) == ""
    assert len(sparkline(list(range(100)))) == 40  # the latest points only


def test_series_renders_a_sparkline_and_nothing_without_one() -> None:
    series = "8.40 8.31 8.22 x 8.15 nan 8.02 7.98"
    alert = make_alert(values={"spread": 7.98, "series": series})
    assert parse_series(alert) == [8.40, 8.31, 8.22, 8.15, 8.02, 7.98]
    blocks = build_blocks(alert)
    trend = blocks[-2]["elements"][0]["text"]
    assert trend == "█▇▅▄▂▁  8.40 → 7.98  (low 7.98, high 8.40)"
    assert not any(ch in all_text(build_blocks(make_alert())) for ch in SPARK_CHARS)


def fast_config(server: FakeSlackServer, **overrides: Any) -> SlackConfig:
    """As `config`, with the channel's pacing lifted so a test may send many messages."""
    return config(server, rate_limit=1000, **overrides)


@pytest_asyncio.fixture
async def fast_slack(slack_server: FakeSlackServer) -> AsyncIterator[SlackNotifier]:
    notifier = SlackNotifier("desk-slack", fast_config(slack_server))
    yield notifier
    await notifier.aclose()


def with_thread(alert: AlertEvent, receipt: Receipt | None) -> Notification:
    return replace(one(alert), thread=receipt)


async def test_first_message_returns_its_receipt(
    fast_slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    receipt = await fast_slack.deliver(one(make_alert()))
    assert receipt is not None
    [(channel, message)] = slack_server.top_level()
    assert receipt["channel"] == channel and channel.startswith("C")  # the id, not "#alerts"
    assert receipt["ts"] == message["ts"]
    assert json.loads(receipt["blocks"]) == message["attachments"][0]["blocks"]


async def test_reminder_and_resolve_thread_under_the_first_message(
    fast_slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    receipt = await fast_slack.deliver(one(make_alert()))
    assert receipt is not None
    reminder = make_alert(repeat=1, value=7.91, summary="still compressed")
    assert await fast_slack.deliver(with_thread(reminder, receipt)) == receipt
    resolved = make_alert(state="resolved", value=8.31, summary="spread back above 8")
    assert await fast_slack.deliver(with_thread(resolved, receipt)) == receipt

    parent_ts = receipt["ts"]
    first, second = slack_server.replies(parent_ts)
    assert first["thread_ts"] == second["thread_ts"] == parent_ts
    assert "*Still firing* at 13:47:00 EDT (reminder 1) · 7.91 below 8.00" in all_text(
        first["attachments"][0]["blocks"]
    )
    assert second["attachments"][0]["color"] == RESOLVED_COLOR
    assert "*RESOLVED* at 13:47:00 EDT · 8.31 at or above 8.00" in all_text(
        second["attachments"][0]["blocks"]
    )
    # The parent was edited before the reply (an update is safe to repeat, a reply is not).
    paths = [r.path for r in slack_server.requests]
    assert paths == ["/api/chat.postMessage"] * 2 + ["/api/chat.update", "/api/chat.postMessage"]
    [(channel, ts, changed)] = slack_server.updates
    assert set(changed) == {"text", "attachments"}
    assert (channel, ts) == (receipt["channel"], parent_ts)
    parent = slack_server.messages[(channel, parent_ts)]
    assert parent["reply_count"] == 2
    [att] = parent["attachments"]
    assert att["color"] == RESOLVED_COLOR
    assert att["blocks"][0]["text"]["text"] == "RESOLVED: rotation-spread-compresses"
    # Its content is kept: the firing value and time are still there, with a resolved note.
    assert "*Value*\n7.98 below 8.00" in field_texts(att["blocks"])
    assert f"Resolved at {NY_TIME} · 8.31 at or above 8.00" in all_text(att["blocks"])
    assert parent["text"].startswith("RESOLVED warning rotation-spread-compresses")
    assert len(slack_server.top_level()) == 1


async def test_resolve_without_stored_blocks_rebuilds_the_parent(
    fast_slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    receipt = await fast_slack.deliver(one(make_alert()))
    assert receipt is not None
    bare = {"channel": receipt["channel"], "ts": receipt["ts"]}
    await fast_slack.deliver(with_thread(make_alert(state="resolved", value=8.3), bare))
    [att] = slack_server.messages[(bare["channel"], bare["ts"])]["attachments"]
    assert att["color"] == RESOLVED_COLOR
    assert "*Value*\n8.30 at or above 8.00" in field_texts(att["blocks"])


async def test_resolve_of_a_deleted_message_is_posted_anew(
    fast_slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    receipt = await fast_slack.deliver(one(make_alert()))
    assert receipt is not None
    slack_server.delete(receipt["channel"], receipt["ts"])
    new = await fast_slack.deliver(with_thread(make_alert(state="resolved", value=8.3), receipt))
    assert new is not None and new["ts"] != receipt["ts"]
    [(_, message)] = slack_server.top_level()
    assert message["attachments"][0]["color"] == RESOLVED_COLOR
    assert "thread_ts" not in message
    assert slack_server.requests[1].body["ts"] == receipt["ts"]  # the update was tried first


async def test_group_lists_alerts_most_severe_first_capped(
    fast_slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    alerts = [
        make_alert(
            rule="big-move",
            key=f"big-move{{symbol=S{i}}}",
            labels={"symbol": f"S{i}"},
            severity="info",
            summary=f"S{i} moved",
        )
        for i in range(10)
    ]
    alerts.insert(4, make_alert(rule="big-move", labels={"symbol": "NVDA"}, severity="critical"))
    alerts.append(make_alert(rule="big-move", labels={"symbol": "AMD"}, state="resolved"))
    alerts.insert(0, make_alert(rule="big-move", labels={"symbol": "TSLA"}, severity="warning"))
    n = Notification(channel="desk", key="g1", alerts=tuple(alerts), kind="group")
    receipt = await fast_slack.deliver(n)
    assert receipt is not None
    [request] = slack_server.requests
    [att] = request.body["attachments"]
    assert att["color"] == COLORS["critical"]
    header, section, context = att["blocks"]
    assert header["text"]["text"] == "13 alerts"
    lines = section["text"]["text"].split("\n")
    assert lines[0].startswith("• *FIRING* critical big-move NVDA: 7.98 below 8.00")
    assert lines[1].startswith("• *FIRING* warning big-move TSLA")
    assert lines[-1] == "+3 more"
    assert len(lines) == 11
    assert "AMD" not in section["text"]["text"]  # resolved ones go last, here past the cap
    assert context["elements"][0]["text"] == "12 firing, 1 resolved"
    assert request.body["text"].startswith("13 alerts (12 firing, 1 resolved): FIRING critical")


async def test_notice_is_plain_text(
    fast_slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    await fast_slack.deliver(Notification(channel="desk", key="n1", kind="notice", text="hello"))
    [request] = slack_server.requests
    assert request.body["text"] == "hello"
    assert "attachments" not in request.body


async def test_permanent_error_is_logged_once_per_channel(
    fast_slack: SlackNotifier, slack_server: FakeSlackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daemon.notify")
    slack_server.fail_with("channel_not_found", times=3)
    for seq in (1, 2, 3):
        with pytest.raises(DeliveryError) as info:
            await fast_slack.deliver(one(make_alert(seq=seq)))
        assert not info.value.retryable
    logged = [r for r in caplog.records if "cannot deliver" in r.getMessage()]
    assert len(logged) == 1
    assert "invite the bot to #alerts" in logged[0].getMessage()
    await fast_slack.deliver(one(make_alert(seq=4)))  # fixed: the memory is cleared
    slack_server.fail_with("channel_not_found")
    with pytest.raises(DeliveryError):
        await fast_slack.deliver(one(make_alert(seq=5)))
    assert len([r for r in caplog.records if "cannot deliver" in r.getMessage()]) == 2


async def test_slack_paces_itself_to_its_rate(slack_server: FakeSlackServer) -> None:
    notifier = SlackNotifier("desk-slack", config(slack_server, rate_limit=40))
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        for seq in range(5):  # a burst of 3, then one every 25 ms
            await notifier.deliver(one(make_alert(seq=seq)))
        elapsed = loop.time() - start
    finally:
        await notifier.aclose()
    assert elapsed >= 0.045
    assert len(slack_server.messages) == 5
