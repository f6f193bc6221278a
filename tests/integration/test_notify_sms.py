"""SMS channel: segment-aware GSM-7/UCS-2 text (pure), config validation, and the real twilio
client against the fake Messages API."""

from __future__ import annotations

import functools
import logging
import operator
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest
import pytest_asyncio
from pydantic import Field, TypeAdapter, ValidationError

from daemon.alerts import AlertEvent
from daemon.events import dt_to_ms
from daemon.notify.apprise import AppriseConfig, AppriseNotifier
from daemon.notify.console import ConsoleConfig, ConsoleNotifier
from daemon.notify.failure import DeliveryError
from daemon.notify.notification import Notification
from daemon.notify.registry import BUILTIN_NOTIFIERS, channel_config_models
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.notify.sms import (
    SmsConfig,
    SmsNotifier,
    encoding_of,
    gsm7_length,
    segments,
    sms_group_text,
    sms_notice,
    sms_text,
    to_gsm7,
    ucs2_length,
)
from daemon.notify.webhook import WebhookConfig, WebhookNotifier
from tests.fakes.twilio_server import FakeTwilioServer
from tests.helpers import make_alert as base_alert


def one(alert: AlertEvent) -> Notification:
    """One alert transition as the notification a channel is asked to send."""
    return Notification.single(alert, "test")


TS_MS = dt_to_ms(datetime(2026, 4, 9, 17, 47, tzinfo=UTC))  # 13:47 in New York
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
ALICE, BOB, CAROL = "+15551230001", "+15551230002", "+447700900003"
SENDER = "+15559870000"


def make_alert(**overrides: Any) -> AlertEvent:
    return base_alert(
        **{**{"summary": "XMAG-MAGS YTD spread", "channels": ("phones",)}, **overrides}
    )


def assert_one_gsm_segment(text: str) -> None:
    assert gsm7_length(text) <= 160, (gsm7_length(text), text)
    assert set(text) <= GSM7, set(text) - GSM7


LONG_SUMMARY = (
    "NVDA says “demand digestion” in data-center GPUs — hyperscalers’ capex ‘pausing’… 🚨📉 "
    "Jensen: “we’re supply-constrained”; analysts see Q3 guide −4% vs consensus • "
) * 4


# --- sms_text (pure) -----------------------------------------------------------------------


def test_sms_text_reads_like_the_spec() -> None:
    assert sms_text(make_alert()) == (
        "FIRING warning rotation-spread-compresses: XMAG-MAGS YTD spread 7.98 < 8.00 13:47 ET"
    )


def test_resolved_sms_states_the_true_relation() -> None:
    text = sms_text(make_alert(state="resolved", value=8.2, summary="back to normal"))
    assert (
        text == "RESOLVED warning rotation-spread-compresses: back to normal 8.20 >= 8.00 13:47 ET"
    )


def test_long_typographic_summary_fits_one_gsm_segment() -> None:
    text = sms_text(make_alert(summary=LONG_SUMMARY, severity="critical"))
    assert_one_gsm_segment(text)
    assert text.startswith(
        'FIRING critical rotation-spread-compresses: NVDA says "demand digestion"'
    )
    assert "hyperscalers' capex 'pausing'..." in text  # quotes and ellipsis transliterated
    assert text.endswith("... 7.98 < 8.00 13:47 ET")  # summary cut, value and time kept
    assert gsm7_length(text) >= 150  # the room is used, not wasted


def test_extension_characters_count_twice() -> None:
    text = sms_text(make_alert(summary="€[]{}" * 60))
    assert_one_gsm_segment(text)
    assert len(text) < 160  # fewer characters than septets: each € [ ] { } costs two
    assert gsm7_length("€a") == 3


def test_absurd_rule_name_still_keeps_value_and_time() -> None:
    text = sms_text(make_alert(rule="x" * 300, summary="ignored"))
    assert_one_gsm_segment(text)
    assert text.endswith("... 7.98 < 8.00 13:47 ET")


def test_text_without_value_or_summary() -> None:
    text = sms_text(make_alert(value=None, threshold=None, summary=""))
    assert text == "FIRING warning rotation-spread-compresses: 13:47 ET"


def test_to_gsm7_keeps_gsm_accents_and_folds_others() -> None:
    assert to_gsm7("Société Générale ô ł\n\t “x”  ✓") == 'Société Générale o l "x"'


