"""Stages 1-6 of the delivery pipeline with their memory, and nothing else: pure, in memory.

`pipeline.decide` judges one transition given what is firing and where its firing went; this
owns that memory — the firing set (inhibition), where each firing was told (its resolve follows
it there and only there), and the open groups — and says what each transition turns into:
messages to send now, groups it joined, what was held back. The router (`router.Router`)
persists each `Routed` in one MULTI/EXEC with the outbox acknowledgement; the backtest keeps it
all in memory on simulated time. One code path, so a backtest's per-channel counts are the
daemon's. The market at each transition's `now_ms` (session, early close, earnings) comes from
its `market_context.MarketContext`, computed once per transition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from daemon.alerts import AlertEvent
from daemon.notify.base import ChannelConfig
from daemon.notify.grouping import Group
from daemon.notify.inhibit import Inhibitor
from daemon.notify.market_context import MarketContext, MarketNow
from daemon.notify.notification import Notification
from daemon.notify.pipeline import Decision, decide
from daemon.notify.route_tree import Route, Target, routing_labels
from daemon.notify.silences import Silence

__all__ = ["Dispatcher", "Routed"]


@dataclass
class Routed:
    """What one transition turned into, and what of the dispatcher's memory it changed."""

    alert: AlertEvent
    decisions: list[Decision]
    #: Sent on their own, now.
    singles: list[Notification] = field(default_factory=list)
    #: Groups the transition joined (sent when they flush).
    touched: list[Group] = field(default_factory=list)
    #: Decisions that deliver nothing (inhibited, quiet, silenced, stale).
    held: list[Decision] = field(default_factory=list)
    #: The firing set: labels set for this key (a firing), or the key removed (a resolve).
    firing_set: dict[str, str] | None = None
    firing_cleared: bool = False
    #: Where this firing went (`told_key` -> channels), or the record dropped (its resolve).
    told_key: str = ""
    told_set: list[str] | None = None
    told_cleared: bool = False


class Dispatcher:
    """The route tree, inhibition, quiet hours, silences and grouping, over a stream of
    transitions in order. `firing` and `told` may be replaced by the caller between
    transitions (the router re-reads them from Redis, which a reload may have changed)."""

    def __init__(
        self,
        root: Route,
        inhibitor: Inhibitor,
        channels: Mapping[str, ChannelConfig],
        max_age_ms: int,
        market: MarketContext | None = None,
    ):
        self.configure(root, inhibitor, channels, max_age_ms)
        #: Sessions and earnings, for routes, silences and quiet hours that ask about them.
        self.market = market if market is not None else MarketContext()
        #: Every alert firing now: key -> routing labels.
        self.firing: dict[str, dict[str, str]] = {}
        #: Where each firing went: `key#seq` -> channels.
        self.told: dict[str, list[str]] = {}
        self.groups: dict[str, Group] = {}

    def configure(
        self,
        root: Route,
        inhibitor: Inhibitor,
        channels: Mapping[str, ChannelConfig],
        max_age_ms: int,
    ) -> None:
        """A new route tree and channel set (a reload); groups keep their state."""
        self.root = root
        self.inhibitor = inhibitor
        self.channels = dict(channels)
        self.max_age_ms = max_age_ms

    def route(
        self,
        alert: AlertEvent,
        now_ms: int,
        *,
        silences: Sequence[Silence] = (),
        born_ms: int | None = None,
    ) -> Routed:
        told_key = f"{alert.key}#{alert.seq}"
        told = self.told.get(told_key, []) if alert.state == "resolved" else None
        market = self.market.at(now_ms)
        decisions = decide(
            alert,
            root=self.root,
            now_ms=now_ms,
            max_age_ms=self.max_age_ms,
            born_ms=born_ms,
            inhibitor=self.inhibitor,
            firing=self.firing,
            silences=silences,
            channels=self.channels,
            told_channels=told,
            market=market,
        )
        out = Routed(alert, decisions, told_key=told_key)
        # the firing set, for inhibition (a firing counts whether or not it was sent); one-shot
        # alerts never resolve, so they would stay "firing" (and muting) forever: not counted
        if alert.resolves and alert.state == "firing":
            out.firing_set = self.firing[alert.key] = routing_labels(alert)
        elif alert.resolves:
            self.firing.pop(alert.key, None)
            self.told.pop(told_key, None)
            out.firing_cleared = out.told_cleared = True
        delivered_to = []
        for d in decisions:
            if d.outcome == "send":
                out.singles.append(Notification.single(alert, d.channel))
                delivered_to.append(d.channel)
            elif d.outcome == "group" and d.target is not None:
                group = self._group(d.target, alert, market)
                group.add(alert, now_ms)
                out.touched.append(group)
                delivered_to.append(d.channel)
            else:
                out.held.append(d)
        if alert.resolves and alert.state == "firing" and alert.repeat == 0 and delivered_to:
            out.told_set = self.told[told_key] = delivered_to
        return out

    def _group(self, target: Target, alert: AlertEvent, market: MarketNow) -> Group:
        gkey = target.group_key(routing_labels(alert, market))
        group = self.groups.get(gkey)
        if group is None:
            group = self.groups[gkey] = Group(gkey, target.channel, target.route.opts)
        return group

    def flush(self, now_ms: int) -> list[tuple[Group, Notification]]:
        """Every group message due by `now_ms`; a group left empty is forgotten."""
        out = []
        for gkey, group in list(self.groups.items()):
            n = group.flush(now_ms)
            if n is None:
                continue
            out.append((group, n))
            if group.empty:
                del self.groups[gkey]
        return out

    def next_due_ms(self) -> int | None:
        due = [d for g in self.groups.values() if (d := g.due_ms()) is not None]
        return min(due) if due else None
