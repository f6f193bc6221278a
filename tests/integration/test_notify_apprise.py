"""Apprise channel: the real apprise library posting through its `json://` service to a loopback
receiver; failures, partial retries, secrets kept out, and the channel without the package."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from daemon.notify.apprise import AppriseConfig, AppriseNotifier
from daemon.notify.failure import DeliveryError
from daemon.notify.notification import Notification
from tests.fakes.webhook_server import FakeWebhookServer
from tests.helpers import make_alert

# apprise 2.3 still imports `imghdr` for its PGP plugin: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-pa55word"
TOKEN = "tok-9f8e7d6c5b4a"


def url_for(server: FakeWebhookServer, path: str = "hook") -> str:
    return f"json://desk:{PASSWORD}@127.0.0.1:{server.port}/{path}/{TOKEN}"


def notifier(*urls: str) -> AppriseNotifier:
    return AppriseNotifier("pager", AppriseConfig(type="apprise", urls=list(urls), timeout=5))


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[FakeWebhookServer]:
    async with FakeWebhookServer(secret=None) as server:
        yield server


async def test_alert_arrives_as_title_body_and_type(receiver: FakeWebhookServer) -> None:
    ch = notifier(url_for(receiver))
    assert ch.disabled_reason() is None
    try:
        await ch.deliver(Notification.single(make_alert(severity="critical"), "pager"))
        await ch.deliver(Notification.single(make_alert(state="resolved", value=8.2), "pager"))
    finally:
        await ch.aclose()
    first, second = receiver.bodies
    assert first["title"] == "FIRING critical rotation-spread-compresses"
    assert first["message"] == (
        "XMAG-MAGS YTD spread compressed to 7.98 points\n"
        "Value: 7.98 below 8.00\n"
        "Time: Thu Apr 9 2026 13:47:00 EDT\n"
        "Alert: rotation-spread-compresses#1:firing"
    )
    assert first["type"] == "failure"
    assert second["type"] == "success" and second["title"].startswith("RESOLVED")
    req = receiver.requests[0]
    assert req.path == f"/hook/{TOKEN}"
    assert (
        req.headers["Authorization"]
        == "Basic " + base64.b64encode(f"desk:{PASSWORD}".encode()).decode()
    )


async def test_failure_is_retryable_and_names_the_service_not_the_secret(
    receiver: FakeWebhookServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.fail_with(500)
    ch = notifier(url_for(receiver))
    try:
        with pytest.raises(DeliveryError) as info:
            await ch.deliver(Notification.single(make_alert(), "pager"))
    finally:
        await ch.aclose()
    message = str(info.value)
    assert info.value.retryable
    assert message.startswith(
        "apprise channel 'pager': 1 of 1 service(s) failed: urls[0] (json://)"
    )
    assert "JSON" in message and "500" in message
    for secret in (PASSWORD, TOKEN):
        assert secret not in message
        assert secret not in caplog.text


async def test_retry_after_partial_failure_notifies_only_the_services_owed(
    receiver: FakeWebhookServer,
) -> None:
    async with FakeWebhookServer(secret=None) as broken:
        broken.fail_with(503)
        ch = notifier(url_for(receiver, "a"), url_for(broken, "b"))
        n = Notification.single(make_alert(), "pager")
        try:
            with pytest.raises(DeliveryError, match=r"1 of 2 service\(s\) failed: urls\[1\]"):
                await ch.deliver(n)
            await ch.deliver(n)  # the worker's retry
        finally:
            await ch.aclose()
        assert [r.status for r in broken.requests] == [503, 200]
    assert len(receiver.bodies) == 1  # not notified twice


async def test_group_lists_each_alert(receiver: FakeWebhookServer) -> None:
    alerts = (make_alert(), make_alert(rule="nvda-drop", key="nvda-drop", severity="critical"))
    ch = notifier(url_for(receiver))
    try:
        await ch.deliver(Notification(channel="pager", key="g", alerts=alerts, kind="group"))
    finally:
        await ch.aclose()
    [body] = receiver.bodies
    assert body["title"] == "2 alerts (2 firing)"
    assert body["type"] == "failure"
    assert body["message"].splitlines()[0].startswith("FIRING critical nvda-drop: 7.98 below")


def test_unusable_urls_switch_the_channel_off_without_showing_them() -> None:
    ch = notifier("json://127.0.0.1/ok", f"nosuchservice://{TOKEN}@host")
    reason = ch.disabled_reason()
    assert reason is not None
    assert reason.startswith("urls[1] (nosuchservice://) is not a URL Apprise understands")
    assert TOKEN not in reason
    empty = notifier("")
    assert empty.disabled_reason({"urls[0]": "PAGER_URL"}) == "urls[0] is empty (export PAGER_URL)"


def test_without_the_package_the_channel_is_off_with_the_fix() -> None:
    """A real interpreter where `import apprise` fails: the daemon still loads every channel."""
    code = (
        "import sys; sys.modules['apprise'] = None\n"
        "from daemon.notify.registry import notifiers, channel_config_models\n"
        "from daemon.notify.apprise import AppriseConfig, AppriseNotifier\n"
        "assert 'apprise' in notifiers() and len(channel_config_models()) >= 5\n"
        "ch = AppriseNotifier('pager', AppriseConfig(type='apprise', urls=['json://h/x']))\n"
        "print(ch.disabled_reason())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "the apprise package is not installed; pip install 'tickwatch[apprise]'"
    )
