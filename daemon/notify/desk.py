"""What the desk does to alerts: acknowledge and snooze, by an alert key or a part of one.

One place for every way in (the CLI, and the Slack buttons, SMS replies and API to come), so
"ack" means the same whoever says it. A snooze is a silence over the alert's own labels until
a time: it holds the alert's reminders and defers its escalation, and ends by itself.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

from daemon.events import NEW_YORK
from daemon.notify.acks import Ack, AckBook
from daemon.notify.escalation import Chain
from daemon.notify.route_tree import routing_labels
from daemon.notify.silence_book import SilenceStore
from daemon.notify.silences import Silence
from daemon.store import Client, EscalationStore, Keys, OptOutRecords, OutboxStore

__all__ = ["Desk", "Firing", "NoSuchAlert"]


class NoSuchAlert(LookupError):
    """No firing alert (or more than one) answers to what was given; the message says which."""


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert firing now, as the desk sees it: its ack, and its escalation if one is on."""

    key: str
    labels: dict[str, str]
    ack: Ack | None
    #: The next escalation step's due time, and how many were taken (None: no escalation).
    escalation_due_ms: int | None = None
    escalation_steps: int = 0
    #: The desk's number of its current firing (`ACK 12`); 0 when it has none.
    number: int = 0


class Desk:
    def __init__(self, redis: Client, keys: Keys):
        self.acks = AckBook(redis, keys)
        self.silences = SilenceStore(redis, keys)
        self._outbox = OutboxStore(redis, keys)
        self._escalations = EscalationStore(redis, keys)
        self._opt_outs = OptOutRecords(redis, keys)

    async def firing(self) -> list[Firing]:
        """Every alert firing now (as delivery knows it), with its ack and escalation."""
        labels = await self._outbox.firing()
        acks = await self.acks.all()
        chains: dict[str, tuple[int | None, int]] = {}
        for due, text in (await self._escalations.all()).values():
            try:
                c = Chain.from_json(text)
            except (KeyError, ValueError, TypeError):
                continue
            chains[c.alert.key] = (due, c.steps)
            # a one-shot alert (a headline) escalates but is never in the firing set
            labels.setdefault(c.alert.key, routing_labels(c.alert))
        numbers: dict[str, tuple[int, int]] = {}  # key → (seq, number) of its latest firing
        for n, firing_seq in (await self._outbox.numbers.all()).items():
            key, _, seq = firing_seq.rpartition("#")
            if seq.isdigit() and int(seq) >= numbers.get(key, (-1, 0))[0]:
                numbers[key] = (int(seq), n)
        out = []
        for key in sorted(labels):
            next_due, steps = chains.get(key, (None, 0))
            number = numbers.get(key, (0, 0))[1]
            out.append(Firing(key, labels[key], acks.get(key), next_due, steps, number))
        return out

    async def find(self, ref: str) -> str:
        """The alert key `ref` names: a key, or a part of exactly one firing alert's key."""
        return (await self._find(ref)).key

    async def _find(self, ref: str) -> Firing:
        firing = await self.firing()
        exact = [f for f in firing if f.key == ref]
        hits = exact or [f for f in firing if ref.lower() in f.key.lower()]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            listing = ", ".join(f.key for f in firing[:10]) or "none"
            raise NoSuchAlert(f"no firing alert matches {ref!r}; firing now: {listing}")
        names = ", ".join(f.key for f in hits[:10])
        raise NoSuchAlert(f"{ref!r} matches {len(hits)} alerts: {names}; say which")

    async def numbered(self) -> list[tuple[int, str]]:
        """(number, alert key) of the alerts firing now and not acknowledged, by number."""
        return _waiting(await self.firing())

    async def by_number(self, number: int | None) -> str:
        """The alert key a reply means: alert `number` (`ACK 12`), or with none the one
        firing alert not yet acknowledged; NoSuchAlert says what to reply instead."""
        firing = await self.firing()
        if number is not None:
            seq = await self._outbox.numbers.firing(number)
            key = seq.rpartition("#")[0] if seq else ""
            if key not in {f.key for f in firing}:
                raise NoSuchAlert(f"alert #{number} is not firing")
            return key
        waiting = _waiting(firing)
        if len(waiting) == 1:
            return waiting[0][1]
        if not waiting:
            raise NoSuchAlert("nothing unacknowledged is firing")
        listing = ", ".join(f"#{n} {key}" for n, key in waiting[:5])
        raise NoSuchAlert(f"{len(waiting)} alerts are firing: {listing}; reply ACK <number>")

    async def opt_out(
        self, phone: str, *, channel: str, stop: bool, now_ms: int | None = None
    ) -> None:
        """A STOP (or START) from `phone`: recorded, so the desk knows texts to it are held."""
        if stop:
            now = int(time.time() * 1000) if now_ms is None else now_ms
            await self._opt_outs.put(phone, json.dumps({"channel": channel, "at_ms": now}))
        else:
            await self._opt_outs.drop(phone)

    async def opted_out(self) -> dict[str, str]:
        return await self._opt_outs.all()

    async def ack(self, ref: str, *, by: str, via: str, now_ms: int | None = None) -> Ack:
        """Acknowledge the firing alert `ref` names: its escalation stops everywhere."""
        return await self.acks.ack(await self.find(ref), by=by, via=via, now_ms=now_ms)

    async def snooze(
        self, ref: str, *, for_ms: int, by: str, via: str, now_ms: int | None = None
    ) -> Silence:
        """Hold the alert's messages and escalation for `for_ms`: a silence over its labels."""
        found = await self._find(ref)
        labels = found.labels
        if not labels:
            raise NoSuchAlert(f"{found.key} has no labels to snooze on; silence it by its labels")
        now = int(time.time() * 1000) if now_ms is None else now_ms
        matchers = [f"{k}={v}" for k, v in sorted(labels.items()) if k != "severity"]
        return await self.silences.add(matchers, author=by, reason=f"snoozed via {via}",
                                       ends_ms=now + for_ms, starts_ms=now)  # fmt: skip

    async def silence_day(
        self, symbol: str, *, by: str, via: str, now_ms: int | None = None
    ) -> Silence:
        """Hold every alert about `symbol` until the end of the New York day."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        today = dt.datetime.fromtimestamp(now / 1000, NEW_YORK).date()
        midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), NEW_YORK)
        ends = int(midnight.timestamp() * 1000)
        reason = f"silenced for the day via {via}"
        return await self.silences.add(
            [f"symbol={symbol}"], author=by, reason=reason, ends_ms=ends, starts_ms=now
        )


def _waiting(firing: list[Firing]) -> list[tuple[int, str]]:
    """(number, key) of the numbered alerts nobody acknowledged yet, by number."""
    return sorted((f.number, f.key) for f in firing if f.ack is None and f.number)
