"""Slack's Socket Mode, faked on the fake Slack's own port: `apps.connections.open` and the link.

As Slack does it: `POST /api/apps.connections.open` with `Authorization: Bearer xapp-...` answers
`{"ok": true, "url": "ws://127.0.0.1:<port>/link/?ticket=..."}` (a bot token is
`not_allowed_token_type`, another token `invalid_auth`, none `not_authed`); the link takes each
ticket once, greets with Slack's `hello`, and records what the client sends. A test pushes an
envelope with `push(payload)` (to the newest live connection, as Slack sends each envelope to one),
sends Slack's `disconnect` refresh with `refresh()`, and reads `acks` (envelope ids acked, in
order). Failures injected on the server (`rate_limit`, `fail_with`) apply to the opens too.
`FakeSlackServer` serves it (`server.socket_mode`); its `requests` record the opens too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.fakes import FakeHTTPServer

__all__ = ["DEFAULT_APP_TOKEN", "SocketModeFake", "SocketSession"]

DEFAULT_APP_TOKEN = "xapp-1-A0FAKEAPP-1111-fakeapptokensecret"
_APP_ID = "A0FAKEAPP"


@dataclass
class SocketSession:
    """One websocket link as the fake saw it: what the client sent, whether it is still up."""

    n: int
    ws: web.WebSocketResponse
    ticket: str
    received: list[Any] = field(default_factory=list)
    open: bool = True


class SocketModeFake:
    """The Socket Mode half of the fake Slack; `add_routes` before the catch-all method route."""

    def __init__(self, server: FakeHTTPServer, app_token: str = DEFAULT_APP_TOKEN) -> None:
        self.server = server
        self.app_token = app_token
        self.sessions: list[SocketSession] = []
        #: Envelope ids the client acked, in the order the acks came.
        self.acks: list[str] = []
        #: Envelopes pushed, by envelope id.
        self.pushed: dict[str, dict[str, Any]] = {}
        self._tickets: set[str] = set()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/apps.connections.open", self._open)
        app.router.add_get("/link/", self._link)
        app.on_shutdown.append(self._close_all)

    # -- driving ----------------------------------------------------------------------------
    def live(self) -> list[SocketSession]:
        return [s for s in self.sessions if s.open and not s.ws.closed]

    async def push(self, payload: dict[str, Any], type: str = "interactive") -> str:
        """Send one envelope to the newest live link; its envelope id."""
        live = self.live()
        if not live:
            raise AssertionError("no Socket Mode client is connected")
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": type, "payload": payload,
                    "accepts_response_payload": False}  # fmt: skip
        self.pushed[envelope_id] = envelope
        await live[-1].ws.send_str(json.dumps(envelope))
        return envelope_id

    async def refresh(self) -> None:
        """Slack's `disconnect` message to every live link: the client is to connect anew."""
        for s in self.live():
            await s.ws.send_str(json.dumps({"type": "disconnect", "reason": "refresh_requested",
                                            "debug_info": {"host": "applink-fake"}}))  # fmt: skip

    # -- handlers ---------------------------------------------------------------------------
    async def _open(self, request: web.Request) -> web.Response:
        rec = await self.server.read_request(request)
        auth = request.headers.get("Authorization", "")
        if not auth:
            return self.server.respond(rec, 200, {"ok": False, "error": "not_authed"})
        if auth.startswith("Bearer xoxb-") or auth.startswith("Bearer xoxp-"):
            return self.server.respond(rec, 200, {"ok": False, "error": "not_allowed_token_type"})
        if auth != f"Bearer {self.app_token}":
            return self.server.respond(rec, 200, {"ok": False, "error": "invalid_auth"})
        injection = self.server.take_injection(rec)  # `server.rate_limit()` and the like
        if injection is not None:
            return self.server.respond(rec, injection.status, injection.payload, injection.headers)
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        url = f"ws://127.0.0.1:{self.server.port}/link/?ticket={ticket}&app_id={_APP_ID}"
        return self.server.respond(rec, 200, {"ok": True, "url": url})

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid or used ticket\n")
        self._tickets.discard(ticket)  # a ticket opens one link
        ws = web.WebSocketResponse()  # answers the client's pings itself
        await ws.prepare(request)
        session = SocketSession(len(self.sessions) + 1, ws, ticket)
        self.sessions.append(session)
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": len(self.live()),
            "debug_info": {"host": "applink-fake", "build_number": 1,
                           "approximate_connection_time": 18060},
            "connection_info": {"app_id": _APP_ID},
        }))  # fmt: skip
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                session.received.append(data)
                if isinstance(data, dict) and "envelope_id" in data:
                    self.acks.append(str(data["envelope_id"]))
        finally:
            session.open = False
        return ws

    async def _close_all(self, _: web.Application) -> None:
        for s in self.live():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.ws.close(), 1)
