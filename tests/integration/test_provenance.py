"""Provenance (issue 11 item 6): each alert carries the inputs it was judged on and its rule's
version, through JSON, and into Slack's context line, the SMS, the webhook body and the console."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
import yaml

from daemon.alerts import AlertEvent, Input
from daemon.events import Tick, dt_to_ms
from daemon.notify.console import console_line
from daemon.notify.notification import Notification
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.notify.slack_blocks import build_blocks, build_reply, provenance_text
from daemon.notify.sms import (
    SmsConfig,
    SmsNotifier,
    gsm7_length,
    segments,
    sms_provenance,
    sms_text,
)
from daemon.notify.webhook import WebhookConfig, WebhookNotifier
from daemon.rules.schema import Rule, RuleFile
from daemon.rules.version import rule_version
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.fakes.webhook_server import FakeWebhookServer
from tests.helpers import make_alert as base_alert

# The alert fires at 13:47:00 New York (EDT); the two bars it was judged on closed at 13:46.
BAR_MS = dt_to_ms(datetime(2026, 4, 9, 17, 46, tzinfo=UTC))
XMAG = Input("XMAG", 27.1, BAR_MS, "alpaca", "bar")
MAGS = Input("MAGS", 61.2, BAR_MS, "alpaca", "bar")
VERSION = "3f2a9c1e"
SLACK_LINE = (
    "judged on XMAG 27.10 at 13:46:00 ET (alpaca, bar) · MAGS 61.20 at 13:46:00 ET (alpaca, bar)"
    " · rule v3f2a9c1e"
)
SMS_TAIL = "(XMAG 27.10@13:46 MAGS 61.20@13:46 v3f2a9c1e)"


def make_alert(**overrides: Any) -> AlertEvent:
    fields: dict[str, Any] = {
        "key": "rotation-spread-compresses{symbol=XMAG-MAGS}",
        "labels": {"symbol": "XMAG-MAGS"},
        "values": {"spread": 7.98},
        "summary": "XMAG-MAGS YTD spread compressed to 7.98",
        "inputs": (XMAG, MAGS),
        "rule_version": VERSION,
    }
    fields.update(overrides)
    return base_alert(**fields)


def one(alert: AlertEvent, channel: str = "test") -> Notification:
    return Notification.single(alert, channel)


# --- AlertEvent fields and JSON ------------------------------------------------------------


def test_existing_constructors_get_empty_provenance() -> None:
    plain = base_alert()
    assert plain.inputs == () and plain.rule_version == ""


def test_json_round_trip_with_provenance_is_compact() -> None:
    alert = make_alert()
    text = alert.to_json()
    assert AlertEvent.from_json(text) == alert
    d = json.loads(text)
    assert d["rule_version"] == VERSION
    assert d["inputs"] == [
        {"s": "XMAG", "p": 27.1, "t": BAR_MS, "src": "alpaca", "k": "bar"},
        {"s": "MAGS", "p": 61.2, "t": BAR_MS, "src": "alpaca", "k": "bar"},
    ]
    back = AlertEvent.from_json(text)
    assert isinstance(back.inputs, tuple) and all(isinstance(i, Input) for i in back.inputs)


def test_input_without_feed_or_kind_leaves_them_out() -> None:
    bare = Input("NVDA", 101.5, BAR_MS)
    assert bare.to_dict() == {"s": "NVDA", "p": 101.5, "t": BAR_MS}
    assert Input.from_dict(bare.to_dict()) == bare


def test_no_provenance_means_the_json_of_before() -> None:
    plain = base_alert()
    d = json.loads(plain.to_json())
    assert "inputs" not in d and "rule_version" not in d
    assert AlertEvent.from_json(plain.to_json()) == plain


def test_old_json_without_the_fields_still_loads() -> None:
    """An alert queued in a Redis outbox before provenance existed."""
    old = (
        '{"channels":["desk"],"comparison":"below","key":"k","labels":{"symbol":"NVDA"},'
        '"repeat":0,"rule":"r","seq":2,"severity":"warning","state":"firing","summary":"s",'
        '"threshold":8.0,"ts_ms":1775756820000,"value":7.98,"values":{}}'
    )
    alert = AlertEvent.from_json(old)
    assert alert.inputs == () and alert.rule_version == ""
    assert alert.channels == ("desk",) and alert.value == 7.98


def test_notification_json_carries_provenance() -> None:
    n = one(make_alert(), "desk")
    assert Notification.from_json(n.to_json()).alert == n.alert


def test_input_from_tick() -> None:
    tick = Tick("XMAG", BAR_MS, 27.1, kind="bar", source="alpaca")
    assert Input.from_tick(tick) == XMAG


# --- rule_version --------------------------------------------------------------------------

ONE_WAY = """
rules:
  # the desk's NVDA level
  - name: nvda-100
    when:
      threshold: {symbols: NVDA, above: 100}
    for: 5m
    message: "{symbol} crossed {value:.2f}"
    channels: [console]
