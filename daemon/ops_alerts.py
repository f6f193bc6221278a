"""The daemon's alerts about itself (Redis, a source, a channel, a refused reload) to ops_channels.

Each is numbered into the outbox (`OpsStore.add_ops_alert`) for the ops channels that are on,
never the one that is failing, and dropped quietly while Redis is down or before it is reached.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from daemon.alerts import AlertEvent
from daemon.reload import component_alert, ops_alert
from daemon.store import REDIS_DOWN

if TYPE_CHECKING:
    from daemon.app import Daemon

__all__ = ["OpsAlerts"]

log = logging.getLogger("tickwatch")


class OpsAlerts:
    """The ops alerts of one daemon: its config names the ops channels, its notifiers say which
    are on, its `ops_store` numbers them (all read when an alert is raised: a reload changes
    them)."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon

    async def redis(self, summary: str, labels: Mapping[str, str]) -> None:
        log.warning("ops alert: %s", summary)
        await self._ops(
            lambda seq, channels: component_alert("redis", summary, labels, seq, channels)
        )

    async def config_refused(self, problems: list[str]) -> None:
        await self._ops(lambda seq, channels: ops_alert(problems, seq, channels))

    async def source(self, summary: str, labels: Mapping[str, str]) -> None:
        log.warning("ops alert: %s", summary)
        await self._ops(
            lambda seq, channels: component_alert("source", summary, labels, seq, channels)
        )

    async def delivery(self, failing: str, summary: str, labels: Mapping[str, str]) -> None:
        """A channel failed for good: tell the other ops channels (never the failing one)."""
        await self._ops(
            lambda seq, channels: component_alert("delivery", summary, labels, seq, channels),
            exclude=failing,
        )

    async def _ops(self, make: Callable[[int, list[str]], AlertEvent], exclude: str = "") -> None:
        """Number an ops alert and put it in the outbox for the ops channels."""
        d = self.daemon
        channels = [c for c in d.cfg.settings.ops_channels if c in d.notifiers and c != exclude]
        if not channels or d.ops_store is None:
            return
        with contextlib.suppress(*REDIS_DOWN):
            await d.ops_store.add_ops_alert(lambda seq: make(seq, channels))
