"""The router: outbox → one delivery stream per channel, through `dispatch.Dispatcher`.

It reads alert transitions through the outbox's consumer group and, for each, commits in one
MULTI/EXEC everything the decision implies: notifications appended to the channels' delivery
streams, group state, the firing set (inhibition), where a firing went (its resolve follows),
counters of what was held back, and the outbox acknowledgement. A crash before EXEC re-reads the
entry; after it, nothing is done twice. Groups are flushed by the same loop when due.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from daemon.alerts import NEW_YORK, AlertEvent
from daemon.events import ms_to_dt
from daemon.notify.base import ChannelConfig, Notification
from daemon.notify.dispatch import Dispatcher
from daemon.notify.grouping import Group
from daemon.notify.inhibit import Inhibitor
from daemon.notify.pipeline import Decision
from daemon.notify.routing import GroupOpts, Route
from daemon.notify.silences import Silence, SilenceStore
from daemon.store.keys import Keys
from daemon.store.streams import Entry, StreamStore

__all__ = ["Router", "RouterStats"]

log = logging.getLogger("tickwatch.notify")
#: Options for a stored group whose route no longer groups (a reload): flush it at once.
_FLUSH_NOW = GroupOpts(group_by=("...",))


@dataclass
class RouterStats:
    routed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class _CatchUp:
    """Transitions skipped as too old during one catch-up, per channel, for the summary."""

    count: int = 0
    first_ms: int = 0
    last_ms: int = 0
    rules: set[str] = field(default_factory=set)


class Router:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        root: Route,
        inhibitor: Inhibitor,
        channels: Mapping[str, ChannelConfig],
        max_age_ms: int = 15 * 60_000,
        data_clock: bool = False,
        consumer: str = "router-1",
        maxlen: int = 1_000_000,
    ):
        self.redis = redis
        self.keys = keys
        self.store = StreamStore(redis, keys, maxlen)
        self.silences = SilenceStore(redis, keys)
        self.consumer = consumer
        self.maxlen = maxlen
        self.stats = RouterStats()
        self.idle = asyncio.Event()
        #: The pure part (firing set, where firings went, groups); this class persists it.
        self.dispatch = Dispatcher(root, inhibitor, channels, max_age_ms)
        #: Replays run on their own clock: their alerts' event times are history by design, so
        #: an alert's age then counts only from when it was queued (`_born_ms`).
        self.data_clock = data_clock
        self._catchup: dict[str, _CatchUp] = {}
        self._catchup_first = ""

    def configure(
        self,
        root: Route,
        inhibitor: Inhibitor,
        channels: Mapping[str, ChannelConfig],
        max_age_ms: int,
    ) -> None:
        """Swap in a new route tree and channel set (a reload); groups keep their state."""
        self.dispatch.configure(root, inhibitor, channels, max_age_ms)

    @property
    def max_age_ms(self) -> int:
        return self.dispatch.max_age_ms

    # --- main loop ----------------------------------------------------------------------
    async def restore(self) -> None:
        k = self.keys
        await self.store.ensure_group(k.outbox, k.NOTIFY_GROUP)
        groups = self.dispatch.groups = {}  # (the firing set is re-read for every batch)
        for gkey, text in (await self.redis.hgetall(k.groups)).items():  # type: ignore[misc]
            group = self._load_group(gkey, text)
            if group is not None:
                groups[gkey] = group

    def _load_group(self, gkey: str, text: str) -> Group | None:
        """A stored group with its route's current options (a reload may have changed them)."""
        _channel, path, _ = gkey.split("|", 2)
        route = _find(self.dispatch.root, path)
        if route is None or not route.opts.grouped:
            route = None
        try:
            return Group.from_json(text, route.opts if route else _FLUSH_NOW)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("dropping unreadable alert group %s: %r", gkey, e)
            return None

    async def run(self) -> None:
        await self.restore()
        k = self.keys
        while True:  # first, what was read before a crash and never acknowledged
            entries = await self.store.read_group(
                (k.outbox,), k.NOTIFY_GROUP, self.consumer, count=100, block_ms=None, pending=True
            )
            if not entries:
                break
            await self.route_entries(entries)
        while True:
            await self.flush_groups()
            entries = await self.store.read_group(
                (k.outbox,), k.NOTIFY_GROUP, self.consumer, count=100, block_ms=_block_ms(self)
            )
            if entries:
                self.idle.clear()
                await self.route_entries(entries)
            else:
                await self._end_catchup()
                self.idle.set()

    async def route_entries(self, entries: list[Entry]) -> None:
        silences = await self.silences.active(int(time.time() * 1000))
        # re-read the firing set: a reload drops the alerts of changed and removed rules there
        raw: dict[str, str] = await self.redis.hgetall(self.keys.firing)  # type: ignore[misc]
        self.dispatch.firing = {key: json.loads(v) for key, v in raw.items()}
        for entry_id, fields in ((e[1], e[2]) for e in entries):
            await self.route_entry(entry_id, fields, silences=silences)

    async def route_entry(
        self,
        entry_id: str,
        fields: Mapping[str, str],
        *,
        silences: list[Silence] | None = None,
        now_ms: int | None = None,
    ) -> list[Decision]:
        k = self.keys
        now = int(time.time() * 1000) if now_ms is None else now_ms
        pipe = self.redis.pipeline(transaction=True)
        try:
            alert = AlertEvent.from_json(fields["alert"])
        except (KeyError, ValueError, TypeError) as e:
            log.error("outbox entry %s is malformed (%r); moved to dead letters", entry_id, e)
            dead = {"alert": fields.get("alert", ""), "channel": "-", "reason": f"malformed: {e!r}",
                    "entry": entry_id}  # fmt: skip
            pipe.xadd(k.deadletter, dead, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
            pipe.xack(k.outbox, k.NOTIFY_GROUP, entry_id)
            await pipe.execute()
            return []
        if silences is None:
            silences = await self.silences.active(now)
        dispatch = self.dispatch
        told_key = f"{alert.key}#{alert.seq}"
        if alert.state == "resolved":  # where its firing went is in Redis (a restart between)
            raw = await self.redis.hget(k.told, told_key)  # type: ignore[misc]
            dispatch.told = {told_key: raw.split(",")} if raw else {}
        r = dispatch.route(alert, now, silences=silences, born_ms=self._born_ms(alert, entry_id))
        if r.firing_set is not None:
            pipe.hset(k.firing, alert.key, json.dumps(r.firing_set, sort_keys=True))
        if r.firing_cleared:
            pipe.hdel(k.firing, alert.key)
        if r.told_cleared:
            pipe.hdel(k.told, told_key)
        if r.told_set is not None:
            pipe.hset(k.told, told_key, ",".join(r.told_set))
        dispatch.told = {}  # Redis holds it; memory would only grow
        for d in r.decisions:
            self.stats.outcomes[d.outcome] += 1
        for n in r.singles:
            self._append(pipe, n)
        for d in r.held:
            pipe.hincrby(k.suppressed, f"{d.outcome}:{d.channel}", 1)
            if d.outcome == "stale":
                self._skipped(d.channel, alert, entry_id)
            else:
                log.info("%s not sent to %s: %s", alert.id, d.channel, d.why)
        for group in r.touched:
            pipe.hset(k.groups, group.key, group.to_json())
        decisions = r.decisions
        pipe.xack(k.outbox, k.NOTIFY_GROUP, entry_id)
        await pipe.execute()
        self.stats.routed += 1
        if not any(d.outcome == "stale" for d in decisions):
            await self._end_catchup()
        return decisions

    def _born_ms(self, alert: AlertEvent, entry_id: str) -> int:
        """When an alert's age starts: when it entered the outbox (a backlog left by a crash),
        or, on live data, its event time if older (ticks evaluated late, after downtime)."""
        try:
            queued = int(entry_id.split("-")[0])
        except ValueError:
            queued = alert.ts_ms
        return queued if self.data_clock else min(queued, alert.ts_ms)

    def _append(self, pipe: Pipeline, n: Notification) -> None:
        pipe.xadd(
            self.keys.deliver(n.channel), {"n": n.to_json()}, maxlen=self.maxlen, approximate=True
        )

    async def flush_groups(self, now_ms: int | None = None) -> int:
        """Send every group whose time has come; returns how many messages were queued."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        sent = 0
        for group, n in self.dispatch.flush(now):
            pipe = self.redis.pipeline(transaction=True)
            self._append(pipe, n)
            if group.empty:
                pipe.hdel(self.keys.groups, group.key)
            else:
                pipe.hset(self.keys.groups, group.key, group.to_json())
            await pipe.execute()
            sent += 1
        return sent

    def next_due_ms(self) -> int | None:
        return self.dispatch.next_due_ms()

    # --- bounded catch-up -------------------------------------------------------------------
    def _skipped(self, channel: str, alert: AlertEvent, entry_id: str) -> None:
        c = self._catchup.setdefault(channel, _CatchUp(first_ms=alert.ts_ms))
        self._catchup_first = self._catchup_first or entry_id
        c.count += 1
        c.first_ms = min(c.first_ms, alert.ts_ms)
        c.last_ms = max(c.last_ms, alert.ts_ms)
        c.rules.add(alert.rule)

    async def _end_catchup(self) -> None:
        """Caught up: one notice per channel saying what was recorded and not sent."""
        if not self._catchup:
            return
        pipe = self.redis.pipeline(transaction=True)
        for channel, c in sorted(self._catchup.items()):
            rules = ", ".join(sorted(c.rules)[:5]) + (" ..." if len(c.rules) > 5 else "")
            text = (
                f"tickwatch caught up after a delay: {c.count} alert(s) from "
                f"{_ny(c.first_ms)} to {_ny(c.last_ms)} were older than "
                f"{self.max_age_ms / 60_000:g} min and were recorded, not sent ({rules})"
            )
            log.warning("%s: %s", channel, text)
            notice = Notification(
                channel=channel,
                key=f"catchup:{self._catchup_first}",
                kind="notice",
                text=text,
            )
            self._append(pipe, notice)
        await pipe.execute()
        self._catchup.clear()
        self._catchup_first = ""


def _ny(ms: int) -> str:
    return ms_to_dt(ms).astimezone(NEW_YORK).strftime("%m-%d %H:%M ET")


def _find(root: Route, path: str) -> Route | None:
    if root.path == path:
        return root
    for child in root.children:
        if path == child.path or path.startswith(child.path + "."):
            found = _find(child, path)
            if found is not None:
                return found
    return None


def _block_ms(router: Router) -> int:
    """Wait for new alerts no longer than until the next group is due (at most 200 ms)."""
    due = router.next_due_ms()
    if due is None:
        return 200
    return max(1, min(200, due - int(time.time() * 1000)))
