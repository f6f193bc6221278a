"""Delivery as a whole: the router and one worker per channel, built from the config.

The daemon runs each of these as its own task (`stages`), so one channel's trouble stays its own
(a channel waiting out a long `Retry-After` holds only its own queue); a reload swaps the route
tree and the channel set without losing a queued message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from daemon.notify.acks import AckBook
from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.channel_worker import STOP_GRACE_S, ChannelWorker, OpsAlert
from daemon.notify.delivery_settings import DeliverySettings
from daemon.notify.escalator import Escalator
from daemon.notify.inhibit import Inhibitor
from daemon.notify.retry import Clock, RetryPolicy
from daemon.notify.route_tree import compile_routes
from daemon.notify.router import Router
from daemon.notify.silence_book import SilenceStore
from daemon.store import Client, DeliveryStore, EscalationStore, Keys, OutboxStore

__all__ = ["Delivery"]

log = logging.getLogger("tickwatch.notify")


class Delivery:
    """The router and the channel workers, on stores built here from the daemon's client."""

    def __init__(
        self,
        redis: Client,
        keys: Keys,
        settings: DeliverySettings,
        notifiers: Mapping[str, Notifier],
        *,
        instance: str = "1",
        policy: RetryPolicy | None = None,
        ops: Callable[[str, str, Mapping[str, str]], Awaitable[None]] | None = None,
        maxlen: int = 1_000_000,
        claim_idle_ms: int = 60_000,
        clock: Clock | None = None,
    ):
        self.redis = redis
        self.keys = keys
        self.instance = instance
        #: a policy passed in (tests, benches) is kept as is; else it follows the settings
        self._own_policy = policy is None
        self.policy = policy or RetryPolicy(give_up_after=settings.give_up_after.total_seconds())
        self.ops = ops
        self.claim_idle_ms = claim_idle_ms
        self.clock = clock
        self.router = Router(
            OutboxStore(redis, keys, maxlen),
            SilenceStore(redis, keys),
            root=compile_routes(settings.route),
            inhibitor=Inhibitor(settings.inhibit_rules),
            channels=settings.channels,
            max_age_ms=settings.max_alert_age_ms,
            data_clock=settings.data_clock,
            earnings=settings.earnings,
            consumer="router-1",  # one at a time (the primary): a takeover resumes its reads
        )
        self.escalator = Escalator(
            EscalationStore(redis, keys, maxlen),
            AckBook(redis, keys),
            SilenceStore(redis, keys),
            settings.escalations,
            root=compile_routes(settings.route),
            earnings=settings.earnings,
            max_age_ms=settings.max_alert_age_ms,
            consumer="escalator-1",  # likewise
        )
        self.workers: dict[str, ChannelWorker] = {}
        self.set_notifiers(notifiers, settings.channels)

    def _ops_for(self, channel: str) -> OpsAlert | None:
        ops = self.ops
        if ops is None:
            return None

        async def tell(summary: str, labels: Mapping[str, str]) -> None:
            await ops(channel, summary, labels)

        return tell

    def set_notifiers(
        self, notifiers: Mapping[str, Notifier], channels: Mapping[str, ChannelConfig]
    ) -> list[ChannelWorker]:
        """Workers for the channels that can send; returns the ones that are new (to start)."""
        new = []
        for name, notifier in notifiers.items():
            cap = channels[name].daily_cap if name in channels else None
            w = self.workers.get(name)
            if w is not None:
                w.notifier, w.daily_cap = notifier, cap
                continue
            w = self.workers[name] = ChannelWorker(
                DeliveryStore(self.redis, self.keys, name, consumer=f"worker-{self.instance}"),
                notifier, policy=self.policy, daily_cap=cap,
                ops=self._ops_for(name), claim_idle_ms=self.claim_idle_ms, clock=self.clock,
            )  # fmt: skip
            new.append(w)
        return new

    def reconfigure(self, settings: DeliverySettings) -> None:
        if self._own_policy:
            self.policy = replace(self.policy, give_up_after=settings.give_up_after.total_seconds())
            for w in self.workers.values():
                w.policy = self.policy
        self.router.configure(
            compile_routes(settings.route),
            Inhibitor(settings.inhibit_rules),
            settings.channels,
            settings.max_alert_age_ms,
        )
        self.router.set_earnings(settings.earnings)
        self.escalator.configure(settings.escalations, settings.max_alert_age_ms,
                                 compile_routes(settings.route), settings.earnings)  # fmt: skip

    def stages(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """(task name, loop) for the router, the escalator and every channel worker."""
        out: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("router", self.router.run),
            ("escalator", self.escalator.run),
        ]
        out += [(f"deliver {name}", w.run) for name, w in self.workers.items()]
        return out

    def stop_taking(self) -> None:
        """No channel begins another send (the daemon is stopping); those under way go on."""
        for w in self.workers.values():
            w.stop_taking()

    async def finish(self, timeout: float = STOP_GRACE_S) -> None:
        """Let every channel finish the message under way (no duplicate after a restart).

        All channels at once, so the grace is `timeout` in all (not per channel); none begins a
        new send meanwhile. A send still under way after it is cut off when the daemon stops.
        """
        self.stop_taking()
        busy = [w.channel for w in self.workers.values() if w.in_flight]
        if busy:
            log.info(
                "stopping: %d send(s) under way (%s) get up to %gs to finish",
                len(busy), ", ".join(busy), timeout,
            )  # fmt: skip
        await asyncio.gather(*(w.finish(timeout) for w in self.workers.values()))

    @property
    def sent(self) -> dict[str, int]:
        return {name: w.stats.sent for name, w in self.workers.items()}

    @property
    def dead(self) -> int:
        return sum(w.stats.dead for w in self.workers.values())

    @property
    def skipped_duplicate(self) -> int:
        return sum(w.stats.skipped_duplicate for w in self.workers.values())

    @property
    def in_flight(self) -> int:
        return sum(w.in_flight for w in self.workers.values())
