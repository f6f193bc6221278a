"""A fake Slack Web API (`chat.postMessage`, `chat.update`) for the real slack-sdk client.

Behaves as PROTOCOLS.md §6 describes: HTTP 200 with `ok:true|false`, `ts` strings that increase,
`Authorization: Bearer` checked, JSON or form bodies. Thread replies (`thread_ts`) are recorded
and mark their parent as Slack does (`thread_ts`, `reply_count`); `replies(ts)` lists them, and
`updates` lists every `chat.update` applied. `delete` removes a message (a later update of it is
`message_not_found`). Failures are injected for the next N calls: `ok:false` with any error code,
429 with `Retry-After`, or a 5xx.
Point a client at it with `AsyncWebClient(token=server.token, base_url=server.base_url)`.
Socket Mode (`apps.connections.open` with `server.app_token`, and the websocket link) is
`server.socket_mode`, a `tests.fakes.slack_socket.SocketModeFake`.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from aiohttp import web

from tests.fakes import FakeHTTPServer, Injection, RecordedRequest
from tests.fakes.slack_socket import DEFAULT_APP_TOKEN, SocketModeFake

__all__ = ["DEFAULT_SLACK_TOKEN", "FakeSlackServer"]

DEFAULT_SLACK_TOKEN = "xoxb-1111-2222-fakeslacktoken"
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_BOT_ID = "B0FAKEBOT"
_BOT_USER = "U0FAKEBOT"


class FakeSlackServer(FakeHTTPServer):
    """Slack's `/api/chat.*` methods; `messages` holds what was posted, keyed by (channel, ts).

    `channels`, when given, maps known channel names (without `#`) to ids; any other channel is
    `channel_not_found`. Without it every channel exists.
    """

    def __init__(
        self,
        token: str = DEFAULT_SLACK_TOKEN,
        channels: dict[str, str] | None = None,
        app_token: str = DEFAULT_APP_TOKEN,
    ) -> None:
        super().__init__()
        self.token = token
        self.app_token = app_token
        #: Socket Mode: `apps.connections.open` and the websocket link on this same port.
        self.socket_mode = SocketModeFake(self, app_token)
        self.channels = channels
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        #: (channel, ts, fields changed) for each `chat.update` applied, in order.
        self.updates: list[tuple[str, str, dict[str, Any]]] = []
        self._ts_counter = 0

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat.postMessage", self._post_message)
        app.router.add_post("/api/chat.update", self._update)
        self.socket_mode.add_routes(app)
        app.router.add_post("/api/{method}", self._unknown_method)
        return app

    # -- failure injection ------------------------------------------------------------------
    def fail_with(self, error: str, times: int = 1) -> None:
        """The next `times` calls answer HTTP 200 `{"ok": false, "error": <error>}`."""
        self.inject(Injection(200, {"ok": False, "error": error}, times))

    def rate_limit(self, retry_after: int | str = 30, times: int = 1) -> None:
        """The next `times` calls answer HTTP 429 with `Retry-After: <retry_after>` (seconds,
        or an HTTP-date when given as a string)."""
        self.inject(
            Injection(
                429,
                {"ok": False, "error": "ratelimited"},
                times,
                headers={"Retry-After": str(retry_after)},
            )
        )

    def server_error(self, status: int = 500, times: int = 1) -> None:
        """The next `times` calls answer a bare 5xx (an HTML page, as a proxy would send)."""
        self.inject(Injection(status, "<html><body>Internal Server Error</body></html>", times))

    # -- inspection -------------------------------------------------------------------------
    def top_level(self) -> list[tuple[str, dict[str, Any]]]:
        """(channel, message) for messages not in a thread, oldest first."""
        return [
            (ch, m)
            for (ch, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
            if m.get("thread_ts") in (None, m["ts"])
        ]

    def replies(self, ts: str) -> list[dict[str, Any]]:
        """The replies in the thread under the message `ts`, oldest first."""
        return [
            m
            for (_, m_ts), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
            if m.get("thread_ts") == ts and m_ts != ts
        ]

    def delete(self, channel: str, ts: str) -> None:
        """The message is gone, as if a user deleted it."""
        del self.messages[(channel, ts)]

    # -- handlers ---------------------------------------------------------------------------
    def _next_ts(self) -> str:
        self._ts_counter += 1
        micros = 1_700_000_000_000_000 + 100 * self._ts_counter
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    async def _begin(self, request: web.Request) -> tuple[RecordedRequest, web.Response | None]:
        """Record, then apply auth and injected failures; a response here ends the call."""
        rec = await self.read_request(request)
        for key in ("blocks", "attachments"):  # form bodies carry these as JSON strings
            value = rec.body.get(key)
            if isinstance(value, str):
                rec.body[key] = json.loads(value)
        auth = request.headers.get("Authorization", "")
        if not auth:
            return rec, self.respond(rec, 200, {"ok": False, "error": "not_authed"})
        if auth != f"Bearer {self.token}":
            return rec, self.respond(rec, 200, {"ok": False, "error": "invalid_auth"})
        injection = self.take_injection(rec)
        if injection is not None:
            return rec, self.respond(rec, injection.status, injection.payload, injection.headers)
        return rec, None

    def _channel_id(self, channel: str) -> str | None:
        if _CHANNEL_ID.match(channel):
            return channel
        name = channel.lstrip("#")
        if self.channels is None:
            return f"C{zlib.crc32(name.encode()):09X}"
        return self.channels.get(name)

    async def _post_message(self, request: web.Request) -> web.Response:
        rec, early = await self._begin(request)
        if early is not None:
            return early
        body = rec.body
        channel = self._channel_id(str(body.get("channel", "")))
        if not body.get("channel"):
            return self.respond(rec, 200, {"ok": False, "error": "channel_not_found"})
        if channel is None:
            return self.respond(rec, 200, {"ok": False, "error": "channel_not_found"})
        if not (body.get("text") or body.get("blocks") or body.get("attachments")):
            return self.respond(rec, 200, {"ok": False, "error": "no_text"})
        ts = self._next_ts()
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": body.get("text", ""),
            "ts": ts,
            "bot_id": _BOT_ID,
            "user": _BOT_USER,
        }
        for key in ("blocks", "attachments", "thread_ts"):
            if key in body:
                message[key] = body[key]
        parent = self.messages.get((channel, str(body.get("thread_ts", ""))))
        if parent is not None:  # Slack marks the parent of a thread
            parent["thread_ts"] = parent["ts"]
            parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
            parent["latest_reply"] = ts
        self.messages[(channel, ts)] = message
        return self.respond(
            rec, 200, {"ok": True, "channel": channel, "ts": ts, "message": message}
        )

    async def _update(self, request: web.Request) -> web.Response:
        rec, early = await self._begin(request)
        if early is not None:
            return early
        body = rec.body
        channel = self._channel_id(str(body.get("channel", "")))
        if channel is None or not body.get("channel"):
            return self.respond(rec, 200, {"ok": False, "error": "channel_not_found"})
        ts = str(body.get("ts", ""))
        message = self.messages.get((channel, ts))
        if message is None:
            return self.respond(rec, 200, {"ok": False, "error": "message_not_found"})
        changed = {key: body[key] for key in ("text", "blocks", "attachments") if key in body}
        message.update(changed)  # fields left out keep their previous value, as on Slack
        self.updates.append((channel, ts, changed))
        payload = {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message.get("text", ""),
            "message": message,
        }
        return self.respond(rec, 200, payload)

    async def _unknown_method(self, request: web.Request) -> web.Response:
        rec = await self.read_request(request)
        return self.respond(rec, 200, {"ok": False, "error": "unknown_method"})
