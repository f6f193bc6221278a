"""What every live websocket feed shares; a provider module only builds messages and maps frames.

The base owns the connection's whole life: connect, the provider's handshake (messages to send
and the reply that ends each step), subscribing to the symbols the rules need and only the
difference on a reload, reading frames, reconnecting with capped, fully jittered exponential
backoff, telling a silent feed from a quiet market (NYSE regular session only), and the status
an operator reads. Problems are sorted once, here: a frame we cannot read is counted and logged
at most every 10 s, never fatal; a lost connection is retried; wrong credentials stop the daemon
(`FatalSourceError`) with a message that names what to check and never the secret itself.

Latency: the reader parses each frame into events and queues them; a single writer task drains
the whole queue into one `emit` (one MULTI/EXEC) as soon as it is idle. Under load, frames pile up
while a write is in flight and go out together in the next one; at low rates each frame is written
as soon as it is parsed. No timer adds delay, and Redis round trips never stall the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from abc import abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, NamedTuple

import orjson
from pydantic import Field, SecretStr, field_validator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.frames import CloseCode

from daemon.durations import Duration
from daemon.events import Headline, Tick
from daemon.sources.arbiter import WILDCARD
from daemon.sources.base import FatalSourceError, Source, SourceConfig, SourceContext
from daemon.store.retry import REDIS_DOWN

__all__ = [
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

FeedState = Literal["idle", "connecting", "authenticating", "connected", "backoff", "failed",
                    "stopped"]  # fmt: skip
Event = Tick | Headline

#: How many parse-error and refusal warnings a feed may log: one per this many seconds.
LOG_EVERY_S = 10.0
#: Consecutive "another session holds this key" refusals before giving up.
SESSION_CONFLICT_TRIES = 3
#: Events queued but not yet written beyond which the reader waits for the writer.
MAX_PENDING = 200_000


class FeedConfig(SourceConfig):
    """Fields every websocket feed has, on top of `type`/`name`/`enabled`."""

    url: str | None = Field(
        None, description="Endpoint override (a sandbox, a proxy, a test server)"
    )
    symbols: list[str] | None = Field(
        None,
        description="Subscribe only to these of the symbols the rules need (default: all of "
        "them); ['*'] subscribes to everything the feed carries",
    )
    priority: int = Field(
        0,
        description="Fallback order when several feeds carry a symbol: lower is preferred. "
        "A feed's ticks are kept on standby while a preferred feed delivers that symbol.",
    )
    silent_after: Duration | None = Field(
        default=timedelta(seconds=60),
        description="During the NYSE regular session, no data for this long raises one ops "
        "alert and reconnects; null disables the check",
    )
    max_frame: int = Field(
        4 * 2**20, ge=1024, description="Largest frame accepted, in bytes (bigger: reconnect)"
    )
    backoff_initial: Duration = Field(
        default=timedelta(seconds=0.5), description="First reconnect delay (before jitter)"
    )
    backoff_max: Duration = Field(
        default=timedelta(seconds=30), description="Longest reconnect delay"
    )
    healthy_after: Duration = Field(
        default=timedelta(seconds=30),
        description="A connection that lasted this long resets the reconnect backoff",
    )
    batch_max: int = Field(1000, ge=1, le=50_000, description="Most events in one Redis write")
    status_every: Duration = Field(
        default=timedelta(seconds=5), description="How often the feed's status is written"
    )

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and WILDCARD in v and len(v) > 1:
            raise ValueError("'*' means every symbol: write symbols: ['*'] alone")
        return v


# -- pure helpers ----------------------------------------------------------------------------


class FeedError(Exception):
    """Retryable: the server refused or broke something; reconnect after a backoff."""


class SessionConflict(FeedError):
    """The provider allows one session per key and another one holds it."""


class UnknownMessage(Exception):
    """A message type the provider's protocol does not list (counted, never fatal)."""


