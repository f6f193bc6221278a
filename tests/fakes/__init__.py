"""Loopback fakes of the providers' HTTP APIs, for driving the real client libraries in tests.

This module holds the shared plumbing: an aiohttp app on 127.0.0.1 with an ephemeral port, the
record of every request it answered, and `wait_for`, which polls that record with a deadline so
tests never sleep blindly. The provider fakes are `slack_server` and `twilio_server`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import web

__all__ = ["FakeHTTPServer", "Injection", "RecordedRequest", "parse_body"]


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake saw it, with the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes
    status: int = 0
    #: wall-clock time the request arrived (for latency measurements in `bench/`)
    at: float = 0.0

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


@dataclass(slots=True)
class Injection:
    """A canned failure for the next `times` matching requests."""

    status: int
    payload: dict[str, Any] | str
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    match: Callable[[RecordedRequest], bool] | None = None


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """JSON or form-encoded body as a dict (repeated form keys keep the last value)."""
    if not raw:
        return {}
    text = raw.decode("utf-8")
    if content_type == "application/json":
        value = json.loads(text)
        return value if isinstance(value, dict) else {"_json": value}
    return dict(parse_qsl(text, keep_blank_values=True))


class FakeHTTPServer:
    """Base for the fakes: start/stop as an async context manager, `.requests`, `.wait_for`."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._injections: list[Injection] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: answer every request this much later (a slow provider)
        self.delay = 0.0
        #: while set to an unset Event, requests wait for it (a stalled provider)
        self.hold: asyncio.Event | None = None
        #: this many next requests get their connection dropped, with no answer at all
        self.drop_next = 0

    # -- lifecycle --------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> Self:
        runner = web.AppRunner(self.build_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def origin(self) -> str:
        if not self.port:
            raise RuntimeError("fake server is not started")
        return f"http://127.0.0.1:{self.port}"

    # -- recording and waiting --------------------------------------------------------------
    async def read_request(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=parse_body(raw, request.content_type),
            raw=raw,
            at=time.time(),
        )
        self.requests.append(rec)
        if self.drop_next > 0:
            self.drop_next -= 1
            rec.status = -1
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection die mid-request
            raise ConnectionResetError("fake: connection dropped")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold is not None:
            await self.hold.wait()
        return rec

    def respond(
        self,
        rec: RecordedRequest,
        status: int,
        payload: Mapping[str, Any] | str,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        rec.status = status
        if isinstance(payload, str):
            return web.Response(status=status, text=payload, headers=headers)
        return web.json_response(dict(payload), status=status, headers=headers)

    def inject(self, injection: Injection) -> None:
        self._injections.append(injection)

    def take_injection(self, rec: RecordedRequest) -> Injection | None:
        """The first pending failure that applies to `rec`, consuming one of its `times`."""
        for inj in self._injections:
            if inj.times > 0 and (inj.match is None or inj.match(rec)):
                inj.times -= 1
                if inj.times == 0:
                    self._injections.remove(inj)
                return inj
        return None

    async def wait_for(
        self,
        predicate: Callable[[list[RecordedRequest]], bool],
        timeout: float = 5.0,
    ) -> list[RecordedRequest]:
        """Poll `.requests` until `predicate(requests)` holds; fail loudly at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self.requests):
            if loop.time() >= deadline:
                seen = [(r.method, r.path, r.status) for r in self.requests]
                raise AssertionError(f"condition not met within {timeout}s; requests: {seen}")
            await asyncio.sleep(0.01)
        return list(self.requests)