# --- config --------------------------------------------------------------------------------


def sms_config(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "type": "sms",
        "account_sid": "AC" + "1" * 32,
        "auth_token": "tok",
        "from": SENDER,
        "to": [ALICE],
    }
    raw.update(overrides)
    return raw


def test_config_reads_yaml_from_key_and_dedupes_numbers() -> None:
    cfg = SmsConfig.model_validate(sms_config(to=[ALICE, BOB, ALICE]))
    assert cfg.from_ == SENDER
    assert cfg.to == [ALICE, BOB]


@pytest.mark.parametrize(
    "bad", ["5551230001", "+1 555 123 0001", "+0123456789", "+1555", "tel:+1555"]
)
def test_bad_number_is_a_validation_error_naming_it(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        SmsConfig.model_validate(sms_config(to=[ALICE, bad]))
    text = str(info.value)
    assert repr(bad) in text
    assert "write numbers in E.164 form, e.g. +15551234567" in text


def test_bad_sender_and_empty_recipients_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"E\.164"):
        SmsConfig.model_validate(sms_config(**{"from": "TICKWATCH"}))
    with pytest.raises(ValidationError, match="at least 1"):
        SmsConfig.model_validate(sms_config(to=[]))


def test_registry_union_parses_each_channel_type() -> None:
    assert {
        "console": ConsoleNotifier,
        "slack": SlackNotifier,
        "sms": SmsNotifier,
        "webhook": WebhookNotifier,
        "apprise": AppriseNotifier,
    } == BUILTIN_NOTIFIERS
    models = channel_config_models()
    assert set(models) >= {ConsoleConfig, SlackConfig, SmsConfig, WebhookConfig, AppriseConfig}
    # Built from the registry at runtime, the way config parsing will build it.
    union: Any = functools.reduce(operator.or_, models)
    adapter: TypeAdapter[Any] = TypeAdapter(Annotated[union, Field(discriminator="type")])
    assert isinstance(adapter.validate_python(sms_config()), SmsConfig)
    assert isinstance(adapter.validate_python({"type": "console"}), ConsoleConfig)
    with pytest.raises(ValidationError, match="channel"):
        adapter.validate_python({"type": "slack", "token": "x"})
    with pytest.raises(ValidationError, match="sms"):
        adapter.validate_python({"type": "pager"})


# --- through the twilio client against the fake --------------------------------------------


def notifier_for(server: FakeTwilioServer, *to: str, **overrides: Any) -> SmsNotifier:
    raw = sms_config(
        account_sid=server.account_sid,
        auth_token=server.auth_token,
        to=list(to),
        base_url=server.base_url,
        timeout=5,
    )
    raw.update(overrides)
    return SmsNotifier("phones", SmsConfig.model_validate(raw))


@pytest_asyncio.fixture
async def sms(twilio_server: FakeTwilioServer) -> AsyncIterator[SmsNotifier]:
    notifier = notifier_for(twilio_server, ALICE, BOB, CAROL)
    yield notifier
    await notifier.aclose()


async def test_one_message_per_recipient(sms: SmsNotifier, twilio_server: FakeTwilioServer) -> None:
    await sms.send(one(make_alert(summary=LONG_SUMMARY)))
    reqs = twilio_server.requests
    assert [r.body["To"] for r in reqs] == [ALICE, BOB, CAROL]
    for r in reqs:
        assert r.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
        assert r.content_type == "application/x-www-form-urlencoded"
        assert r.headers["Authorization"].startswith("Basic ")
        assert r.body["From"] == SENDER
        assert r.status == 201
        assert_one_gsm_segment(r.body["Body"])
    assert len({r.body["Body"] for r in reqs}) == 1
    assert [m["num_segments"] for m in twilio_server.sent] == ["1", "1", "1"]