class Step(NamedTuple):
    """One handshake step: send `send`, then read until `until(message)` is True.

    `until` raises `FatalSourceError` or `FeedError` for a refusal.
    """

    send: Sequence[Mapping[str, Any]]
    until: Callable[[Any], bool]


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Full jitter (AWS): uniform in [0, min(cap, initial * 2**attempt)], so clients spread out."""
    return rng.uniform(0.0, min(cap, initial * (2 ** min(attempt, 30))))


def quote_tick(symbol: str, ts_ms: int, bid: float, ask: float, source: str) -> Tick | None:
    """A quote as a tick priced at the mid; a missing side (0) leaves the other as the price."""
    b = bid if bid > 0 else None
    a = ask if ask > 0 else None
    if b is not None and a is not None:
        price = (b + a) / 2
    elif b is not None or a is not None:
        price = b if b is not None else a  # type: ignore[assignment]
    else:
        return None
    return Tick(symbol, ts_ms, price, 0.0, b, a, "quote", source)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


class TimestampParser:
    """RFC-3339 text (up to nanoseconds, `Z` or an offset) → epoch ms, truncated.

    Ticks within one second share their first 19 characters, so the date-time part is parsed
    once per second and cached; the fraction's first three digits are the milliseconds. Other
    shapes (offsets, odd spacing) take the exact but slower `fromisoformat` path.
    """

    def __init__(self, cache_size: int = 4096) -> None:
        self._cache: dict[str, int] = {}
        self._cache_size = cache_size

    def ms(self, text: str) -> int:
        sec = self._cache.get(text[:19])
        if sec is None:
            sec = self._seconds(text[:19])
        tail = text[19:]
        if tail[:1] == "." and tail[-1:] == "Z":
            frac = tail[1:-1]
            if not frac.isdigit():
                raise ValueError(f"bad timestamp {text!r}")
            if len(frac) >= 3:
                return sec * 1000 + int(frac[:3])
            return sec * 1000 + int(frac) * (10 if len(frac) == 2 else 100)
        if tail == "Z":
            return sec * 1000
        return self._slow(text)

    def _seconds(self, head: str) -> int:
        if len(head) != 19 or head[10] not in "Tt":
            raise ValueError(f"bad timestamp {head!r}")
        dt = datetime.fromisoformat(head).replace(tzinfo=UTC)
        s = (dt - _EPOCH) // timedelta(seconds=1)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[head] = s
        return s

    @staticmethod
    def _slow(text: str) -> int:
        dt = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
        if dt.tzinfo is None:
            raise ValueError(f"timestamp {text!r} has no zone")
        return (dt - _EPOCH) // timedelta(milliseconds=1)


class RateMeter:
    """Events per second over the last `window` seconds, in per-second buckets."""

    def __init__(self, window: int = 60) -> None:
        self.window = window
        self._counts = [0] * window
        self._secs = [-1] * window

    def add(self, n: int, now: float) -> None:
        sec = int(now)
        i = sec % self.window
        if self._secs[i] != sec:
            self._secs[i] = sec
            self._counts[i] = 0
        self._counts[i] += n

    def rate(self, now: float) -> float:
        sec = int(now)
        lo = sec - self.window
        total = sum(c for c, s in zip(self._counts, self._secs, strict=True) if lo < s <= sec)
        return total / self.window


class RecentKeys:
    """Remembers the last `size`..2×`size` keys: `seen(k)` is True for a repeat (two sets, O(1))."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._new: set[object] = set()
        self._old: set[object] = set()

    def seen(self, key: object) -> bool:
        if key in self._new or key in self._old:
            return True
        self._new.add(key)
        if len(self._new) >= self.size:
            self._old, self._new = self._new, set()
        return False


