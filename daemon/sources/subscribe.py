"""A live feed's subscription: the symbols rules need, narrowed by config, sent whole or diffed."""

from __future__ import annotations

import asyncio
import json
import logging
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from daemon.sources.arbiter import WILDCARD
from daemon.sources.base import Source
from daemon.sources.feed_types import FeedConfig

__all__ = ["FeedSubscriptions"]

log = logging.getLogger("tickwatch.sources.feed")


class FeedSubscriptions(Source):
    """The subscription half of `FeedSource`, which sets this state up and opens sessions."""

    config: FeedConfig
    _wanted: frozenset[str]  # what the rules need, narrowed by `symbols:`
    _subscribed: frozenset[str] | None  # what the server has; None = no session
    _ws: ClientConnection | None  # authenticated and subscribed
    _sub_lock: asyncio.Lock

    @abstractmethod
    def subscribe_messages(self, symbols: frozenset[str], subscribe: bool) -> list[dict[str, Any]]:
        """See `FeedSource.subscribe_messages`."""

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
