"""The router: outbox → one delivery stream per channel, through `dispatch.Dispatcher`.

It reads alert transitions through the outbox's consumer group and, for each, commits in one
MULTI/EXEC everything the decision implies: notifications appended to the channels' delivery
streams, group state, the firing set (inhibition), where a firing went (its resolve follows),
counters of what was held back, and the outbox acknowledgement. A crash before EXEC re-reads the
entry; after it, nothing is done twice. Groups are flushed by the same loop when due. Every read
and write is `store.outbox.OutboxStore`'s; this class decides, the store persists.

Routes may ask about earnings (`earnings: within 1d`): the dispatcher's market context holds the
config's reports merged with what calendar sources wrote to Redis (`store.CalendarStore`), read
again at most once a minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from daemon.alerts import NEW_YORK, AlertEvent
from daemon.events import EarningsEvent, ms_to_dt
from daemon.notify.base import ChannelConfig
from daemon.notify.dispatch import Dispatcher
from daemon.notify.grouping import Group
from daemon.notify.inhibit import Inhibitor
from daemon.notify.market_context import MarketContext
from daemon.notify.notification import Notification
from daemon.notify.pipeline import Decision
from daemon.notify.route_tree import GroupOpts, Route, find_route
from daemon.notify.silence_book import SilenceStore
from daemon.notify.silences import Silence
from daemon.store import CalendarStore, Entry, OutboxStore

__all__ = ["Router", "RouterStats"]

log = logging.getLogger("tickwatch.notify")
#: Options for a stored group whose route no longer groups (a reload): flush it at once.
_FLUSH_NOW = GroupOpts(group_by=("...",))
#: How often the earnings calendar in Redis is read again (seconds, wall clock).
CALENDAR_REFRESH_S = 60.0


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
        outbox: OutboxStore,
        silences: SilenceStore,
        *,
        root: Route,
        inhibitor: Inhibitor,
        channels: Mapping[str, ChannelConfig],
        max_age_ms: int = 15 * 60_000,
        data_clock: bool = False,
        consumer: str = "router-1",
        earnings: Iterable[EarningsEvent] = (),
        calendar: CalendarStore | None = None,
    ):
        #: Every read and write of the router's (the MULTI/EXEC commits included).
        self.outbox = outbox
        self.silences = silences
        self.consumer = consumer
        self.stats = RouterStats()
        self.idle = asyncio.Event()
        #: The pure part (firing set, where firings went, groups); this class persists it.
        self.dispatch = Dispatcher(root, inhibitor, channels, max_age_ms, MarketContext(earnings))
        #: The config's earnings (the CSV); Redis's calendar is merged in (`refresh_earnings`).
        self.earnings = list(earnings)
        self.calendar = calendar or CalendarStore(outbox.redis, outbox.keys)
        self._calendar_read_at: float | None = None
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

    def set_earnings(self, earnings: Iterable[EarningsEvent]) -> None:
        """The config's earnings changed (a reload); Redis's are merged in again at once."""
        self.earnings = list(earnings)
        self._calendar_read_at = None

    async def refresh_earnings(self, force: bool = False) -> None:
        """Merge the calendar sources' reports from Redis with the config's, at most once per
        `CALENDAR_REFRESH_S` (the lookup then costs nothing per alert)."""
        wall = time.monotonic()
        read_at = self._calendar_read_at
        if not force and read_at is not None and wall - read_at < CALENDAR_REFRESH_S:
            return
        self._calendar_read_at = wall
        from daemon.sources import load_earnings, merge_earnings  # the parser of its JSON

        fetched = await load_earnings(self.calendar)
        merged = merge_earnings(self.earnings, fetched) if fetched else self.earnings
        if self.dispatch.market.set_earnings(merged):
            log.info("routing: %d earnings report(s) known", len(merged))

    @property
    def max_age_ms(self) -> int:
        return self.dispatch.max_age_ms

    # --- main loop ----------------------------------------------------------------------
    async def restore(self) -> None:
        await self.outbox.ensure_group()
        groups = self.dispatch.groups = {}  # (the firing set is re-read for every batch)
        for gkey, text in (await self.outbox.groups()).items():
            group = self._load_group(gkey, text)
            if group is not None:
                groups[gkey] = group

    def _load_group(self, gkey: str, text: str) -> Group | None:
        """A stored group with its route's current options (a reload may have changed them)."""
        _channel, path, _ = gkey.split("|", 2)
        route = find_route(self.dispatch.root, path)
        if route is None or not route.opts.grouped:
            route = None
        try:
            return Group.from_json(text, route.opts if route else _FLUSH_NOW)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("dropping unreadable alert group %s: %r", gkey, e)
            return None

    async def run(self) -> None:
        await self.restore()
        while True:  # first, what was read before a crash and never acknowledged
            entries = await self.outbox.read(self.consumer, count=100, block_ms=None, pending=True)
            if not entries:
                break
            await self.route_entries(entries)
        while True:
            await self.flush_groups()
            entries = await self.outbox.read(self.consumer, count=100, block_ms=_block_ms(self))
            if entries:
                self.idle.clear()
                await self.route_entries(entries)
            else:
                await self._end_catchup()
                self.idle.set()

    async def route_entries(self, entries: list[Entry]) -> None:
        silences = await self.silences.active(int(time.time() * 1000))
        # re-read the firing set: a reload drops the alerts of changed and removed rules there
        self.dispatch.firing = await self.outbox.firing()
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
        now = int(time.time() * 1000) if now_ms is None else now_ms
        try:
            alert = AlertEvent.from_json(fields["alert"])
        except (KeyError, ValueError, TypeError) as e:
            log.error("outbox entry %s is malformed (%r); moved to dead letters", entry_id, e)
            dead = {"alert": fields.get("alert", ""), "channel": "-", "reason": f"malformed: {e!r}",
                    "entry": entry_id}  # fmt: skip
            await self.outbox.dead_letter(entry_id, dead)
            return []
        if silences is None:
            silences = await self.silences.active(now)
        await self.refresh_earnings()
        dispatch = self.dispatch
        told_key = f"{alert.key}#{alert.seq}"
        first = alert.state == "firing" and alert.repeat == 0  # a firing gets its number
        number = await self.outbox.numbers.number(told_key, assign=first)
        if number:
            alert = replace(alert, number=number)
        if alert.state == "resolved":  # where its firing went is in Redis (a restart between)
            told = await self.outbox.told(told_key)
            dispatch.told = {told_key: told} if told else {}
        r = dispatch.route(alert, now, silences=silences, born_ms=self._born_ms(alert, entry_id))
        dispatch.told = {}  # Redis holds it; memory would only grow
        for d in r.decisions:
            self.stats.outcomes[d.outcome] += 1
        for d in r.held:
            if d.outcome == "stale":
                self._skipped(d.channel, alert, entry_id)
            else:
                log.info("%s not sent to %s: %s", alert.id, d.channel, d.why)
        decisions = r.decisions
        await self.outbox.commit(entry_id, r)  # one MULTI/EXEC, with the outbox ack
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

    async def flush_groups(self, now_ms: int | None = None) -> int:
        """Send every group whose time has come; returns how many messages were queued."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        sent = 0
        for group, n in self.dispatch.flush(now):
            await self.outbox.flushed(group, n)
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
        notices = []
        for channel, c in sorted(self._catchup.items()):
            rules = ", ".join(sorted(c.rules)[:5]) + (" ..." if len(c.rules) > 5 else "")
            text = (
                f"tickwatch caught up after a delay: {c.count} alert(s) from "
                f"{_ny(c.first_ms)} to {_ny(c.last_ms)} were older than "
                f"{self.max_age_ms / 60_000:g} min and were recorded, not sent ({rules})"
            )
            log.warning("%s: %s", channel, text)
            notices.append(
                Notification(
                    channel=channel,
                    key=f"catchup:{self._catchup_first}",
                    kind="notice",
                    text=text,
                )
            )
        await self.outbox.append(notices)
        self._catchup.clear()
        self._catchup_first = ""


def _ny(ms: int) -> str:
    return ms_to_dt(ms).astimezone(NEW_YORK).strftime("%m-%d %H:%M ET")


def _block_ms(router: Router) -> int:
    """Wait for new alerts no longer than until the next group is due (at most 200 ms)."""
    due = router.next_due_ms()
    if due is None:
        return 200
    return max(1, min(200, due - int(time.time() * 1000)))
