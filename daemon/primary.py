"""Which daemon is the primary among several on one Redis: stand by, take over, keep, hand over.

One instance at a time holds the primary lease (`daemon.store.Lease`) and runs everything (the
sources, the rules, routing, delivery, escalation); the others wait, serving only HTTP, and
take over within `LEASE_TTL_MS` of it dying (at once when it stops cleanly). Each instance says
every few seconds what it is (`InstanceRoster`), for `tickwatch status`. Losing the lease (a
pause past its TTL while another took over) stops the daemon: its fenced commits would be
refused anyway, and a restart makes it a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from daemon.store import REDIS_DOWN, Client, InstanceRoster, Keys, Lease, LeaseLost

__all__ = ["LEASE_POLL_S", "LEASE_TTL_MS", "Primary"]

log = logging.getLogger("tickwatch")

#: How long the lease lasts unless renewed (renewed every third of it).
LEASE_TTL_MS = 5000
#: How often a standby looks whether the lease is free.
LEASE_POLL_S = 0.5


class Primary:
    def __init__(
        self, redis: Client, keys: Keys, instance: str, stopping: Callable[[], bool]
    ) -> None:
        self.instance = instance
        self.lease = Lease(redis, keys.lease("primary"), instance, LEASE_TTL_MS)
        self.roster = InstanceRoster(redis, keys.instances)
        self.stopping = stopping
        self.standby = False

    async def become(self) -> bool:
        """Wait, standing by, until this instance holds the lease; False if asked to stop."""
        told = False
        while True:
            await self.say("standby" if told else "starting")
            if await self.lease.take():
                break
            if self.stopping():
                return False
            if not told:
                holder, left = await self.lease.holder()
                log.warning("standing by: instance %s is the primary; this one (%s) takes over "
                            "within %.0f s of it stopping", holder, self.instance,
                            (left or LEASE_TTL_MS) / 1000)  # fmt: skip
                told = True
            self.standby = True
            await asyncio.sleep(LEASE_POLL_S)  # polling the lease key: Redis has no event for it
        self.standby = False
        await self.say("primary")
        if told:
            log.warning("instance %s took over as the primary", self.instance)
        return True

    async def keep(self) -> None:
        """Renew the lease a few times per TTL, until it is lost (then raise `LeaseLost`)."""
        while True:
            await asyncio.sleep(LEASE_TTL_MS / 1000 / 3)
            with contextlib.suppress(*REDIS_DOWN):  # Redis away: every stage waits, so do we
                await self.say("primary")
                if not await self.lease.renew():
                    holder, _ = await self.lease.holder()
                    raise LeaseLost(f"lost the primary lease to instance {holder}: another "
                                    "instance took over, so this one stops")  # fmt: skip

    async def hand_over(self) -> None:
        """A clean stop: the lease freed (a standby takes over now, not a TTL later), and this
        instance off the roster."""
        with contextlib.suppress(*REDIS_DOWN):
            if not self.standby:
                await self.lease.release()
            await self.roster.forget(self.instance)

    async def say(self, role: str) -> None:
        """Tell the roster this instance is alive, and as what."""
        entry = json.dumps({"role": role, "at_ms": int(time.time() * 1000)})
        await self.roster.say(self.instance, entry)
