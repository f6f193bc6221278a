"""Finnhub trades websocket (PROTOCOLS.md §3.1).

The token travels in the query string, so the URL is a secret: it is only ever logged redacted,
and websockets' own logger is wrapped by the feed base for the same reason. There is no auth
message and no subscribe acknowledgement; a wrong token is refused at the upgrade (HTTP 401).
Frames are single JSON objects; `ping` frames keep an idle connection open and carry no data.
Trades carry no id, so two identical prints in one millisecond are both kept (they are real).
"""

from __future__ import annotations

import logging
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator

from daemon.events import Tick
from daemon.sources.arbiter import WILDCARD
from daemon.sources.feed import Event, FeedConfig, FeedSource, UnknownMessage

__all__ = ["FinnhubConfig", "FinnhubSource"]

log = logging.getLogger("tickwatch.sources.finnhub")
URL = "wss://ws.finnhub.io"


class FinnhubConfig(FeedConfig):
    type: Literal["finnhub"]
    token: SecretStr = Field(description="API key, e.g. ${FINNHUB_API_KEY}")

    @field_validator("symbols")
    @classmethod
    def _no_wildcard(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and WILDCARD in v:
            raise ValueError("Finnhub subscribes symbol by symbol: list them, '*' is not offered")
        return v


class FinnhubSource(FeedSource):
    kind = "finnhub"
    config_model = FinnhubConfig
    config: FinnhubConfig
    provider = "Finnhub"
    env_hint = "FINNHUB_API_KEY"

    def endpoint(self) -> str:
        base = self.config.url or URL
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}token={quote(self.config.token.get_secret_value(), safe='')}"

    def secrets(self) -> dict[str, SecretStr]:
        return {"token": self.config.token}

    def redact(self, text: str) -> str:
        # the token also appears URL-quoted in the endpoint
        quoted = quote(self.config.token.get_secret_value(), safe="")
        text = super().redact(text)
        return text.replace(quoted, "***") if len(quoted) >= 4 else text

    def subscribe_messages(self, symbols: frozenset[str], subscribe: bool) -> list[dict[str, Any]]:
        action = "subscribe" if subscribe else "unsubscribe"
        return [{"type": action, "symbol": s} for s in sorted(symbols)]

    def on_item(self, m: Any, out: list[Event]) -> None:
        kind = m["type"]
        if kind == "trade":
            name = self.name
            for d in m["data"]:
                out.append(
                    Tick(d["s"], int(d["t"]), float(d["p"]), float(d["v"]), None, None,
                         "trade", name)
                )  # fmt: skip
        elif kind == "ping":
            pass
        elif kind == "error":
            msg = self.redact(str(m.get("msg", "")))[:200]
            self.note_error(f"server error: {msg}")
            self.ops_once("server_error", f"source {self.name}: Finnhub says: {msg}", key=msg)
        elif kind in ("news", "pr"):
            self.ignored += 1
        else:
            raise UnknownMessage(str(kind))
