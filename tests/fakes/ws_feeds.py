"""Loopback fakes of the market-data websockets (Alpaca stocks and news, Finnhub, Polygon).

Each speaks its protocol as PROTOCOLS.md §1-4 describes (greetings, auth replies and error codes,
subscription replies, frame shapes and field types), on 127.0.0.1 with an ephemeral port, over
real websockets. A test drives it from outside:

* `send(items)` pushes one data frame to every live, authenticated session (`send_raw` any text:
  malformed JSON, an oversized frame);
* `drop()` cuts every connection without a close frame (a network failure);
* `sessions` / `received` record every connection and every client message, and `wait_for`
  polls them with a deadline, so tests never sleep blindly.

Frames are JSON text only: the clients never ask for MessagePack (no `Content-Type` header);
`sessions[i].headers` lets a test check that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = [
    "FakeAlpacaServer",
    "FakeFeedServer",
    "FakeFinnhubServer",
    "FakePolygonServer",
    "FakeSession",
    "now_ms",
    "rfc3339",
]

#: The fakes log here (never to `websockets.*`), so tests can tell our client's logs apart.
_LOG = logging.getLogger("tests.fakes.ws_feeds")


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339(ms: int, nanos: int | None = None) -> str:
    """Alpaca's timestamp text: `...T15:51:44.208Z`, or with 9 fraction digits."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    frac = f"{nanos:09d}" if nanos is not None else f"{ms % 1000:03d}"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac}Z"


@dataclass
class FakeSession:
    """One client connection as the fake saw it."""

    n: int
    ws: ServerConnection
    path: str
    headers: Headers
    authed: bool = False
    #: Channel → subscribed symbols (Finnhub: the "trades" channel only).
    subs: dict[str, set[str]] = field(default_factory=dict)
    messages: list[Any] = field(default_factory=list)
    open: bool = True


class FakeFeedServer:
    """Shared plumbing: serve, record, push frames, cut connections, wait with a deadline."""

    def __init__(self) -> None:
        self.sessions: list[FakeSession] = []
        self.port = 0
        self._server: Server | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> Self:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self.process_request,
            logger=_LOG,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def url(self, path: str = "/") -> str:
        if not self.port:
            raise RuntimeError("fake server is not started")
        return f"ws://127.0.0.1:{self.port}{path}"

    # -- protocol hooks -----------------------------------------------------------------------
    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """Refuse the upgrade (e.g. a bad token) by returning a response; None accepts it."""
        return None

    async def serve_session(self, s: FakeSession) -> None:
        raise NotImplementedError

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        s = FakeSession(len(self.sessions), ws, ws.request.path, ws.request.headers)
        self.sessions.append(s)
        try:
            await self.serve_session(s)
        except ConnectionClosed:
            pass
        finally:
            s.open = False

    async def recv_json(self, s: FakeSession) -> Any:
        """The client's next message, recorded; a non-JSON message is recorded as its text."""
        raw = await s.ws.recv()
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = raw
        s.messages.append(msg)
        return msg

    async def reply(self, s: FakeSession, frame: Any) -> None:
        await s.ws.send(json.dumps(frame))

    # -- what tests call ----------------------------------------------------------------------
    @property
    def live(self) -> list[FakeSession]:
        return [s for s in self.sessions if s.open and s.authed]

    @property
    def received(self) -> list[Any]:
        """Every client message of every session, in session order."""
        return [m for s in self.sessions for m in s.messages]

    async def send(self, frame: Any) -> None:
        """One data frame (a list of items, or an object) to every live session."""
        await self.send_raw(json.dumps(frame))

    async def send_raw(self, text: str) -> None:
        for s in self.live:
            with contextlib.suppress(ConnectionClosed):
                await s.ws.send(text)

    async def drop(self) -> None:
        """Cut every connection at the TCP level: no close frame, like a network failure."""
        for s in self.sessions:
            if s.open:
                s.ws.transport.abort()
                s.open = False

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                seen = [(s.n, s.path, s.messages) for s in self.sessions]
                raise AssertionError(f"fake feed: condition not met within {timeout}s: {seen}")
            await asyncio.sleep(0.005)

    async def wait_live(self, n: int = 1, timeout: float = 5.0) -> None:
        """Until `n` sessions in total have authenticated and at least one is live."""
        await self.wait_for(
            lambda: sum(s.authed for s in self.sessions) >= n and bool(self.live), timeout
        )


