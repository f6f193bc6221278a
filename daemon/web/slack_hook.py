"""`POST /hooks/slack/actions`: clicks on the desk's buttons, from Slack's Interactivity URL.

Every request is checked against the signing secret of a configured Slack channel with
slack-sdk's `SignatureVerifier` (the HMAC of `v0:timestamp:body`, and a timestamp within five
minutes: a replayed request is refused): an unsigned, mis-signed or stale one gets 401 and
changes nothing. A click from a user outside the channel's `allow_users` changes nothing either
and is logged. A sound click acts through `notify.Desk` (the same ack the CLI gives), then the
message is updated in place and the thread gets a reply; Slack is answered within its 3 s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from daemon.notify import ChannelConfig, Desk, Notifier, answer_click, parse_click
from daemon.store import Client, Keys

__all__ = ["SlackHook"]

log = logging.getLogger("tickwatch.http")


class SlackHook:
    """The handler, reading the daemon's current channels, notifiers and Redis at each call."""

    def __init__(
        self,
        channels: Callable[[], Mapping[str, ChannelConfig]],
        notifiers: Callable[[], Mapping[str, Notifier]],
        redis: Callable[[], Client | None],
        keys: Keys,
    ) -> None:
        self.channels, self.notifiers, self.redis, self.keys = channels, notifiers, redis, keys

    def _verified(self, body: bytes, headers: Mapping[str, str]) -> bool:
        secrets = [
            secret.get_secret_value()
            for ch in self.channels().values()
            if (secret := getattr(ch, "signing_secret", None)) is not None
        ]
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not timestamp.isdigit() or not signature:
            return False
        return any(SignatureVerifier(s).is_valid(body, timestamp, signature) for s in secrets)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self._verified(body, request.headers):
            log.warning("slack: refused a request to %s: no valid signature (unsigned, wrong "
                        "secret or older than 5 minutes)", request.path)  # fmt: skip
            return web.Response(status=401, text="invalid or stale Slack signature\n")
        try:
            payload: Any = json.loads(parse_qs(body.decode())["payload"][0])
            click = parse_click(payload)
        except (KeyError, ValueError, UnicodeDecodeError) as e:
            log.warning("slack: an interaction we cannot read: %s", e)
            return web.Response(status=400, text=f"unreadable interaction: {e}\n")
        if click is None:
            return web.Response(status=200)  # not one of our controls
        redis = self.redis()
        if redis is None:
            return web.Response(status=503, text="starting or stopping\n")
        await answer_click(click, Desk(redis, self.keys), self.channels(), self.notifiers())
        return web.Response(status=200)
