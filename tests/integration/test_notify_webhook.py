"""Webhook channel: signed JSON through aiohttp to a loopback receiver that checks the signature
itself; status codes mapped to retryable or not; the receiver's `verify_signature`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import ValidationError

from daemon.alerts import AlertEvent
from daemon.notify.failure import DeliveryError
from daemon.notify.notification import Notification
from daemon.notify.webhook import (
    WebhookConfig,
    WebhookNotifier,
    parse_retry_after,
    sign,
    verify_signature,
)
from tests.fakes import FakeHTTPServer
from tests.fakes.webhook_server import FakeWebhookServer
from tests.helpers import make_alert


def one(alert: AlertEvent) -> Notification:
    return Notification.single(alert, "hook")


def config(server: FakeWebhookServer, **overrides: Any) -> WebhookConfig:
    fields: dict[str, Any] = {
        "type": "webhook",
        "url": server.url,
        "secret": server.secret,
        "timeout": 5,
    }
    fields.update(overrides)
    return WebhookConfig.model_validate(fields)


@pytest_asyncio.fixture
async def hook(webhook_server: FakeWebhookServer) -> AsyncIterator[WebhookNotifier]:
    notifier = WebhookNotifier("hook", config(webhook_server))
    yield notifier
    await notifier.aclose()


async def test_signed_json_arrives_and_verifies(
    hook: WebhookNotifier, webhook_server: FakeWebhookServer
) -> None:
    alert = make_alert(labels={"symbol": "XMAG-MAGS"}, values={"spread": 7.98, "series": "8 7.9"})
    assert await hook.deliver(one(alert)) is None
    [req] = webhook_server.requests
    assert req.status == 200 and webhook_server.rejected == []
    assert req.content_type == "application/json"
    assert req.headers["Idempotency-Key"] == f"{alert.id}@hook"
    stamp = int(req.headers["X-Tickwatch-Timestamp"])
    assert abs(time.time() - stamp) < 60
    # Our own verifier agrees with the receiver's independent check.
    assert verify_signature(
        "whsec-fake-0123456789abcdef", stamp, req.raw, req.headers["X-Tickwatch-Signature"]
    )
    body = json.loads(req.raw)
    assert body["version"] == 1 and body["kind"] == "alert" and body["key"] == f"{alert.id}@hook"
    [a] = body["alerts"]
    assert a == {
        "id": "rotation-spread-compresses#1:firing",
        "rule": "rotation-spread-compresses",
        "key": "rotation-spread-compresses",
        "state": "firing",
        "seq": 1,
        "repeat": 0,
        "severity": "warning",
        "labels": {"symbol": "XMAG-MAGS"},
        "values": {"spread": 7.98, "series": "8 7.9"},
        "value": 7.98,
        "threshold": 8.0,
        "comparison": "below",
        "summary": "XMAG-MAGS YTD spread compressed to 7.98 points",
        "time": "2026-04-09T17:47:00Z",
        "ts_ms": alert.ts_ms,
        "inputs": [],
        "rule_version": "",
    }


async def test_redelivery_carries_the_same_idempotency_key(
    hook: WebhookNotifier, webhook_server: FakeWebhookServer
) -> None:
    n = one(make_alert())
    await hook.deliver(n)
    await hook.deliver(n)  # e.g. a crash between "sent" and "recorded"
    assert len(webhook_server.bodies) == 2
    assert list(webhook_server.deliveries) == [n.key]
    assert webhook_server.duplicates == 1


async def test_wrong_secret_is_permanent_and_never_echoed(
    webhook_server: FakeWebhookServer,
) -> None:
    wrong = "whsec-not-the-receivers-secret"
    notifier = WebhookNotifier("hook", config(webhook_server, secret=wrong))
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.deliver(one(make_alert()))
    finally:
        await notifier.aclose()
    assert not info.value.retryable
    assert "HTTP 401" in str(info.value) and "channels.hook.secret" in str(info.value)
    assert wrong not in str(info.value)
    assert webhook_server.rejected == ["bad signature"]


@pytest.mark.parametrize(
    ("status", "retry_after", "retryable", "wait"),
    [
        (500, None, True, None),
        (503, "7", True, 7.0),
        (429, "30", True, 30.0),
        (408, None, True, None),
        (404, None, False, None),
        (400, None, False, None),
        (422, None, False, None),
    ],
)
async def test_status_codes(
    hook: WebhookNotifier,
    webhook_server: FakeWebhookServer,
    status: int,
    retry_after: str | None,
    retryable: bool,
    wait: float | None,
) -> None:
    webhook_server.fail_with(status, retry_after=retry_after, text="nope: field x missing")
    with pytest.raises(DeliveryError) as info:
        await hook.deliver(one(make_alert()))
    assert info.value.retryable is retryable
    assert info.value.retry_after == wait
    assert f"HTTP {status}" in str(info.value)
    if status in (400, 422):
        assert "nope: field x missing" in str(info.value)
    await hook.deliver(one(make_alert(seq=2)))  # the next one goes through


async def test_retry_after_as_http_date(
    hook: WebhookNotifier, webhook_server: FakeWebhookServer
) -> None:
    webhook_server.fail_with(503, retry_after=formatdate(time.time() + 120, usegmt=True))
    with pytest.raises(DeliveryError) as info:
        await hook.deliver(one(make_alert()))
    assert info.value.retry_after is not None and 100 < info.value.retry_after <= 120


def test_parse_retry_after() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0  # a negative wait is no wait
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 + 60) == 0.0


class Redirecting(FakeHTTPServer):
    def build_app(self) -> web.Application:
        async def moved(request: web.Request) -> web.Response:
            rec = await self.read_request(request)
            rec.status = 301
            raise web.HTTPMovedPermanently(location="https://new.example.com/hook")

        app = web.Application()
        app.router.add_post("/hook", moved)
        return app


class Hanging(FakeHTTPServer):
    """Accepts the request and never answers, until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    def build_app(self) -> web.Application:
        async def hang(request: web.Request) -> web.Response:
            await self.read_request(request)
            await self.release.wait()
            return web.Response(text="late")

        app = web.Application()
        app.router.add_post("/hook", hang)
        return app