_OUTGOING_FRAME = re.compile(r"^> (TEXT|BINARY) .*(\[\d+ bytes\])$", re.DOTALL)


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' logger with secrets cut out.

    At DEBUG it logs request lines (a query-string token) and a truncated copy of each frame we
    send: an auth message cut in the middle shows part of a secret that no search finds, so the
    content of outgoing frames is not logged at all (our own log says what we subscribed).
    """

    def __init__(self, logger: logging.Logger, redact: Callable[[str], str]) -> None:
        super().__init__(logger, {})
        self._redact = redact

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        text = str(msg) % args if args else str(msg)
        text = _OUTGOING_FRAME.sub(r"> \1 (content not logged) \2", text)
        exc = kwargs.pop("exc_info", None)
        if exc:
            text += f" ({exc if isinstance(exc, BaseException) else 'see above'})"
        kwargs.pop("stack_info", None)
        self.logger.log(level, "%s", self._redact(text), **kwargs)


def _close_code(e: ConnectionClosed) -> int | None:
    for frame in (e.sent, e.rcvd):
        if frame is not None:
            return frame.code
    return None


# -- the base source -------------------------------------------------------------------------


class FeedSource(Source):
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
        self._ws_log = _RedactingLogger(logging.getLogger("websockets.client"), self.redact)

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
        for secret in self.secrets().values():
            value = secret.get_secret_value()
            if len(value) >= 4 and value in text:
                text = text.replace(value, "***")
        return text

    def auth_failed(self, detail: str) -> FatalSourceError:
        """The error for refused credentials: what to check, without the secret."""
        fields = "/".join(self.secrets()) or "credentials"
        return FatalSourceError(
            f"{self.provider} refused the credentials of source '{self.name}' ({detail}): "
            f"check {fields} in alerts.yaml and the environment variables they come from "
            f"(usually {self.env_hint})"
        )

    def ops_once(self, problem: str, summary: str, key: str = "") -> None:
        """One ops alert per distinct (`problem`, `key`): a refusal may repeat, the page won't."""
        if (problem, key) in self._ops_sent:
            return
        self._ops_sent.add((problem, key))
        self._spawn(self._ops(summary, problem))

    def parse_error(self, reason: str) -> None:
        """Count a message we could not use; warn at most every 10 s with the totals."""
        self.parse_errors[reason] += 1
        now = time.monotonic()
        if self._last_parse_log and now - self._last_parse_log < LOG_EVERY_S:
            return
        self._last_parse_log = now
        detail = ", ".join(f"{n} {r}" for r, n in self.parse_errors.most_common())
        log.warning("source %s: unreadable messages so far: %s", self.name, detail)

    # -- subscriptions ------------------------------------------------------------------------
    def _narrow(self, symbols: frozenset[str]) -> frozenset[str]:
        only = self.config.symbols
        if only is None:
            return frozenset(symbols)
        if WILDCARD in only:
            return frozenset({WILDCARD})
        return frozenset(symbols) & frozenset(only)

    @property
    def wanted(self) -> frozenset[str]:
        return self._wanted

    async def resubscribe(self, symbols: frozenset[str]) -> None:
        """Send only the difference: subscribe what is new, unsubscribe what is gone."""
        async with self._sub_lock:
            self._wanted = self._narrow(symbols)
            self._cover()
            ws, have = self._ws, self._subscribed
            if ws is None or have is None or have == self._wanted:
                return  # the next session subscribes to the full set
            added, removed = self._wanted - have, have - self._wanted
            try:
                if added:
                    await self._send_all(ws, self.subscribe_messages(added, True))
                if removed:
                    await self._send_all(ws, self.subscribe_messages(removed, False))
            except ConnectionClosed:
                return  # the reconnect subscribes afresh
            self._subscribed = self._wanted
            log.info(
                "source %s: subscribed %d more, %d fewer symbols (%d now)",
                self.name, len(added), len(removed), len(self._wanted),
            )  # fmt: skip

    async def _subscribe_all(self, ws: ClientConnection) -> None:
        async with self._sub_lock:
            if self._wanted:
                await self._send_all(ws, self.subscribe_messages(self._wanted, True))
            self._subscribed = self._wanted

    async def _send_all(self, ws: ClientConnection, messages: Sequence[Mapping[str, Any]]) -> None:
        for m in messages:
            await ws.send(json.dumps(m, separators=(",", ":")))

    def _cover(self) -> None:
        if self.ctx.arbiter is not None:
            self.ctx.arbiter.cover(self.name, self.config.priority, self._wanted)

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
            from daemon.rules.sessions import nyse

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

    # -- writing ------------------------------------------------------------------------------
    async def _writer(self) -> None:
        """Drain everything queued into `emit`, as soon as the previous write is acknowledged.

        A batch that fails (Redis away) goes back to the front of the queue: `run` ends, the
        daemon waits for Redis, and the next `run` writes it first.
        """
        step = self.config.batch_max
        if self._ticks or self._news:
            self._wake.set()  # left over from a write that failed
        while True:
            await self._wake.wait()
            self._wake.clear()
            ticks, news, recv = self._ticks, self._news, self._recv_times
            if not ticks and not news:
                continue
            self._ticks, self._news, self._recv_times = [], [], []
            self._drained.set()
            at_t = at_n = 0
            try:
                while at_t < len(ticks) or at_n < len(news):
                    end_t = min(len(ticks), at_t + step)
                    end_n = min(len(news), at_n + step - (end_t - at_t))
                    await self.emit(ticks[at_t:end_t], news[at_n:end_n])
                    at_t, at_n = end_t, end_n
            except BaseException:
                self._ticks[:0] = ticks[at_t:]
                self._news[:0] = news[at_n:]
                self._recv_times[:0] = recv
                raise
            self.written(recv, time.monotonic())

    def written(self, recv_times: list[float], done: float) -> None:
        """A batch is in Redis: note frame-received → write-acknowledged latency."""
        self._latency.extend(done - t for t in recv_times)

    # -- silence ------------------------------------------------------------------------------
    async def _watch_silence(self) -> None:
        assert self.config.silent_after is not None
        limit = self.config.silent_after.total_seconds()
        every = min(max(limit / 4, 0.01), 5.0)
        while True:
            await asyncio.sleep(every)
            ws = self._ws
            if ws is None or self.state != "connected" or not self._wanted:
                continue
            quiet = time.monotonic() - max(self._last_data, self._connected_at)
            if quiet < limit:
                continue
            assert self._in_session is not None
            if not self._in_session(int(time.time() * 1000)):
                continue
            if not self._silent:
                self._silent = True
                summary = (
                    f"source {self.name} ({self.provider}) sent no data for {quiet:.0f}s during "
                    f"the regular session; reconnecting"
                )
                log.warning("%s", summary)
                await self._ops(summary, "silent")
            else:
                log.info("source %s: still silent; reconnecting again", self.name)
            self._forced = f"no data for {quiet:.0f}s"
            with contextlib.suppress(Exception):
                await ws.close(CloseCode.GOING_AWAY, "silent feed")

    # -- status and ops -----------------------------------------------------------------------
    def _set_state(self, state: FeedState) -> None:
        if state != self.state:
            self.state = state
            self._status_kick.set()

    def status(self) -> dict[str, Any]:
        """What an operator needs to see at a glance (also written to Redis)."""
        now = time.monotonic()
        lat = sorted(self._latency)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else None

        return {
            "name": self.name,
            "type": self.kind,
            "state": self.state,
            "url": self.redact(self.endpoint()),
            "priority": self.config.priority,
            "symbols": len(self._wanted),
            "last_message_age_s": round(now - self._last_msg, 3) if self._last_msg else None,
            "last_data_age_s": round(now - self._last_data, 3) if self._last_data else None,
            "messages_per_s": round(self._rate.rate(now), 2),
            "reconnects": self.reconnects,
            "parse_errors": sum(self.parse_errors.values()),
            "parse_error_reasons": dict(self.parse_errors),
            "accepted": self.accepted,
            "rejected": sum(self.rejected.values()),
            "rejected_reasons": dict(self.rejected),
            "standby": self.standby,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "silent": self._silent,
            "last_error": self.last_error,
            "write_latency_ms": {"p50": pct(0.5), "p99": pct(0.99)},
        }

    async def _write_status(self) -> None:
        await self.ctx.feed_status.write(self.name, self.status())

    async def _status_loop(self) -> None:
        every = self.config.status_every.total_seconds()
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._status_kick.wait()
            self._status_kick.clear()
            with contextlib.suppress(*REDIS_DOWN):  # best effort: the writer notices Redis away
                await self._write_status()

    async def _ops(self, summary: str, problem: str) -> None:
        try:
            await self.ctx.ops(summary, {"source": self.name, "problem": problem})
        except Exception as e:  # an ops alert that fails must not stop the feed
            log.warning("source %s: could not raise an ops alert: %s", self.name, e)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
