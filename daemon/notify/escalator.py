"""The escalator: unacknowledged firings sent on to the channels their rule's `escalate:` names.

It reads every alert transition through its own consumer group on the outbox (as the router
does, independently of it): a firing of an escalating rule starts a chain (`escalation.Chain`),
its resolve ends it. Between reads it takes the steps that are due (`escalation.next_step`),
each through one script that queues the messages on the channels' delivery streams, so the
channel workers deliver them as any other message: deduplicated, paced, retried. Chains live in
Redis (`daemon.store.EscalationStore`): a restart resumes them, and a step is taken once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace

from daemon.alerts import AlertEvent
from daemon.events import EarningsEvent
from daemon.notify.acks import AckBook
from daemon.notify.escalation import Chain, current_policy, first_due_ms, next_step, policy_of
from daemon.notify.market_context import MarketContext
from daemon.notify.route_tree import Route, compile_routes
from daemon.notify.silence_book import SilenceStore
from daemon.rules import Escalate
from daemon.store import Entry, EscalationStore

__all__ = ["Escalator"]

log = logging.getLogger("tickwatch.notify")

#: Longest wait for new transitions before looking at due steps again.
POLL_MS = 200


class Escalator:
    def __init__(
        self,
        store: EscalationStore,
        acks: AckBook,
        silences: SilenceStore,
        policies: Mapping[str, Escalate],
        *,
        root: Route | None = None,
        earnings: Iterable[EarningsEvent] = (),
        max_age_ms: int = 15 * 60_000,
        consumer: str = "escalator-1",
    ):
        self.store = store
        self.acks = acks
        self.silences = silences
        self.policies = dict(policies)
        #: The route tree (routes may set `escalate:` too) and the market they may ask about.
        self.root = root if root is not None else compile_routes(None)
        self.market = MarketContext(earnings)
        #: A firing queued longer ago than this starts no chain (the router's `max_alert_age`:
        #: a backlog after downtime, or a new escalator group reading the outbox's history).
        self.max_age_ms = max_age_ms
        self.consumer = consumer
        self.sent = 0
        self.idle = asyncio.Event()

    def configure(
        self,
        policies: Mapping[str, Escalate],
        max_age_ms: int,
        root: Route | None = None,
        earnings: Iterable[EarningsEvent] | None = None,
    ) -> None:
        """The rules' and routes' `escalate:` after a reload: chains whose rule or route no
        longer escalates end at their next due time."""
        self.policies = dict(policies)
        self.max_age_ms = max_age_ms
        if root is not None:
            self.root = root
        if earnings is not None:
            self.market.set_earnings(earnings)

    async def run(self) -> None:
        await self.store.ensure_group()
        while True:  # what was read before a crash and never acknowledged
            entries = await self.store.read(self.consumer, count=100, block_ms=None, pending=True)
            if not entries:
                break
            await self.read(entries)
        while True:
            await self.take_due()
            entries = await self.store.read(self.consumer, count=100, block_ms=await self._wait())
            if entries:
                self.idle.clear()
                await self.read(entries)
            else:
                self.idle.set()

    async def _wait(self) -> int:
        due = await self.store.next_due_ms()
        if due is None:
            return POLL_MS
        return max(1, min(POLL_MS, due - int(time.time() * 1000)))

    async def read(self, entries: list[Entry], now_ms: int | None = None) -> None:
        """Start a chain for each escalating firing, end one for each resolve."""
        for _, entry_id, fields in entries:
            now = int(time.time() * 1000) if now_ms is None else now_ms
            try:
                alert = AlertEvent.from_json(fields["alert"])
            except (KeyError, ValueError, TypeError):
                await self.store.skip(entry_id)  # the router dead-letters it and says why
                continue
            fresh = now - _queued_ms(entry_id, alert) <= self.max_age_ms
            found = None
            if alert.state == "firing" and alert.repeat == 0 and fresh:
                found = policy_of(alert, self.policies, self.root, self.market.at(now))
            chain = Chain(alert, started_ms=now, source=found[1] if found else "rule")
            if found is not None:
                due = first_due_ms(found[0], now)
                await self.store.schedule(entry_id, chain.member, due, chain.to_json())
            elif alert.state == "resolved":
                ack = await self.acks.get(alert.key)
                await self.store.cancel(entry_id, chain.member, alert.key if ack else None)
            else:
                await self.store.skip(entry_id)

    async def take_due(self, now_ms: int | None = None) -> int:
        """Take every step due by now; returns how many were sent."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        sent = 0
        due = await self.store.due(now)
        if not due:
            return 0
        silences = await self.silences.active(now)
        for member, due_ms, text in due:
            try:
                chain = Chain.from_json(text)
            except (KeyError, ValueError, TypeError) as e:
                log.error("escalation %s is unreadable (%r); ending it", member, e)
                await self.store.step(member, due_ms, None, text, (), alert_key="", started_ms=0)
                continue
            number = await self.store.numbers.number(member, assign=False)
            if number and not chain.alert.number:  # routed since the chain began: numbered
                chain = replace(chain, alert=replace(chain.alert, number=number))
            ack = await self.acks.get(chain.alert.key)
            policy = current_policy(chain, self.policies, self.root)
            step = next_step(chain, policy, now,
                             acked_ms=ack.at_ms if ack else None, silences=silences)  # fmt: skip
            moved = step.chain or chain
            messages: tuple[tuple[str, str], ...] = ()
            if step.action == "defer":
                next_due = step.next_due_ms
            elif step.action == "send":
                next_due = step.next_due_ms
                messages = tuple((n.channel, n.to_json()) for n in step.messages)
            else:
                next_due = None
            done = await self.store.step(
                member, due_ms, next_due, moved.to_json(), messages,
                alert_key=chain.alert.key, started_ms=chain.started_ms,
            )  # fmt: skip
            if done == "sent" and messages:
                sent += 1
                self.sent += 1
                log.warning("escalated %s to %s (%s)", chain.alert.id,
                            ", ".join(ch for ch, _ in messages), step.why)  # fmt: skip
            elif step.action == "end" or done == "acked":
                log.info("escalation of %s ended: %s", chain.alert.id,
                         "acknowledged" if done == "acked" else step.why)  # fmt: skip
        return sent


def _queued_ms(entry_id: str, alert: AlertEvent) -> int:
    """When a transition entered the outbox (its stream id's time)."""
    try:
        return int(entry_id.split("-")[0])
    except ValueError:
        return alert.ts_ms