class FakeAlpacaServer(FakeFeedServer):
    """Alpaca market data v2 (`/v2/{feed}`) and news (`/v1beta1/news`), JSON mode.

    `one_session`: a second authenticated session while one is live gets 406 and is closed.
    `plan_feeds`: feeds the account may use; others fail at auth with 409.
    """

    STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses",
                      "lulds")  # fmt: skip

    def __init__(
        self,
        key_id: str = "AKFAKEKEY0000000",
        secret_key: str = "fake-secret-0000000000000000",
        *,
        one_session: bool = True,
        plan_feeds: Iterable[str] = ("iex", "sip", "delayed_sip", "test"),
    ) -> None:
        super().__init__()
        self.key_id = key_id
        self.secret_key = secret_key
        self.one_session = one_session
        self.plan_feeds = set(plan_feeds)

    def stocks_url(self, feed: str = "iex") -> str:
        return self.url(f"/v2/{feed}")

    @property
    def news_url(self) -> str:
        return self.url("/v1beta1/news")

    async def _error(self, s: FakeSession, code: int, msg: str, close: bool) -> None:
        await self.reply(s, [{"T": "error", "code": code, "msg": msg}])
        if close:
            await s.ws.close()

    async def serve_session(self, s: FakeSession) -> None:
        news = s.path.startswith("/v1beta1/news")
        feed = s.path.rsplit("/", 1)[-1]
        s.subs = {"news": set()} if news else {c: set() for c in self.STOCK_CHANNELS}
        await self.reply(s, [{"T": "success", "msg": "connected"}])
        while True:
            msg = await self.recv_json(s)
            action = msg.get("action") if isinstance(msg, dict) else None
            if action == "auth":
                if s.authed:
                    await self._error(s, 403, "already authenticated", close=False)
                elif msg.get("key") != self.key_id or msg.get("secret") != self.secret_key:
                    return await self._error(s, 402, "auth failed", close=True)
                elif not news and feed not in self.plan_feeds:
                    return await self._error(s, 409, "insufficient subscription", close=True)
                elif self.one_session and self.live:
                    return await self._error(s, 406, "connection limit exceeded", close=True)
                else:
                    s.authed = True
                    await self.reply(s, [{"T": "success", "msg": "authenticated"}])
            elif action in ("subscribe", "unsubscribe"):
                if not s.authed:
                    await self._error(s, 401, "not authenticated", close=False)
                    continue
                for channel, symbols in msg.items():
                    if channel in s.subs and isinstance(symbols, list):
                        if action == "subscribe":
                            s.subs[channel] |= set(symbols)
                        else:
                            s.subs[channel] -= set(symbols)
                await self.reply(s, [self._subscription(s)])
            else:
                await self._error(s, 400, "invalid syntax", close=False)

    def _subscription(self, s: FakeSession) -> dict[str, Any]:
        """The full current set, as the real server sends after every change."""
        reply: dict[str, Any] = {"T": "subscription"}
        reply.update({c: sorted(v) for c, v in s.subs.items()})
        if "trades" in s.subs:
            reply["corrections"] = sorted(s.subs["trades"])
            reply["cancelErrors"] = sorted(s.subs["trades"])
        return reply

    # -- message builders (field names and types as the real server sends them) --------------
    @staticmethod
    def trade(
        symbol: str,
        price: float,
        size: int = 100,
        *,
        ms: int | None = None,
        trade_id: int = 1,
        exchange: str = "V",
        nanos: int | None = None,
    ) -> dict[str, Any]:
        return {"T": "t", "S": symbol, "i": trade_id, "x": exchange, "p": price, "s": size,
                "t": rfc3339(ms or now_ms(), nanos), "c": ["@"], "z": "C"}  # fmt: skip

    @staticmethod
    def quote(symbol: str, bid: float, ask: float, *, ms: int | None = None) -> dict[str, Any]:
        return {"T": "q", "S": symbol, "bx": "V", "bp": bid, "bs": 1, "ax": "V", "ap": ask,
                "as": 2, "t": rfc3339(ms or now_ms(), 335689322), "c": ["R"], "z": "C"}  # fmt: skip

    @staticmethod
    def bar(symbol: str, close: float, volume: int, *, start_ms: int, updated: bool = False
            ) -> dict[str, Any]:  # fmt: skip
        start = datetime.fromtimestamp(start_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"T": "u" if updated else "b", "S": symbol, "o": close, "h": close, "l": close,
                "c": close, "v": volume, "t": start, "n": 10, "vw": close}  # fmt: skip

    @staticmethod
    def news(
        article_id: int,
        headline: str,
        symbols: list[str],
        *,
        created_ms: int | None = None,
        updated_ms: int | None = None,
    ) -> dict[str, Any]:
        created = created_ms or now_ms()
        return {"T": "n", "id": article_id, "headline": headline, "summary": "",
                "author": "Benzinga Newsdesk", "created_at": rfc3339(created)[:-5] + "Z",
                "updated_at": rfc3339(updated_ms or created)[:-5] + "Z",
                "url": f"https://www.benzinga.com/news/{article_id}", "content": "<p>...</p>",
                "symbols": symbols, "source": "benzinga"}  # fmt: skip


