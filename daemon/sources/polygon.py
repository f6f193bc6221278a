"""Polygon.io (Massive) stocks websocket (PROTOCOLS.md §4).

Status frames drive the handshake: `connected`, then `auth_success` or `auth_failed` (fatal:
the key is wrong) or `max_connections` (another session holds the key). Each subscription item
carries its own channel prefix (`T.AAPL,Q.AAPL`). Timestamps are epoch milliseconds; an
aggregate is told at its window's end `e`. Trade ids are strings in the client's model but
numbers in some captures, so both are accepted.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field, SecretStr

from daemon.events import Tick
from daemon.sources.feed import (
    Event,
    FeedConfig,
    FeedError,
    FeedSource,
    SessionConflict,
    Step,
    UnknownMessage,
    quote_tick,
)

__all__ = ["PolygonConfig", "PolygonSource"]

log = logging.getLogger("tickwatch.sources.polygon")
HOSTS = {"realtime": "wss://socket.polygon.io/stocks", "delayed": "wss://delayed.polygon.io/stocks"}
Channel = Literal["trades", "quotes", "second_aggs", "minute_aggs"]
_PREFIX: dict[str, str] = {"trades": "T", "quotes": "Q", "second_aggs": "A", "minute_aggs": "AM"}
#: Events we may receive but do not turn into ticks.
_IGNORED = frozenset({"LULD", "NOI", "FMV"})


class PolygonConfig(FeedConfig):
    type: Literal["polygon"]
    api_key: SecretStr = Field(description="API key, e.g. ${POLYGON_API_KEY}")
    feed: Literal["realtime", "delayed"] = Field(
        "realtime", description="realtime or 15-minute delayed cluster (Massive hosts: use url)"
    )
    channels: list[Channel] = Field(
        default_factory=lambda: list[Channel](["trades"]),
        min_length=1,
        description="trades (T), quotes (Q, priced at the mid), second_aggs (A), minute_aggs "
        "(AM); aggregates are told at their window's end",
    )


class PolygonSource(FeedSource):
    kind = "polygon"
    config_model = PolygonConfig
    config: PolygonConfig
    provider = "Polygon"
    env_hint = "POLYGON_API_KEY"

    def endpoint(self) -> str:
        return self.config.url or HOSTS[self.config.feed]

    def secrets(self) -> dict[str, SecretStr]:
        return {"api_key": self.config.api_key}

    def handshake(self) -> list[Step]:
        auth = {"action": "auth", "params": self.config.api_key.get_secret_value()}
        return [
            Step((), lambda m: self._status(m, "connected")),
            Step((auth,), lambda m: self._status(m, "auth_success")),
        ]

    def _status(self, m: Any, expect: str) -> bool:
        if m.get("ev") != "status":
            return False
        status, message = m.get("status"), str(m.get("message", ""))
        if status == expect:
            return True
        if status == "auth_failed":
            raise self.auth_failed(f"{status}: {message}")
        if status == "max_connections":
            raise SessionConflict(f"{status}: {message}")
        if status in ("auth_timeout", "error"):
            raise FeedError(f"{status}: {message}")
        return False

    def subscribe_messages(self, symbols: frozenset[str], subscribe: bool) -> list[dict[str, Any]]:
        items = [f"{_PREFIX[ch]}.{s}" for ch in self.config.channels for s in sorted(symbols)]
        return [{"action": "subscribe" if subscribe else "unsubscribe", "params": ",".join(items)}]

    def on_item(self, m: Any, out: list[Event]) -> None:
        ev = m["ev"]
        if ev == "T":
            sym = m["sym"]
            tick = Tick(sym, int(m["t"]), float(m["p"]), float(m.get("s", 0)), None, None,
                        "trade", self.name)  # fmt: skip
            tid = m.get("i")  # a trade id repeats only when the message does
            if tid is not None and self.recent.seen((sym, m.get("x"), tid)):
                self.duplicates += 1
            else:
                out.append(tick)
        elif ev == "Q":
            q = quote_tick(m["sym"], int(m["t"]), float(m["bp"]), float(m["ap"]), self.name)
            if q is None:
                self.ignored += 1
            else:
                out.append(q)
        elif ev == "AM" or ev == "A":
            sym, end = m["sym"], int(m["e"])
            close, volume = float(m["c"]), float(m["v"])
            if self.recent.seen((sym, ev, end, close, volume)):
                self.duplicates += 1
            else:
                out.append(Tick(sym, end, close, volume, None, None, "bar", self.name))
        elif ev == "status":
            self._stream_status(m)
        elif ev in _IGNORED:
            self.ignored += 1
        else:
            raise UnknownMessage(str(ev))

    def _stream_status(self, m: Any) -> None:
        status, message = m.get("status"), str(m.get("message", ""))
        if status == "success":
            log.debug("source %s: %s", self.name, message)
        elif status == "max_connections":
            raise SessionConflict(f"{status}: {message}")
        elif status == "auth_failed":
            raise self.auth_failed(f"{status}: {message}")
        else:
            self.note_error(f"status {status}: {message}")
            log.warning("source %s: server status %s: %s", self.name, status, message)