"""
OTHER_WAY = """
rules:
- channels: ["console"]   # key order, quoting, spellings and comments differ
  message: '{symbol} crossed {value:.2f}'
  for: 300s
  when:
    threshold:
      above: 100.0
      symbols: 'NVDA'
  name: "nvda-100"
"""


def parse(text: str) -> Rule:
    [rule] = RuleFile.model_validate(yaml.safe_load(text)).rules
    return rule


def test_rule_version_ignores_how_the_yaml_is_written() -> None:
    v = rule_version(parse(ONE_WAY))
    assert len(v) == 8 and all(c in "0123456789abcdef" for c in v)
    assert rule_version(parse(OTHER_WAY)) == v
    assert rule_version(parse(ONE_WAY)) == v  # stable across calls


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("above: 100}", "above: 101}"),  # a threshold
        ("for: 5m", "for: 6m"),  # how long it must hold
        ("crossed {value:.2f}", "crossed {value:.1f}"),  # the message
        ("[console]", "[console, desk]"),  # who hears about it
    ],
)
def test_rule_version_changes_with_any_semantic_edit(old: str, new: str) -> None:
    assert old in ONE_WAY
    assert rule_version(parse(ONE_WAY.replace(old, new))) != rule_version(parse(ONE_WAY))


def test_rule_version_is_the_same_in_another_process() -> None:
    """Not salted by hash randomization: a restart keeps every rule's version."""
    code = (
        "import sys, yaml; from daemon.rules.schema import RuleFile; "
        "from daemon.rules.version import rule_version; "
        "print(rule_version(RuleFile.model_validate(yaml.safe_load(sys.stdin.read())).rules[0]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=ONE_WAY, capture_output=True, text=True, timeout=60,
        env={"PYTHONHASHSEED": "12345"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == rule_version(parse(ONE_WAY))


def test_version_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, daemon.rules.version; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'redis', 'aiohttp', 'pydantic', 'yaml', 'slack_sdk', 'twilio', 'jinja2'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- rendering (pure) ----------------------------------------------------------------------


def test_slack_provenance_line() -> None:
    assert provenance_text(make_alert()) == SLACK_LINE


def test_slack_provenance_leaves_out_what_is_missing() -> None:
    assert provenance_text(make_alert(inputs=())) == "rule v3f2a9c1e"
    assert provenance_text(make_alert(rule_version="")) == (
        "judged on XMAG 27.10 at 13:46:00 ET (alpaca, bar) · MAGS 61.20 at 13:46:00 ET "
        "(alpaca, bar)"
    )
    bare = make_alert(inputs=(Input("NVDA", 101.5, BAR_MS),), rule_version="")
    assert provenance_text(bare) == "judged on NVDA 101.50 at 13:46:00 ET"
    only_kind = make_alert(inputs=(Input("NVDA", 101.5, BAR_MS, kind="quote"),))
    assert provenance_text(only_kind).startswith("judged on NVDA 101.50 at 13:46:00 ET (quote) · ")
    assert provenance_text(make_alert(inputs=(), rule_version="")) == ""


def test_slack_without_provenance_has_only_the_id_in_its_context() -> None:
    blocks = build_blocks(make_alert(inputs=(), rule_version=""))
    assert blocks[-1] == {
        "type": "context",
        "elements": [
            {
                "type": "mrkdwn",
                "text": "alert rotation-spread-compresses{symbol=XMAG-MAGS}#1:firing",
            }
        ],
    }


def test_slack_input_from_another_day_shows_its_date() -> None:
    """A stale input is exactly what a reader wants to see: its date is written out."""
    yesterday = Input("XMAG", 27.1, BAR_MS - 86_400_000, "alpaca", "bar")
    assert provenance_text(make_alert(inputs=(yesterday,))).startswith(
        "judged on XMAG 27.10 at Apr 8 13:46:00 ET (alpaca, bar)"
    )


def test_slack_many_inputs_are_capped() -> None:
    many = tuple(Input(f"S{i}", 10.0 + i, BAR_MS, "polygon", "trade") for i in range(12))
    text = provenance_text(make_alert(inputs=many))
    assert "S7 17.00" in text and "S8" not in text
    assert text.endswith(" · +4 more · rule v3f2a9c1e")


def test_slack_escapes_provenance() -> None:
    odd = make_alert(inputs=(Input("A&B", 1.5, BAR_MS, "<feed>"),))
    [_, element] = build_blocks(odd)[-1]["elements"]
    assert element["text"].startswith("judged on A&amp;B 1.50 at 13:46:00 ET (&lt;feed&gt;)")


def test_slack_thread_reply_carries_provenance() -> None:
    resolved = make_alert(state="resolved", value=8.31)
    [*_, context] = build_reply(resolved)["attachments"][0]["blocks"]
    assert [e["text"] for e in context["elements"]][1] == SLACK_LINE


def test_sms_provenance_compact_form() -> None:
    assert sms_provenance(make_alert()) == SMS_TAIL
    assert sms_provenance(make_alert(inputs=())) == "(v3f2a9c1e)"
    assert sms_provenance(make_alert(rule_version="")) == "(XMAG 27.10@13:46 MAGS 61.20@13:46)"
    assert sms_provenance(make_alert(inputs=(), rule_version="")) == ""
    yesterday = Input("XMAG", 27.1, BAR_MS - 86_400_000)
    assert sms_provenance(make_alert(inputs=(yesterday,))) == "(XMAG 27.10@4/8 13:46 v3f2a9c1e)"


def test_sms_provenance_gives_way_input_by_input() -> None:
    alert = make_alert()
    assert sms_provenance(alert, room=len(SMS_TAIL)) == SMS_TAIL
    assert sms_provenance(alert, room=len(SMS_TAIL) - 1) == "(XMAG 27.10@13:46 +1 v3f2a9c1e)"
    assert sms_provenance(alert, room=20) == "(v3f2a9c1e)"
    assert sms_provenance(alert, room=10) == ""


def test_sms_text_appends_provenance_when_it_fits() -> None:
    text = sms_text(make_alert())
    assert text == (
        "FIRING warning rotation-spread-compresses: XMAG-MAGS YTD spread compressed to 7.98 "
        f"7.98 < 8.00 13:47 ET {SMS_TAIL}"
    )
    assert gsm7_length(text) <= 160


def test_sms_alert_text_wins_over_provenance() -> None:
    """A summary that fills the message is not cut for provenance, and no segment is added."""
    long = make_alert(summary="spread compressed hard " * 10)
    plain = sms_text(replace(long, inputs=(), rule_version=""))
    assert sms_text(long) == plain
    assert plain.endswith("... 7.98 < 8.00 13:47 ET")
    # Two segments allowed, but the text takes one: provenance may not make it two.
    mid = make_alert(summary="x" * 70)
    text = sms_text(mid, max_segments=2)
    assert segments(text) == 1 and text.endswith("13:47 ET (v3f2a9c1e)")


def test_sms_text_without_provenance_is_unchanged() -> None:
    assert sms_text(base_alert(summary="XMAG-MAGS YTD spread", channels=("phones",))) == (
        "FIRING warning rotation-spread-compresses: XMAG-MAGS YTD spread 7.98 < 8.00 13:47 ET"
    )


def test_console_shows_the_rule_version() -> None:
    line = console_line(make_alert())
    assert line.endswith(
        "  spread=7.98 below 8  v3f2a9c1e  | XMAG-MAGS YTD spread compressed to 7.98"
    )
    assert "v3f2a9c1e" not in console_line(make_alert(rule_version=""))


# --- through the real clients against the fakes --------------------------------------------


@pytest_asyncio.fixture
async def slack(slack_server: FakeSlackServer) -> AsyncIterator[SlackNotifier]:
    cfg = SlackConfig(
        type="slack",
        token=slack_server.token,
        channel="#alerts",
        base_url=slack_server.base_url,
        timeout=5,
        rate_limit=1000,
    )
    notifier = SlackNotifier("desk-slack", cfg)
    yield notifier
    await notifier.aclose()


async def test_slack_receives_the_provenance_in_its_context_block(
    slack: SlackNotifier, slack_server: FakeSlackServer
) -> None:
    receipt = await slack.deliver(one(make_alert()))
    [req] = slack_server.requests
    [att] = req.body["attachments"]
    context = att["blocks"][-1]
    assert context["type"] == "context"
    texts = [e["text"] for e in context["elements"]]
    assert texts == ["alert rotation-spread-compresses{symbol=XMAG-MAGS}#1:firing", SLACK_LINE]
    for piece in ("XMAG", "27.10", "MAGS", "61.20", "13:46:00 ET", "alpaca", "bar", "v3f2a9c1e"):
        assert piece in texts[1]

    # The resolve: the parent keeps what it fired on; the reply says what it resolved on.
    later = BAR_MS + 120_000
    resolved = make_alert(
        state="resolved",
        value=8.31,
        inputs=(replace(XMAG, price=27.4, ts_ms=later), replace(MAGS, price=61.0, ts_ms=later)),
    )
    await slack.deliver(replace(one(resolved), thread=receipt))
    assert receipt is not None
    [reply] = slack_server.replies(receipt["ts"])
    reply_context = reply["attachments"][0]["blocks"][-1]["elements"][1]["text"]
    assert reply_context.startswith("judged on XMAG 27.40 at 13:48:00 ET (alpaca, bar)")
    parent = slack_server.messages[(receipt["channel"], receipt["ts"])]
    assert SLACK_LINE in json.dumps(parent["attachments"], ensure_ascii=False)


async def test_sms_receives_the_compact_provenance(twilio_server: FakeTwilioServer) -> None:
    cfg = SmsConfig.model_validate(
        {
            "type": "sms",
            "account_sid": twilio_server.account_sid,
            "auth_token": twilio_server.auth_token,
            "from": "+15559870000",
            "to": ["+15551230001"],
            "base_url": twilio_server.base_url,
            "timeout": 5,
        }
    )
    notifier = SmsNotifier("phones", cfg)
    try:
        await notifier.deliver(one(make_alert(), "phones"))
    finally:
        await notifier.aclose()
    [req] = twilio_server.requests
    body = req.body["Body"]
    assert body.endswith(f"13:47 ET {SMS_TAIL}")
    assert [m["num_segments"] for m in twilio_server.sent] == ["1"]


async def test_webhook_body_carries_inputs_and_rule_version(
    webhook_server: FakeWebhookServer,
) -> None:
    cfg = WebhookConfig.model_validate(
        {"type": "webhook", "url": webhook_server.url, "secret": webhook_server.secret}
    )
    notifier = WebhookNotifier("hook", cfg)
    try:
        await notifier.deliver(one(make_alert(), "hook"))
        await notifier.deliver(one(base_alert(seq=2), "hook"))
    finally:
        await notifier.aclose()
    first, second = webhook_server.requests
    assert webhook_server.rejected == []
    [a] = json.loads(first.raw)["alerts"]
    assert a["rule_version"] == VERSION
    assert a["inputs"] == [
        {
            "symbol": "XMAG",
            "price": 27.1,
            "time": "2026-04-09T17:46:00Z",
            "ts_ms": BAR_MS,
            "source": "alpaca",
            "kind": "bar",
        },
        {
            "symbol": "MAGS",
            "price": 61.2,
            "time": "2026-04-09T17:46:00Z",
            "ts_ms": BAR_MS,
            "source": "alpaca",
            "kind": "bar",
        },
    ]
    [b] = json.loads(second.raw)["alerts"]
    assert b["inputs"] == [] and b["rule_version"] == ""  # always present, for receivers
