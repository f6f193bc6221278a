"""Alpaca market data v2 (trades, quotes, minute bars) and the Alpaca news stream.

Both streams share one handshake (PROTOCOLS.md §1.2): the server greets with `connected`, we
send the key pair, it answers `authenticated` or an error code. Codes that retrying cannot fix
(402 bad key, 409 feed not in the plan, 411 scope, ...) stop the daemon; 406 means another
session holds the key. Frames are JSON arrays; we never ask for MessagePack, so timestamps are
RFC-3339 text with up to nanoseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr

from daemon.durations import Duration
from daemon.events import Headline, Tick
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

__all__ = [
    "AlpacaConfig",
    "AlpacaNewsConfig",
    "AlpacaNewsSource",
    "AlpacaSource",
    "news_headline",
]

log = logging.getLogger("tickwatch.sources.alpaca")

HOST = "wss://stream.data.alpaca.markets"
BAR_MS = 60_000
#: Refusals at auth that a retry cannot fix: the key, the plan or the token scope is wrong.
_FATAL = {402: "auth failed", 408: "v2 not enabled", 409: "insufficient subscription",
          410: "invalid subscribe action for this feed", 411: "insufficient scope"}  # fmt: skip
#: Message types we may receive but do not turn into events (statuses, LULD, corrections, ...).
_IGNORED = frozenset("sdlcxi")
Channel = Literal["trades", "quotes", "bars"]
#: Our channel → the subscribe keys it needs (updated bars re-send bars fixed by late trades).
_SUBSCRIBE_KEYS: dict[str, tuple[str, ...]] = {
    "trades": ("trades",),
    "quotes": ("quotes",),
    "bars": ("bars", "updatedBars"),
}


def news_headline(m: Mapping[str, Any], ts_ms: int) -> Headline:
    """An Alpaca news article (a stream `n` message, or an item of REST `/v1beta1/news`: the
    same fields) as a headline `alpaca:<id>`, told at `ts_ms` (its `created_at`).
    Raises KeyError/ValueError/TypeError when `id` or `headline` is missing or unreadable."""
    symbols = m.get("symbols") or []
    return Headline(
        id=f"alpaca:{int(m['id'])}",
        ts_ms=ts_ms,
        title=str(m["headline"]),
        summary=str(m.get("summary") or ""),
        symbols=tuple(str(s) for s in symbols),
        source=str(m.get("source") or "alpaca"),
        url=str(m.get("url") or ""),
    )


class _AlpacaCredentials(FeedConfig):
    key_id: SecretStr = Field(description="API key id, e.g. ${APCA_API_KEY_ID}")
    secret_key: SecretStr = Field(description="API secret key, e.g. ${APCA_API_SECRET_KEY}")


class AlpacaConfig(_AlpacaCredentials):
    type: Literal["alpaca"]
    feed: Literal["iex", "sip", "delayed_sip", "test"] = Field(
        "iex",
        description="iex (free), sip (paid), delayed_sip (15 min), test (FAKEPACA, always on)",
    )
    channels: list[Channel] = Field(
        default_factory=lambda: list[Channel](["trades"]),
        min_length=1,
        description="trades; quotes (priced at the mid); bars (1-minute, told at the bar's end)",
    )


class AlpacaNewsConfig(_AlpacaCredentials):
    type: Literal["alpaca_news"]
    silent_after: Duration | None = Field(
        None, description="News is sparse, so off by default; a duration enables the check"
    )


class _AlpacaStream(FeedSource):
    """The protocol both Alpaca streams share: greeting, auth, error codes."""

    config: _AlpacaCredentials
    provider = "Alpaca"
    env_hint = "APCA_API_KEY_ID / APCA_API_SECRET_KEY"

    def secrets(self) -> dict[str, SecretStr]:
        return {"key_id": self.config.key_id, "secret_key": self.config.secret_key}

    def handshake(self) -> list[Step]:
        auth = {
            "action": "auth",
            "key": self.config.key_id.get_secret_value(),
            "secret": self.config.secret_key.get_secret_value(),
        }
        return [
            Step((), lambda m: self._control(m, "connected")),
            Step((auth,), lambda m: self._control(m, "authenticated")),
        ]

    def _control(self, m: Any, expect: str) -> bool:
        """True on the expected `success`; raise for an error; False for anything else."""
        kind = m.get("T")
        if kind == "success":
            return bool(m.get("msg") == expect)
        if kind == "error":
            code, msg = int(m.get("code", 0)), str(m.get("msg", ""))
            if code in _FATAL:
                raise self.auth_failed(f"{code} {msg or _FATAL[code]}")
            if code == 406:
                raise SessionConflict(f"406 {msg}: another session is using this key")
            raise FeedError(f"{code} {msg}")
        return False

    def _stream_error(self, m: Any) -> None:
        """An error after the handshake: a refused change is reported, the session goes on."""
        code, msg = int(m.get("code", 0)), str(m.get("msg", ""))
        if code == 405:
            self.ops_once(
                "symbol_limit", f"source {self.name}: Alpaca refused symbols ({msg}); previous kept"
            )
        elif code in _FATAL:
            raise self.auth_failed(f"{code} {msg}")
        elif code == 406:
            raise SessionConflict(f"406 {msg}: another session is using this key")
        self.note_error(f"server error {code} {msg}")
        self.parse_error(f"server error {code}")


class AlpacaSource(_AlpacaStream):
    """Stocks stream: `t` trades, `q` quotes, `b`/`u` minute bars."""

    kind = "alpaca"
    config_model = AlpacaConfig
    config: AlpacaConfig

    def endpoint(self) -> str:
        return self.config.url or f"{HOST}/v2/{self.config.feed}"

    def subscribe_messages(self, symbols: frozenset[str], subscribe: bool) -> list[dict[str, Any]]:
        msg: dict[str, Any] = {"action": "subscribe" if subscribe else "unsubscribe"}
        listed = sorted(symbols)
        for channel in self.config.channels:
            for key in _SUBSCRIBE_KEYS[channel]:
                msg[key] = listed
        return [msg]

    def on_item(self, m: Any, out: list[Event]) -> None:
        kind = m["T"]
        if kind == "t":
            sym = m["S"]
            ts = self.timestamps.ms(m["t"])
            tick = Tick(sym, ts, float(m["p"]), float(m["s"]), None, None, "trade", self.name)
            tid = m.get("i")  # a trade id repeats only when the message does
            if tid is not None and self.recent.seen((sym, m.get("x"), tid)):
                self.duplicates += 1
            else:
                out.append(tick)
        elif kind == "q":
            ts = self.timestamps.ms(m["t"])
            q = quote_tick(m["S"], ts, float(m["bp"]), float(m["ap"]), self.name)
            if q is None:
                self.ignored += 1
            else:
                out.append(q)
        elif kind == "b" or kind == "u":
            sym = m["S"]
            end = self.timestamps.ms(m["t"]) + BAR_MS
            close, volume = float(m["c"]), float(m["v"])
            if self.recent.seen((sym, "bar", end, close, volume)):
                self.duplicates += 1
            else:
                out.append(Tick(sym, end, close, volume, None, None, "bar", self.name))
        elif kind == "subscription":
            self._confirmed(m)
        elif kind == "error":
            self._stream_error(m)
        elif kind in _IGNORED or kind == "success":
            self.ignored += 1
        else:
            raise UnknownMessage(kind)

    def _confirmed(self, m: Any) -> None:
        """The server's full current set (after every change)."""
        counts = {k: len(v) for k, v in m.items() if isinstance(v, list) and v}
        log.debug("source %s: subscription now %s", self.name, counts)


class AlpacaNewsSource(_AlpacaStream):
    """News stream: `n` articles → headlines `alpaca:<id>`, one per article id."""

    kind = "alpaca_news"
    config_model = AlpacaNewsConfig
    config: AlpacaNewsConfig

    def endpoint(self) -> str:
        return self.config.url or f"{HOST}/v1beta1/news"

    def subscribe_messages(self, symbols: frozenset[str], subscribe: bool) -> list[dict[str, Any]]:
        return [{"action": "subscribe" if subscribe else "unsubscribe", "news": sorted(symbols)}]

    def on_item(self, m: Any, out: list[Event]) -> None:
        kind = m["T"]
        if kind == "n":
            headline = news_headline(m, self.timestamps.ms(m["created_at"]))
            # an article re-sent with a later updated_at is the same story: alert once
            if self.recent.seen(headline.id):
                self.duplicates += 1
            else:
                out.append(headline)
        elif kind == "subscription" or kind == "success":
            self.ignored += 1
        elif kind == "error":
            self._stream_error(m)
        else:
            raise UnknownMessage(kind)