class FakePolygonServer(FakeFeedServer):
    """Polygon/Massive stocks cluster (`/stocks`): status frames, prefixed subscriptions."""

    def __init__(self, api_key: str = "polygon-fake-key-000", *, one_session: bool = True) -> None:
        super().__init__()
        self.api_key = api_key
        self.one_session = one_session

    @property
    def stocks_url(self) -> str:
        return self.url("/stocks")

    @staticmethod
    def status(status: str, message: str) -> dict[str, str]:
        return {"ev": "status", "status": status, "message": message}

    async def serve_session(self, s: FakeSession) -> None:
        s.subs = {p: set() for p in ("T", "Q", "A", "AM")}
        await self.reply(s, [self.status("connected", "Connected Successfully")])
        while True:
            msg = await self.recv_json(s)
            action = msg.get("action") if isinstance(msg, dict) else None
            if action == "auth":
                if msg.get("params") != self.api_key:
                    await self.reply(s, [self.status("auth_failed", "authentication failed")])
                    return await s.ws.close()
                if self.one_session and self.live:
                    full = "Maximum number of connections exceeded."
                    await self.reply(s, [self.status("max_connections", full)])
                    return await s.ws.close(1008, "max connections")
                s.authed = True
                await self.reply(s, [self.status("auth_success", "authenticated")])
            elif action in ("subscribe", "unsubscribe") and s.authed:
                replies = []
                for item in str(msg.get("params", "")).split(","):
                    prefix, _, sym = item.partition(".")
                    if prefix not in s.subs or not sym:
                        replies.append(self.status("error", f"invalid subscription: {item}"))
                        continue
                    if action == "subscribe":
                        s.subs[prefix].add(sym)
                        replies.append(self.status("success", f"subscribed to: {item}"))
                    else:
                        s.subs[prefix].discard(sym)
                        replies.append(self.status("success", f"unsubscribed to: {item}"))
                await self.reply(s, replies)
            else:
                await self.reply(s, [self.status("error", "not authorized")])

    @staticmethod
    def trade(symbol: str, price: float, size: int = 100, *, ms: int | None = None,
              trade_id: str | int = "8310", exchange: int = 4) -> dict[str, Any]:  # fmt: skip
        return {"ev": "T", "sym": symbol, "i": trade_id, "x": exchange, "p": price, "s": size,
                "c": [37], "t": ms or now_ms(), "q": 1234, "z": 3}  # fmt: skip

    @staticmethod
    def quote(symbol: str, bid: float, ask: float, *, ms: int | None = None) -> dict[str, Any]:
        return {"ev": "Q", "sym": symbol, "bx": 4, "bp": bid, "bs": 1, "ax": 7, "ap": ask, "as": 2,
                "c": 0, "i": [604], "t": ms or now_ms(), "q": 50385480, "z": 3}  # fmt: skip

    @staticmethod
    def agg(symbol: str, close: float, volume: int, *, end_ms: int, minute: bool = True
            ) -> dict[str, Any]:  # fmt: skip
        span = 60_000 if minute else 1_000
        return {"ev": "AM" if minute else "A", "sym": symbol, "v": volume, "av": volume * 10,
                "op": close, "vw": close, "o": close, "c": close, "h": close, "l": close,
                "a": close, "z": 685, "s": end_ms - span, "e": end_ms}  # fmt: skip


class FakeFinnhubServer(FakeFeedServer):
    """Finnhub trades websocket: token in the query string (401 at upgrade if wrong)."""

    def __init__(self, token: str = "finnhub-fake-token-0000") -> None:
        super().__init__()
        self.token = token
        self.refused = 0

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        if token != self.token:
            self.refused += 1
            return conn.respond(401, "Invalid API key\n")
        return None

    async def serve_session(self, s: FakeSession) -> None:
        s.authed = True  # the token was checked at the upgrade
        s.subs = {"trades": set()}
        while True:
            msg = await self.recv_json(s)
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "subscribe":
                s.subs["trades"].add(str(msg.get("symbol")))
            elif kind == "unsubscribe":
                s.subs["trades"].discard(str(msg.get("symbol")))
            else:
                await self.reply(s, {"type": "error", "msg": "Invalid message"})

    async def ping(self) -> None:
        await self.send({"type": "ping"})

    @staticmethod
    def trades(*trades: tuple[str, float, float]) -> dict[str, Any]:
        """A trade frame from (symbol, price, volume) triples, stamped now."""
        t = now_ms()
        data = [{"s": s, "p": p, "t": t, "v": v, "c": ["1", "12"]} for s, p, v in trades]
        return {"type": "trade", "data": data}
