"""The shared notifier policy in `Notifier.deliver`: throttling, truncation, per-channel
templates, redaction of secrets from errors, and logging a permanent failure once."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any, ClassVar, Literal

import pytest
from pydantic import Field, SecretStr

from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.console import ConsoleConfig, ConsoleNotifier
from daemon.notify.failure import DeliveryError
from daemon.notify.notification import Notification, Receipt
from daemon.notify.pacing import TokenBucket
from daemon.notify.redaction import redact
from daemon.notify.slack import SlackNotifier
from daemon.notify.sms import SmsNotifier
from tests.helpers import make_alert

TOKEN = "tok-1234567890-abcdef"


class ScriptConfig(ChannelConfig):
    type: Literal["script"]
    token: SecretStr
    extra: list[SecretStr] = Field(default_factory=list)


class ScriptNotifier(Notifier):
    """A channel whose sends do what the test says: record, or raise the given exception."""

    kind: ClassVar[str] = "script"
    config_model: ClassVar[type[ChannelConfig]] = ScriptConfig
    body_maxlen: ClassVar[int] = 40

    def __init__(self, name: str, config: ScriptConfig):
        super().__init__(name, config)
        self.sent: list[Notification] = []
        self.raise_next: BaseException | None = None

    async def send(self, n: Notification) -> Receipt | None:
        if self.raise_next is not None:
            raise self.raise_next
        self.sent.append(n)
        return {"id": str(len(self.sent))}


def script(**fields: Any) -> ScriptNotifier:
    raw: dict[str, Any] = {"type": "script", "token": TOKEN}
    raw.update(fields)
    return ScriptNotifier("tool", ScriptConfig.model_validate(raw))


def test_secret_fields_come_from_the_model() -> None:
    assert ScriptNotifier.secret_fields() == ("token", "extra")
    assert SlackNotifier.secret_fields() == ("token", "signing_secret", "app_token")
    assert SmsNotifier.secret_fields() == ("auth_token",)
    assert ConsoleNotifier.secret_fields() == ()
    assert script(extra=["second-secret"]).secret_values() == [TOKEN, "second-secret"]


def test_redact_masks_longest_first_and_ignores_tiny_values() -> None:
    assert redact(f"GET /x?t={TOKEN}&u=ab", [TOKEN, "ab", TOKEN[:8]]) == "GET /x?t=***&u=ab"


async def test_errors_leave_deliver_without_the_secret() -> None:
    ch = script()
    ch.raise_next = DeliveryError(f"POST https://h/{TOKEN} failed", retryable=True, retry_after=3)
    with pytest.raises(DeliveryError) as info:
        await ch.deliver(Notification.single(make_alert(), "tool"))
    assert str(info.value) == "POST https://h/*** failed"
    assert info.value.retryable and info.value.retry_after == 3
    assert info.value.__cause__ is None and info.value.__suppress_context__


async def test_an_unexpected_exception_becomes_a_permanent_redacted_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ch = script()
    ch.raise_next = KeyError(f"no such key {TOKEN}")
    with pytest.raises(DeliveryError) as info:
        await ch.deliver(Notification.single(make_alert(), "tool"))
    assert not info.value.retryable
    assert str(info.value).startswith("script channel 'tool' failed unexpectedly: KeyError: ")
    assert TOKEN not in str(info.value)
    assert "Traceback" in caplog.text and TOKEN not in caplog.text


async def test_cancellation_is_not_swallowed() -> None:
    ch = script()
    ch.raise_next = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError):
        await ch.deliver(Notification.single(make_alert(), "tool"))


async def test_body_is_truncated_once_for_every_channel() -> None:
    ch = script()
    await ch.deliver(Notification.single(make_alert(summary="x" * 100), "tool"))
    await ch.deliver(Notification(channel="tool", key="n", kind="notice", text="y" * 100))
    alert_n, notice = ch.sent
    assert alert_n.alert.summary == "x" * 39 + "…"
    assert notice.text == "y" * 39 + "…"


async def test_per_channel_template_by_name_beats_by_type() -> None:
    templates = {"script": "by type {{ symbol }}", "tool": "by name {{ value | num }}"}
    alert = make_alert(labels={"symbol": "XMAG"}, templates=templates)
    ch = script()
    await ch.deliver(Notification.single(alert, "tool"))
    assert ch.sent[0].alert.summary == "by name 7.98"
    other = ScriptNotifier("other", ch.config)  # type: ignore[arg-type]
    await other.deliver(Notification.single(alert, "other"))
    assert other.sent[0].alert.summary == "by type XMAG"


async def test_console_shows_its_template_variant() -> None:
    out = io.StringIO()
    console = ConsoleNotifier("term", ConsoleConfig(type="console"), stream=out)
    alert = make_alert(templates={"console": "{{ symbol or rule }} is {{ compare }}"})
    await console.deliver(Notification.single(alert, "term"))
    assert out.getvalue().endswith("| rotation-spread-compresses is 7.98 below 8.00\n")


def test_token_bucket_spends_its_burst_then_spaces_requests() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == pytest.approx(0.5)
    assert bucket.reserve() == pytest.approx(1.0)  # queued behind the one before
    now[0] += 10  # a quiet spell refills, but never past the burst
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == pytest.approx(0.5)
    assert bucket.reserve(cost=2) == pytest.approx(1.5)  # several messages at once


async def test_deliver_waits_for_the_channels_rate() -> None:
    ch = script(rate_limit=50)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for seq in range(4):
        await ch.deliver(Notification.single(make_alert(seq=seq), "tool"))
    assert loop.time() - start >= 0.055  # burst of 1, then 20 ms apart
    assert len(ch.sent) == 4


async def test_permanent_errors_are_logged_once_retryable_ones_not_at_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="daemon.notify")
    ch = script()
    for _ in range(3):
        ch.raise_next = DeliveryError("bad address", retryable=False)
        with pytest.raises(DeliveryError):
            await ch.deliver(Notification.single(make_alert(), "tool"))
    ch.raise_next = DeliveryError("HTTP 503", retryable=True)
    with pytest.raises(DeliveryError):
        await ch.deliver(Notification.single(make_alert(), "tool"))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["channel tool (script) cannot deliver: bad address"]


def test_disabled_reason_names_empty_secrets_in_lists() -> None:
    ch = script(token="", extra=["ok-value", ""])
    assert ch.disabled_reason({"token": "TOOL_TOKEN"}) == (
        "token is empty (export TOOL_TOKEN); extra[1] is empty"
    )
    assert script(enabled=False).disabled_reason() == "disabled in config"
