"""The router's Redis: the outbox's consumer side, alert groups, the firing set, told, dead letters.

Every write that follows from one routing decision is one method here, run as one MULTI/EXEC with
the outbox acknowledgement: a crash before EXEC re-reads the entry, after it nothing is done twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from daemon.store.deadletters import DEADLETTER_MAXLEN
from daemon.store.keys import Keys
from daemon.store.leases import Lease, commit
from daemon.store.numbers import AlertNumbers
from daemon.store.streams import Entry, StreamStore

if TYPE_CHECKING:
    from daemon.notify import Group, Notification, Routed

__all__ = ["OutboxStore"]


class OutboxStore:
    """What the router reads and writes; `maxlen` caps the channels' delivery streams."""

    def __init__(self, redis: Redis, keys: Keys, maxlen: int = 1_000_000):
        self.redis = redis
        self.keys = keys
        self.maxlen = maxlen
        self._streams = StreamStore(redis, keys, maxlen)
        #: The desk's short numbers, given to firings as they are routed.
        self.numbers = AlertNumbers(redis, keys)
        #: The primary lease, when several instances share this Redis: commits run under it.
        self.lease: Lease | None = None

    # --- reads ------------------------------------------------------------------------------
    async def ensure_group(self) -> None:
        """The router's group on the outbox (and the stream), created once, kept after."""
        await self._streams.ensure_group(self.keys.outbox, self.keys.NOTIFY_GROUP)

    async def read(
        self, consumer: str, *, count: int, block_ms: int | None, pending: bool = False
    ) -> list[Entry]:
        """New transitions (or, with `pending`, the ones read before a crash, never acked)."""
        k = self.keys
        return await self._streams.read_group(
            (k.outbox,), k.NOTIFY_GROUP, consumer, count=count, block_ms=block_ms, pending=pending
        )

    async def groups(self) -> dict[str, str]:
        """Every open alert group, group key → JSON: the router's groups after a restart."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.groups)  # type: ignore[misc]
        return raw

    async def firing(self) -> dict[str, dict[str, str]]:
        """Alert key → routing labels of every alert firing now; re-read per batch, because a
        reload drops the alerts of changed and removed rules there."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.firing)  # type: ignore[misc]
        return {key: json.loads(v) for key, v in raw.items()}

    async def told(self, told_key: str) -> list[str]:
        """The channels a firing (`key#seq`) went to, where its resolve must go; [] if none."""
        raw = await self.redis.hget(self.keys.told, told_key)  # type: ignore[misc]
        return raw.split(",") if raw else []

    # --- commits (one MULTI/EXEC each) ------------------------------------------------------
    async def dead_letter(self, entry_id: str, fields: Mapping[str, str]) -> None:
        """An outbox entry that cannot be routed: to the dead letters and acked, together."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(k.deadletter, dict(fields), maxlen=DEADLETTER_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.xack(k.outbox, k.NOTIFY_GROUP, entry_id)
        await pipe.execute()

    async def commit(self, entry_id: str, r: Routed) -> None:
        """Everything one routed transition implies, with its outbox ack: the firing set and
        told record, the messages sent now, counts of what was held back, the groups it joined."""
        k = self.keys

        def build(pipe: Pipeline) -> None:
            if r.firing_set is not None:
                pipe.hset(k.firing, r.alert.key, json.dumps(r.firing_set, sort_keys=True))
            if r.firing_cleared:
                pipe.hdel(k.firing, r.alert.key)
            if r.told_cleared:
                pipe.hdel(k.told, r.told_key)
            if r.told_set is not None:
                pipe.hset(k.told, r.told_key, ",".join(r.told_set))
            for n in r.singles:
                self._append(pipe, n)
            for d in r.held:
                pipe.hincrby(k.suppressed, f"{d.outcome}:{d.channel}", 1)
            for group in r.touched:
                pipe.hset(k.groups, group.key, group.to_json())
            pipe.xack(k.outbox, k.NOTIFY_GROUP, entry_id)

        await commit(self.redis, self.lease, build)

    async def flushed(self, group: Group, n: Notification) -> None:
        """A group's message queued with the group's new state (or its removal, when empty)."""
        pipe = self.redis.pipeline(transaction=True)
        self._append(pipe, n)
        if group.empty:
            pipe.hdel(self.keys.groups, group.key)
        else:
            pipe.hset(self.keys.groups, group.key, group.to_json())
        await pipe.execute()

    async def append(self, notifications: Iterable[Notification]) -> None:
        """Messages of the router's own (catch-up notices) queued together."""
        pipe = self.redis.pipeline(transaction=True)
        for n in notifications:
            self._append(pipe, n)
        await pipe.execute()

    def _append(self, pipe: Pipeline, n: Notification) -> None:
        pipe.xadd(
            self.keys.deliver(n.channel), {"n": n.to_json()}, maxlen=self.maxlen, approximate=True
        )
