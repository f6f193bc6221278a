"""Delivery as a whole: the router and one worker per channel, built from the config.

The daemon runs each of these as its own task (`stages`), so one channel's trouble stays its own;
a reload swaps the route tree and the channel set without losing a queued message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.inhibit import Inhibitor, InhibitRule
from daemon.notify.router import Router
from daemon.notify.routing import RouteConfig, compile_routes
from daemon.notify.worker import ChannelWorker, OpsAlert, RetryPolicy
from daemon.store.keys import Keys

__all__ = ["Delivery", "DeliverySettings"]


@dataclass(frozen=True)
class DeliverySettings:
    """What the config says about delivery (parsed in `daemon.config`)."""

    route: RouteConfig | None
    inhibit_rules: list[InhibitRule]
    max_alert_age_ms: int
    channels: Mapping[str, ChannelConfig]
    #: Only replays feed the daemon: alert ages count against the newest event time.
    data_clock: bool = False


class Delivery:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: DeliverySettings,
        notifiers: Mapping[str, Notifier],
        *,
        instance: str = "1",
        policy: RetryPolicy | None = None,
        ops: Callable[[str, str, Mapping[str, str]], Awaitable[None]] | None = None,
        maxlen: int = 1_000_000,
        claim_idle_ms: int = 60_000,
    ):
        self.redis = redis
        self.keys = keys
        self.instance = instance
        self.policy = policy or RetryPolicy()
        self.ops = ops
        self.claim_idle_ms = claim_idle_ms
        self.router = Router(
            redis,
            keys,
            root=compile_routes(settings.route),
            inhibitor=Inhibitor(settings.inhibit_rules),
            channels=settings.channels,
            max_age_ms=settings.max_alert_age_ms,
            data_clock=settings.data_clock,
            consumer=f"router-{instance}",
            maxlen=maxlen,
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
                self.redis, self.keys, name, notifier,
                consumer=f"worker-{self.instance}", policy=self.policy, daily_cap=cap,
                ops=self._ops_for(name), claim_idle_ms=self.claim_idle_ms,
            )  # fmt: skip
            new.append(w)
        return new

    def reconfigure(self, settings: DeliverySettings) -> None:
        self.router.configure(
            compile_routes(settings.route),
            Inhibitor(settings.inhibit_rules),
            settings.channels,
            settings.max_alert_age_ms,
        )

    def stages(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """(task name, loop) for the router and every channel worker."""
        out: list[tuple[str, Callable[[], Awaitable[None]]]] = [("router", self.router.run)]
        out += [(f"deliver {name}", w.run) for name, w in self.workers.items()]
        return out

    async def finish(self, timeout: float = 10.0) -> None:
        """Let every channel finish the message under way (no duplicate after a restart)."""
        for w in self.workers.values():
            await w.finish(timeout)

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
