"""The `FeedSource` base of live websocket feeds: connection life, handshake, reading, reconnect.

A provider module only builds messages and maps frames. The base connects, runs the provider's
handshake (messages to send and the reply that ends each step), subscribes (`subscribe`), reads
frames into the writer's queue (`batching`), and reconnects with capped, fully jittered
exponential backoff. Problems are sorted once, here: a lost connection is retried; wrong
credentials stop the daemon (`FatalSourceError`) with a message that names what to check and
never the secret itself. Silence, status and parse-error warnings are `watchdog`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from abc import abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import orjson
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.frames import CloseCode

from daemon.events import Headline, Tick
from daemon.sources.arbiter import WILDCARD
from daemon.sources.backoff import backoff_delay
from daemon.sources.base import FatalSourceError, SourceContext
from daemon.sources.batching import MAX_PENDING, FeedBatching
from daemon.sources.feed_types import (
    Event,
    FeedConfig,
    FeedError,
    FeedState,
    SessionConflict,
    Step,
    UnknownMessage,
    quote_tick,
)
from daemon.sources.meter import RateMeter, RecentKeys
from daemon.sources.redact import RedactingLogger, cut_secrets
from daemon.sources.subscribe import FeedSubscriptions
from daemon.sources.timestamps import TimestampParser
from daemon.sources.watchdog import FeedWatch

__all__ = [  # the names adapters and tests import from here, wherever they live
    "Event",
    "FeedConfig",
    "FeedError",
    "FeedSource",
    "RateMeter",
    "RecentKeys",
    "SessionConflict",
    "Step",
    "TimestampParser",
    "UnknownMessage",
    "backoff_delay",
    "quote_tick",
]

log = logging.getLogger("tickwatch.sources.feed")

#: Consecutive "another session holds this key" refusals before giving up.
SESSION_CONFLICT_TRIES = 3


def _close_code(e: ConnectionClosed) -> int | None:
    for frame in (e.sent, e.rcvd):
        if frame is not None:
            return frame.code
    return None


class FeedSource(FeedBatching, FeedSubscriptions, FeedWatch):
    """A websocket market-data feed; subclasses describe the provider's protocol only."""

    config_model: ClassVar[type[FeedConfig]]
    config: FeedConfig
    #: Name shown to operators, e.g. "Alpaca".
    provider: ClassVar[str]
    #: Environment variables people usually keep this provider's secrets in (for error text).
    env_hint: ClassVar[str]

    def __init__(
        self,
        config: FeedConfig,
        ctx: SourceContext,
        *,
        in_session: Callable[[int], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(config, ctx)
        self._in_session = in_session
        self._rng = rng or random.Random()
        self.state: FeedState = "idle"
        self.reconnects = 0
        self.parse_errors: Counter[str] = Counter()
        self.standby = 0
        self.duplicates = 0
        self.ignored = 0
        self.last_error = ""
        self.timestamps = TimestampParser()
        self.recent = RecentKeys()
        self._rate = RateMeter()
        self._last_msg = 0.0
        self._last_data = 0.0
        self._connected_at = 0.0
        self._silent = False
        self._forced = ""  # why we closed the connection ourselves, if we did
        self._closing = asyncio.Event()
        self._running = False
        self._stopped = asyncio.Event()
        self._last_parse_log = 0.0
        self._conn: ClientConnection | None = None  # open, maybe not yet authenticated
        self._ws: ClientConnection | None = None  # authenticated and subscribed
        self._subscribed: frozenset[str] | None = None  # what the server has; None = no session
        self._wanted = self._narrow(ctx.symbols)
        self._sub_lock = asyncio.Lock()
        self._ticks: list[Tick] = []
        self._news: list[Headline] = []
        self._recv_times: list[float] = []
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._status_kick = asyncio.Event()
        self._ops_sent: set[tuple[str, str]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._latency: deque[float] = deque(maxlen=4096)
        self._ws_log = RedactingLogger(logging.getLogger("websockets.client"), self.redact)

    # -- what a provider supplies -------------------------------------------------------------
    @abstractmethod
    def endpoint(self) -> str:
        """The URL to connect to (it may carry a secret: it is never logged as is)."""

    def secrets(self) -> dict[str, SecretStr]:
        """Config field → secret; an empty one stops the source before it connects."""
        return {}

    def handshake(self) -> Sequence[Step]:
        """Steps after the upgrade and before subscribing (greeting, auth)."""
        return ()

    @abstractmethod
    def subscribe_messages(self, symbols: frozenset[str], subscribe: bool) -> list[dict[str, Any]]:
        """Messages that (un)subscribe `symbols` (never empty) on every configured channel."""

    @abstractmethod
    def on_item(self, item: Any, out: list[Event]) -> None:
        """Map one decoded message: append events to `out`, act on control messages.

        Raise KeyError/TypeError/ValueError for a malformed message, `UnknownMessage` for an
        unknown type (both counted, never fatal), `FeedError` to reconnect.
        """

    def decode(self, raw: str | bytes) -> list[Any]:
        """A frame → its messages (JSON array → items; a lone object → one item)."""
        data = orjson.loads(raw)  # 2x json.loads on a frame: ~5% of a tick's cost (bench/feed.py)
        return data if isinstance(data, list) else [data]

    # -- helpers for providers ----------------------------------------------------------------
    def redact(self, text: str) -> str:
        values = (secret.get_secret_value() for secret in self.secrets().values())
        return cut_secrets(text, values, min_len=4)

    def auth_failed(self, detail: str) -> FatalSourceError:
        """The error for refused credentials: what to check, without the secret."""
        fields = "/".join(self.secrets()) or "credentials"
        return FatalSourceError(
            f"{self.provider} refused the credentials of source '{self.name}' ({detail}): "
            f"check {fields} in alerts.yaml and the environment variables they come from "
            f"(usually {self.env_hint})"
        )

    # -- the run loop -------------------------------------------------------------------------
    async def run(self) -> None:
        for field_name, secret in self.secrets().items():
            if not secret.get_secret_value():
                self._set_state("failed")
                raise FatalSourceError(
                    f"source '{self.name}': {field_name} is empty; set it in alerts.yaml, "
                    f"usually from the environment ({self.env_hint})"
                )
        if self.config.silent_after is not None and self._in_session is None:
            from daemon.rules import nyse

            sessions = await asyncio.to_thread(nyse().load)
            self._in_session = sessions.is_regular
        if self.config.symbols is not None and WILDCARD not in self.config.symbols:
            unused = set(self.config.symbols) - set(self.ctx.symbols)
            if unused:
                log.info(
                    "source %s: not subscribing to %s: no rule or symbols list needs them",
                    self.name, ", ".join(sorted(unused)),
                )  # fmt: skip
        self._wanted = self._narrow(self.ctx.symbols)
        self._cover()
        self._running = True
        self._stopped.clear()
        tasks = [
            asyncio.create_task(self._connection_loop(), name=f"{self.name}:connection"),
            asyncio.create_task(self._writer(), name=f"{self.name}:writer"),
            asyncio.create_task(self._status_loop(), name=f"{self.name}:status"),
        ]
        if self.config.silent_after is not None:
            tasks.append(asyncio.create_task(self._watch_silence(), name=f"{self.name}:silence"))
        try:
            # the connection loop ends on `aclose`; any task failing ends the run
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                exc = None if t.cancelled() else t.exception()
                if exc is not None:
                    raise exc
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.state != "failed":
                self._set_state("stopped")
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._write_status()
            self._running = False
            self._stopped.set()

    async def aclose(self) -> None:
        """Stop for good: close the session properly (1000) and let `run` return.

        Called before the scheduler is shut down, the feed ends as a finished job rather than
        as a cancelled one.
        """
        self._closing.set()
        ws = self._conn
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                if ws is not None:
                    await ws.close(CloseCode.NORMAL_CLOSURE, "tickwatch stopping")
                if self._running:
                    await self._stopped.wait()

    async def _connection_loop(self) -> None:
        cfg = self.config
        attempt = conflicts = 0
        while not self._closing.is_set():
            self._set_state("connecting")
            self._connected_at = 0.0
            self._forced = ""
            try:
                await self._session()
            except FatalSourceError as e:
                self.last_error = str(e)
                self._set_state("failed")
                raise
            except SessionConflict as e:
                conflicts += 1
                self.note_error(str(e))
                if conflicts >= SESSION_CONFLICT_TRIES:
                    self._set_state("failed")
                    raise FatalSourceError(
                        f"{self.provider} allows one connection per key and another session is "
                        f"using this key (source '{self.name}', {conflicts} tries): stop the "
                        "other client or give this daemon its own key"
                    ) from None
            except FeedError as e:
                self.note_error(str(e))
            except InvalidStatus as e:
                code = e.response.status_code
                if code in (401, 403):
                    self._set_state("failed")
                    raise self.auth_failed(f"HTTP {code} at connect") from None
                self.note_error(f"server answered HTTP {code} at connect")
            except ConnectionClosed as e:
                if _close_code(e) == CloseCode.MESSAGE_TOO_BIG:
                    self.parse_error("oversized frame")
                    self.note_error(f"a frame was bigger than max_frame ({cfg.max_frame} bytes)")
                else:
                    self.note_error(f"connection lost ({e})")
            except (OSError, TimeoutError, WebSocketException) as e:
                self.note_error(f"{type(e).__name__}: {e}")
            except Exception as e:  # a bug of ours must not end the feed for good
                self.note_error(f"unexpected {type(e).__name__}: {e}")
            finally:
                self._ws = None
                self._subscribed = None
                if self.ctx.arbiter is not None:
                    self.ctx.arbiter.down(self.name)
            if self._closing.is_set():
                return
            if self._connected_at:
                conflicts = 0
                if time.monotonic() - self._connected_at >= cfg.healthy_after.total_seconds():
                    attempt = 0
            delay = backoff_delay(
                attempt,
                cfg.backoff_initial.total_seconds(),
                cfg.backoff_max.total_seconds(),
                self._rng,
            )
            attempt += 1
            self.reconnects += 1
            self._set_state("backoff")
            log.warning(
                "source %s: %s; reconnecting in %.1fs (after %.0fs connected, try %d)",
                self.name, self.last_error, delay,
                time.monotonic() - self._connected_at if self._connected_at else 0.0,
                attempt,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._closing.wait()

    def note_error(self, text: str) -> None:
        """Remember the latest trouble for the status and the reconnect log (redacted)."""
        self.last_error = self.redact(text)

    async def _session(self) -> None:
        """One connection, from connect until it ends (`aclose` can close it at any step)."""
        cfg = self.config
        async with connect(
            self.endpoint(),
            max_size=cfg.max_frame,
            max_queue=1024,
            open_timeout=10,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=2,
            logger=self._ws_log,
        ) as ws:
            self._conn = ws
            try:
                if not self._closing.is_set():
                    await self._open_session(ws)
            finally:
                self._conn = None

    async def _open_session(self, ws: ClientConnection) -> None:
        """Handshake, subscribe, then read until the connection ends."""
        self._set_state("authenticating")
        async with asyncio.timeout(15):
            for step in self.handshake():
                await self._send_all(ws, step.send)
                await self._read_until(ws, step.until)
        self._ws = ws
        await self._subscribe_all(ws)
        now = time.monotonic()
        self._connected_at = self._last_msg = now
        if self.ctx.arbiter is not None:
            self.ctx.arbiter.up(self.name)
        self._set_state("connected")
        log.info(
            "source %s: connected to %s, %d symbols",
            self.name, self.redact(self.endpoint()), len(self._wanted),
        )  # fmt: skip
        await self._read(ws)
        self.note_error(
            self._forced or f"server closed the connection ({ws.close_code} {ws.close_reason})"
        )

    async def _read_until(self, ws: ClientConnection, until: Callable[[Any], bool]) -> None:
        while True:
            raw = await ws.recv()
            self._last_msg = time.monotonic()
            try:
                items = self.decode(raw)
            except ValueError:
                self.parse_error("malformed JSON")
                continue
            for item in items:
                if until(item):
                    return

    async def _read(self, ws: ClientConnection) -> None:
        """The hot path: frame → events → queue for the writer."""
        name = self.name
        arbiter = self.ctx.arbiter
        on_item = self.on_item
        async for raw in ws:
            now = time.monotonic()
            self._last_msg = now
            try:
                items = self.decode(raw)
            except ValueError:
                self.parse_error("malformed JSON")
                continue
            out: list[Event] = []
            for item in items:
                try:
                    on_item(item, out)
                except UnknownMessage as e:
                    self.parse_error(f"unknown type {str(e)[:40]!r}")
                except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                    self.parse_error("malformed message")
            self._rate.add(len(items), now)
            if arbiter is not None:
                arbiter.alive(name, now)
            if not out:
                continue
            self._last_data = now
            if self._silent:
                self._silent = False
                log.info("source %s: data flows again (recovered from a silent feed)", name)
            ticks, news = self._ticks, self._news
            for ev in out:
                if type(ev) is Tick:
                    if arbiter is not None and not arbiter.admit(name, ev.symbol, now):
                        self.standby += 1
                        continue
                    ticks.append(ev)
                else:
                    news.append(ev)  # type: ignore[arg-type]
            self._recv_times.append(now)
            self._wake.set()
            # frames already buffered return from the socket without yielding: let the writer
            # start on this one now, not after the whole backlog is parsed
            await asyncio.sleep(0)
            if len(ticks) + len(news) > MAX_PENDING:
                self._drained.clear()
                await self._drained.wait()