async def test_redirect_is_not_followed_and_names_the_target() -> None:
    async with Redirecting() as server:
        notifier = WebhookNotifier(
            "hook", WebhookConfig(type="webhook", url=f"{server.origin}/hook", secret="s" * 8)
        )
        try:
            with pytest.raises(DeliveryError) as info:
                await notifier.deliver(one(make_alert()))
        finally:
            await notifier.aclose()
    assert not info.value.retryable
    assert "redirected (HTTP 301)" in str(info.value)
    assert "https://new.example.com/hook" in str(info.value)
    assert len(server.requests) == 1


async def test_timeout_is_retryable() -> None:
    async with Hanging() as server:
        cfg = WebhookConfig(
            type="webhook", url=f"{server.origin}/hook", secret="s" * 8, timeout=0.3
        )
        notifier = WebhookNotifier("hook", cfg)
        try:
            with pytest.raises(DeliveryError) as info:
                await notifier.deliver(one(make_alert()))
        finally:
            server.release.set()
            await notifier.aclose()
    assert info.value.retryable
    assert "could not reach the receiver (TimeoutError" in str(info.value)


async def test_connection_refused_is_retryable() -> None:
    server = FakeWebhookServer()
    async with server:
        cfg = config(server)
    notifier = WebhookNotifier("hook", cfg)  # the server is gone: nothing listens on the port
    try:
        with pytest.raises(DeliveryError) as info:
            await notifier.deliver(one(make_alert()))
    finally:
        await notifier.aclose()
    assert info.value.retryable
    assert "could not reach the receiver" in str(info.value)


async def test_group_and_notice_payloads(
    hook: WebhookNotifier, webhook_server: FakeWebhookServer
) -> None:
    group = (make_alert(), make_alert(rule="other", key="other", severity="critical"))
    await hook.deliver(Notification(channel="hook", key="g", alerts=group, kind="digest"))
    await hook.deliver(Notification(channel="hook", key="n", kind="notice", text="hi"))
    digest, notice = webhook_server.bodies
    assert digest["kind"] == "digest" and [a["rule"] for a in digest["alerts"]] == [
        "rotation-spread-compresses",
        "other",
    ]
    assert notice["kind"] == "notice" and notice["text"] == "hi" and notice["alerts"] == []


def test_missing_secret_disables_and_bad_url_is_refused() -> None:
    empty = WebhookConfig(type="webhook", url="https://example.com/h", secret="")
    assert WebhookNotifier("hook", empty).disabled_reason({"secret": "HOOK_SECRET"}) == (
        "secret is empty (export HOOK_SECRET)"
    )
    with pytest.raises(ValidationError, match="not an http"):
        WebhookConfig(type="webhook", url="ftp://example.com", secret="x")


# --- verify_signature (for receivers) -------------------------------------------------------


BODY = b'{"version":1,"alerts":[]}'


def test_verify_signature_accepts_a_genuine_request() -> None:
    now = 1_776_000_000
    header = sign("k3y-secret", now, BODY)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("k3y-secret", str(now), BODY, header, now=now + 10)
    assert verify_signature(b"k3y-secret", now, BODY, header, now=now)


@pytest.mark.parametrize(
    ("secret", "stamp", "body", "header_of", "now_offset"),
    [
        ("other-secret", 0, BODY, "good", 0),  # wrong key
        ("k3y-secret", 0, BODY + b" ", "good", 0),  # body changed after signing
        ("k3y-secret", 1, BODY, "good", 0),  # timestamp changed after signing
        ("k3y-secret", 0, BODY, "good", 301),  # replayed later than the tolerance
        ("k3y-secret", 0, BODY, "good", -301),  # from the future
        ("k3y-secret", 0, BODY, "sha1=abc", 0),  # not our scheme
        ("k3y-secret", 0, BODY, "", 0),
    ],
)
def test_verify_signature_refuses(
    secret: str, stamp: int, body: bytes, header_of: str, now_offset: int
) -> None:
    now = 1_776_000_000
    header = sign("k3y-secret", now, BODY) if header_of == "good" else header_of
    assert not verify_signature(secret, now + stamp, body, header, now=now + now_offset)


def test_verify_signature_refuses_a_malformed_timestamp() -> None:
    assert not verify_signature("k", "yesterday", BODY, sign("k", 0, BODY))