async def test_unsubscribed_recipient_does_not_stop_the_others(
    sms: SmsNotifier, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.unsubscribe(BOB)
    with pytest.raises(DeliveryError) as info:
        await sms.send(one(make_alert()))
    assert [m["to"] for m in twilio_server.sent] == [ALICE, CAROL]
    err = info.value
    assert not err.retryable
    assert "1 of 3 recipient(s)" in str(err)
    assert f"{BOB} has unsubscribed (replied STOP) (Twilio 21610)" in str(err)
    assert "START" in str(err)


async def test_auth_failure_is_permanent_and_stops_early(
    twilio_server: FakeTwilioServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-token-8c1f0e2d"
    notifier = notifier_for(twilio_server, ALICE, BOB, auth_token=secret)
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(one(make_alert()))
    finally:
        await notifier.aclose()
    err = info.value
    assert not err.retryable
    assert [r.status for r in twilio_server.requests] == [401]  # BOB was not tried in vain
    assert "Twilio authentication failed (20003)" in str(err)
    assert f"{BOB}: not attempted" in str(err)
    assert "channels.phones.account_sid and auth_token" in str(err)
    assert secret not in str(err)
    assert "Messages.json" in caplog.text  # twilio did log the request...
    assert secret not in caplog.text  # ...without the credentials


async def test_rate_limit_is_retryable_and_the_retry_skips_numbers_already_texted(
    sms: SmsNotifier, twilio_server: FakeTwilioServer
) -> None:
    alert = make_alert()
    await sms.send(one(make_alert(seq=0)))  # warm-up on another alert: all three get it
    twilio_server.requests.clear()
    twilio_server.fail_with(429, 20429, "Too Many Requests", to=BOB)
    with pytest.raises(DeliveryError) as info:
        await sms.send(one(alert))
    assert info.value.retryable
    assert "rate limited by Twilio" in str(info.value)
    assert [(r.body["To"], r.status) for r in twilio_server.requests] == [(ALICE, 201), (BOB, 429)]
    assert f"{CAROL}: not attempted" in str(info.value)

    await sms.send(one(alert))  # the dispatcher's retry
    assert [r.body["To"] for r in twilio_server.requests[2:]] == [BOB, CAROL]


async def test_server_error_is_retryable_but_others_still_get_it(
    sms: SmsNotifier, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.server_error(to=ALICE)
    alert = make_alert()
    with pytest.raises(DeliveryError) as info:
        await sms.send(one(alert))
    assert info.value.retryable
    assert "HTTP 500" in str(info.value)
    assert [m["to"] for m in twilio_server.sent] == [BOB, CAROL]
    await sms.send(one(alert))  # retry: only ALICE is still owed the message
    assert [m["to"] for m in twilio_server.sent] == [BOB, CAROL, ALICE]


async def test_mixed_failures_are_summarized_together(
    sms: SmsNotifier, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.fail_with(400, 21614, "'To' number is not a valid mobile number", to=ALICE)
    twilio_server.server_error(to=CAROL)
    alert = make_alert()
    with pytest.raises(DeliveryError) as info:
        await sms.send(one(alert))
    message = str(info.value)
    assert info.value.retryable  # CAROL may still succeed
    assert "2 of 3 recipient(s)" in message
    assert f"{ALICE} cannot receive SMS" in message and f"{CAROL}: Twilio server error" in message
    await sms.send(one(alert))  # the retry texts CAROL only: ALICE's failure is final
    assert [r.body["To"] for r in twilio_server.requests[3:]] == [CAROL]


async def test_unreachable_twilio_is_retryable() -> None:
    server = FakeTwilioServer()
    async with server:
        notifier = notifier_for(server, ALICE)
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(one(make_alert()))
    finally:
        await notifier.aclose()
    assert info.value.retryable
    assert "could not reach Twilio" in str(info.value)


async def test_fake_rejects_a_bad_number_as_twilio_does(twilio_server: FakeTwilioServer) -> None:
    # Config validation normally stops this; the fake's own check is exercised directly.
    notifier = notifier_for(twilio_server, ALICE)
    notifier.config.to.append("+1555")
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.send(one(make_alert()))
    finally:
        await notifier.aclose()
    assert not info.value.retryable
    assert "+1555 is not a valid phone number (Twilio 21211)" in str(info.value)
    reqs = await twilio_server.wait_for(lambda rs: len(rs) == 2)
    assert [r.status for r in reqs] == [201, 400]


async def test_aclose_closes_the_http_session(
    sms: SmsNotifier, twilio_server: FakeTwilioServer
) -> None:
    await sms.send(one(make_alert()))
    http = sms._http
    assert http is not None and http.session is not None
    await sms.aclose()
    assert http.session.closed


# --- encodings, segments, groups ----------------------------------------------------------

RUSSIAN = "Сбербанк повысил прогноз по капзатратам на ИИ, акции выросли на 4% за день " * 3


def test_text_in_another_script_is_kept_as_ucs2_within_70() -> None:
    text = sms_text(make_alert(rule="sber-capex", summary=RUSSIAN))
    assert encoding_of(text) == "UCS-2"
    assert ucs2_length(text) <= 70
    assert "Сбербанк" in text
    assert text.endswith("... 7.98 < 8.00 13:47 ET")
    assert segments(text) == 1


def test_emoji_are_dropped_to_keep_gsm7() -> None:
    text = sms_text(make_alert(summary="NVDA 🚀 beats — guidance raised… ✅"))
    assert encoding_of(text) == "GSM-7"
    assert "NVDA beats - guidance raised..." in text


@pytest.mark.parametrize(
    ("summary", "encoding", "budget"),
    [(LONG_SUMMARY, "GSM-7", 306), (RUSSIAN, "UCS-2", 134), ("€[]{}" * 80, "GSM-7", 306)],
)
def test_two_segments_use_the_split_budget(summary: str, encoding: str, budget: int) -> None:
    text = sms_text(make_alert(summary=summary), max_segments=2)
    assert encoding_of(text) == encoding
    units = gsm7_length(text) if encoding == "GSM-7" else ucs2_length(text)
    assert budget - 12 <= units <= budget
    assert segments(text) == 2
    assert text.endswith("7.98 < 8.00 13:47 ET")


def test_reminder_says_still_firing() -> None:
    assert sms_text(make_alert(repeat=2)).startswith("STILL FIRING warning ")


def big_move(symbol: str, value: float, **overrides: Any) -> AlertEvent:
    fields: dict[str, Any] = {
        "rule": "big-move",
        "key": f"big-move{{symbol={symbol}}}",
        "labels": {"symbol": symbol},
        "value": value,
        "threshold": -3.0,
        "comparison": "below",
    }
    fields.update(overrides)
    return make_alert(**fields)


def test_group_text_lists_most_severe_first() -> None:
    alerts = [
        big_move("AMD", -3.1),
        big_move("NVDA", -3.2, severity="critical"),
        big_move("TSLA", -2.0, state="resolved"),
    ]
    assert sms_group_text(alerts) == "3 big-move alerts: NVDA -3.20; AMD -3.10; TSLA ok 13:47 ET"
    mixed = [*alerts, make_alert()]
    assert sms_group_text(mixed).startswith("4 alerts: NVDA big-move -3.20; ")


def test_group_text_caps_with_more_within_the_budget() -> None:
    alerts = [big_move(f"SYM{i:02d}", -3.0 - i / 10) for i in range(40)]
    text = sms_group_text(alerts)
    assert_one_gsm_segment(text)
    assert text.startswith("40 big-move alerts: SYM00 -3.00; ")
    shown = text.count(";")
    assert f"; +{40 - shown} more 13:47 ET" in text
    assert gsm7_length(text) > 140  # the room is used
    two = sms_group_text(alerts, max_segments=2)
    assert segments(two) == 2 and two.count(";") > 2 * shown - 2


def test_notice_is_cut_to_the_budget() -> None:
    assert sms_notice("tickwatch test — it works") == "tickwatch test - it works"
    assert gsm7_length(sms_notice("x" * 500)) == 160


def test_max_segments_is_one_or_two() -> None:
    assert SmsConfig.model_validate(sms_config()).max_segments == 1
    with pytest.raises(ValidationError, match="less than or equal to 2"):
        SmsConfig.model_validate(sms_config(max_segments=3))


async def test_two_segment_text_and_groups_through_twilio(
    twilio_server: FakeTwilioServer,
) -> None:
    notifier = notifier_for(twilio_server, ALICE, BOB, max_segments=2, rate_limit=1000)
    try:
        await notifier.deliver(one(make_alert(summary=LONG_SUMMARY)))
        group = (big_move("NVDA", -3.2), big_move("AMD", -3.1))
        await notifier.deliver(Notification(channel="phones", key="g", alerts=group, kind="group"))
    finally:
        await notifier.aclose()
    assert [m["num_segments"] for m in twilio_server.sent] == ["2", "2", "1", "1"]
    assert twilio_server.sent[2]["body"] == "2 big-move alerts: NVDA -3.20; AMD -3.10 13:47 ET"
    assert twilio_server.sent[3]["to"] == BOB
