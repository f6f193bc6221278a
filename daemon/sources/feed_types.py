"""What websocket adapters are written in: the feed config, its errors, handshake steps, quotes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, NamedTuple

from pydantic import Field, field_validator

from daemon.durations import Duration
from daemon.events import Headline, Tick
from daemon.sources.arbiter import WILDCARD
from daemon.sources.source_config import SourceConfig

__all__ = [
    "Event",
    "FeedConfig",
    "FeedError",
    "FeedState",
    "SessionConflict",
    "Step",
    "UnknownMessage",
    "quote_tick",
]

FeedState = Literal["idle", "connecting", "authenticating", "connected", "backoff", "failed",
                    "stopped"]  # fmt: skip
Event = Tick | Headline


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
