"""A fake Twilio Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json`).

Answers as PROTOCOLS.md §7 describes, with the field *types* the twilio client relies on: HTTP 201,
string `num_segments`/`num_media`, RFC 2822 dates, `SM` + 32 hex sids; errors as
`{"code", "message", "more_info", "status"}`. HTTP Basic auth is checked (401 / 20003) and `To`
must be E.164 (400 / 21211). Failures can be injected: 429 / 20429 (with `Retry-After` if asked),
500, and 21610 per recipient.
Point a client at it with `client.api.base_url = server.base_url`.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from tests.fakes import FakeHTTPServer, Injection, RecordedRequest

__all__ = ["DEFAULT_ACCOUNT_SID", "DEFAULT_AUTH_TOKEN", "FakeTwilioServer", "twilio_error"]

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "fake-twilio-auth-token-5f2b9c"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_GSM = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's legacy error body (the client turns it into `TwilioRestException`)."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _segments(body: str) -> int:
    """Segments Twilio would bill: GSM-7 160/153 per segment, else UCS-2 70/67."""
    if all(ch in _GSM for ch in body):
        units, single, multi = len(body) + sum(ch in "^{}\\[~]|€" for ch in body), 160, 153
    else:
        units, single, multi = len(body), 70, 67
    return 1 if units <= single else -(-units // multi)


class FakeTwilioServer(FakeHTTPServer):
    """Accepts messages for one account; `sent` lists the messages it created."""

    def __init__(
        self, account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sent: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return self.origin

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        return app

    # -- failure injection ------------------------------------------------------------------
    def rate_limit(self, times: int = 1, retry_after: str | float | None = None) -> None:
        """The next `times` messages get 429 / 20429 (with `Retry-After`, when given)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.inject(
            Injection(429, twilio_error(429, 20429, "Too Many Requests"), times, headers=headers)
        )

    def server_error(self, times: int = 1, to: str | None = None) -> None:
        """The next `times` messages (to `to`, if given) get 500 / 20500."""
        self.inject(
            Injection(
                500, twilio_error(500, 20500, "Internal Server Error"), times, match=_to_is(to)
            )
        )

    def unsubscribe(self, to: str, times: int = 1_000_000) -> None:
        """`to` replied STOP: messages to it get 400 / 21610 (for good, by default)."""
        self.fail_with(400, 21610, "Attempt to send to unsubscribed recipient", to=to, times=times)

    def fail_with(
        self, status: int, code: int, message: str, *, to: str | None = None, times: int = 1
    ) -> None:
        """Any Twilio error for the next `times` messages (to `to`, if given)."""
        self.inject(Injection(status, twilio_error(status, code, message), times, match=_to_is(to)))

    # -- handler ----------------------------------------------------------------------------
    def _authorized(self, request: web.Request, sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid == sid and password == self.auth_token

    async def _create_message(self, request: web.Request) -> web.Response:
        rec = await self.read_request(request)
        sid = request.match_info["sid"]
        if not self._authorized(request, sid):
            return self.respond(rec, 401, twilio_error(401, 20003, "Authenticate"))
        injection = self.take_injection(rec)
        if injection is not None:
            return self.respond(rec, injection.status, injection.payload, injection.headers)
        to = str(rec.body.get("To", ""))
        sender = rec.body.get("From")
        body = str(rec.body.get("Body", ""))
        if not _E164.match(to):
            error = f"The 'To' number {to} is not a valid phone number."
            return self.respond(rec, 400, twilio_error(400, 21211, error))
        if not sender and not rec.body.get("MessagingServiceSid"):
            return self.respond(
                rec, 400, twilio_error(400, 21603, "A 'From' phone number is required.")
            )
        if not body:
            return self.respond(rec, 400, twilio_error(400, 21602, "Message body is required."))
        now = format_datetime(datetime.now(UTC).replace(microsecond=0), usegmt=False)
        msg_sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": msg_sid,
            "account_sid": self.account_sid,
            "messaging_service_sid": rec.body.get("MessagingServiceSid"),
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": str(_segments(body)),
            "num_media": "0",
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{msg_sid}.json",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{msg_sid}/Media.json"
            },
        }
        self.sent.append(message)
        return self.respond(rec, 201, message)


def _to_is(to: str | None) -> Callable[[RecordedRequest], bool] | None:
    if to is None:
        return None

    def match(rec: RecordedRequest) -> bool:
        return rec.body.get("To") == to

    return match
