"""A fake webhook receiver that checks tickwatch's signature itself, as a careful receiver would.

Its own HMAC check (written here, independently of `daemon.notify.webhook`) means a test proves
the signature is right, not merely that our signer agrees with our verifier. A request with a bad
or stale signature gets 401. `deliveries` keeps each accepted body by `Idempotency-Key`, once:
a repeat of a key is answered 200 and counted in `duplicates`, as an idempotent receiver does.
Failures can be injected (any status, with `Retry-After`). With `secret=None` it accepts any JSON
POST unsigned: the receiver for Apprise's `json://` service.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from aiohttp import web

from tests.fakes import FakeHTTPServer, Injection

__all__ = ["DEFAULT_WEBHOOK_SECRET", "FakeWebhookServer"]

DEFAULT_WEBHOOK_SECRET = "whsec-fake-0123456789abcdef"


class FakeWebhookServer(FakeHTTPServer):
    """POST `/hook` (any path, in fact); `.url` is the full address to configure."""

    def __init__(self, secret: str | None = DEFAULT_WEBHOOK_SECRET, tolerance: int = 300) -> None:
        super().__init__()
        self.secret = secret
        self.tolerance = tolerance
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.bodies: list[dict[str, Any]] = []
        self.duplicates = 0
        self.rejected: list[str] = []

    @property
    def url(self) -> str:
        return f"{self.origin}/hook"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._receive)
        return app

    def fail_with(
        self, status: int, times: int = 1, retry_after: str | None = None, text: str = ""
    ) -> None:
        """The next `times` requests get `status` (and `Retry-After`, when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.inject(Injection(status, text or f"status {status}", times, headers=headers))

    def _signature_problem(self, request: web.Request, raw: bytes) -> str | None:
        if self.secret is None:
            return None
        stamp = request.headers.get("X-Tickwatch-Timestamp", "")
        header = request.headers.get("X-Tickwatch-Signature", "")
        if not stamp.isdigit():
            return "missing or malformed timestamp"
        if abs(time.time() - int(stamp)) > self.tolerance:
            return "stale timestamp"
        expected = hmac.new(self.secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256)
        if not hmac.compare_digest("sha256=" + expected.hexdigest(), header):
            return "bad signature"
        return None

    async def _receive(self, request: web.Request) -> web.Response:
        rec = await self.read_request(request)
        injection = self.take_injection(rec)
        if injection is not None:
            return self.respond(rec, injection.status, injection.payload, injection.headers)
        problem = self._signature_problem(request, rec.raw)
        if problem is not None:
            self.rejected.append(problem)
            return self.respond(rec, 401, {"error": problem})
        try:
            body = json.loads(rec.raw)
        except ValueError:
            return self.respond(rec, 400, {"error": "body is not JSON"})
        self.bodies.append(body)
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            if key in self.deliveries:
                self.duplicates += 1
            else:
                self.deliveries[key] = body
        return self.respond(rec, 200, {"ok": True})
