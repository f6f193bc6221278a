"""Delivery: alert transitions from the outbox stream to each channel, at least once, never twice.

The outbox is read through a consumer group. For every (alert transition, channel) an
idempotency marker goes to "sending" before the send (so nothing is ever sent while Redis is
unreachable: the marker write fails first) and to "done" after it; the outbox entry is
acknowledged only when every channel has succeeded or given up. A crash therefore re-reads the
entry on restart and skips the channels already done: the only duplicate window is a process
dying between a channel's answer and the "done" write.

Retries: exponential backoff with jitter, honouring a channel's `retry_after` (Slack 429); a
non-retryable error (bad token, unknown channel) or exhausted attempts moves the delivery to the
dead-letter stream with the reason, and the alert's other channels carry on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.notify.base import DeliveryError, Notification, Notifier
from daemon.store.keys import Keys
from daemon.store.streams import Entry, StreamStore

__all__ = ["Dispatcher", "RetryPolicy"]

log = logging.getLogger("tickwatch.notify")
DELIVERED_TTL_S = 30 * 86400


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        backoff = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        return backoff * (0.5 + random.random() / 2)


@dataclass
class DispatchStats:
    sent: dict[str, int] = field(default_factory=dict)
    skipped_duplicate: int = 0
    dead: int = 0


class Dispatcher:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        notifiers: Mapping[str, Notifier],
        *,
        consumer: str = "dispatcher-1",
        policy: RetryPolicy | None = None,
        maxlen: int = 1_000_000,
    ):
        self.redis = redis
        self.keys = keys
        self.store = StreamStore(redis, keys, maxlen)
        self.notifiers = dict(notifiers)
        self.consumer = consumer
        self.policy = policy or RetryPolicy()
        self.maxlen = maxlen
        self.stats = DispatchStats()
        self.idle = asyncio.Event()
        #: Deliveries between their first marker read and their "done" write. A process that
        #: dies (or loses Redis) while this is above zero may send those alerts once more.
        self.in_flight = 0
        self._stopping = False
        self._delivering = asyncio.Lock()
        self._unavailable_logged: set[str] = set()

    async def run(self) -> None:
        k = self.keys
        await self.store.ensure_group(k.outbox, k.NOTIFY_GROUP)
        while True:  # first, anything read before a crash and never acknowledged
            entries = await self.store.read_group(
                (k.outbox,), k.NOTIFY_GROUP, self.consumer, count=100, block_ms=None, pending=True
            )
            if not entries:
                break
            log.info("re-delivering %d unacknowledged alert(s) from before a restart", len(entries))
            await self._deliver_all(entries)
        while not self._stopping:
            entries = await self.store.read_group(
                (k.outbox,), k.NOTIFY_GROUP, self.consumer, count=100, block_ms=200
            )
            if not entries:
                self.idle.set()
                continue
            self.idle.clear()
            await self._deliver_all(entries)

    async def _deliver_all(self, entries: list[Entry]) -> None:
        for _, entry_id, fields in entries:
            async with self._delivering:
                if self._stopping:
                    return  # left pending: the next start delivers it
                await self.deliver_entry(entry_id, fields)

    async def finish(self, timeout: float = 10.0) -> None:
        """Stop taking new alerts, letting the one under way complete first.

        Cancelling mid-delivery could send an alert whose "done" marker never gets written,
        and the next start would send it again; a graceful stop must never cause a duplicate.
        """
        self._stopping = True
        try:
            await asyncio.wait_for(self._delivering.acquire(), timeout)
        except TimeoutError:
            log.warning(
                "a delivery was still under way after %.0fs; it may be repeated after restart",
                timeout,
            )

    async def deliver_entry(self, entry_id: str, fields: Mapping[str, str]) -> None:
        try:
            alert = AlertEvent.from_json(fields["alert"])
        except (KeyError, ValueError, TypeError) as e:
            log.error("outbox entry %s is malformed (%r); moved to dead letters", entry_id, e)
            await self._dead(entry_id, fields.get("alert", ""), "-", f"malformed: {e!r}")
        else:
            results = await asyncio.gather(
                *(self._deliver(alert, ch) for ch in alert.channels), return_exceptions=True
            )
            # every channel finished (none left running unsupervised); now surface a failure
            for r in results:
                if isinstance(r, BaseException):
                    raise r
        await self.redis.xack(self.keys.outbox, self.keys.NOTIFY_GROUP, entry_id)

    async def _deliver(self, alert: AlertEvent, channel: str) -> None:
        notifier = self.notifiers.get(channel)
        if notifier is None:
            if channel not in self._unavailable_logged:
                self._unavailable_logged.add(channel)
                log.info("channel %s is off (see start-up log); its alerts are skipped", channel)
            return
        marker = self.keys.delivered(alert.id, channel)
        self.in_flight += 1
        try:
            if await self.redis.get(marker) == "done":
                self.stats.skipped_duplicate += 1
                log.debug("skip %s to %s: already delivered", alert.id, channel)
                return
            await self.redis.set(marker, "sending", ex=DELIVERED_TTL_S)
            await self._send_with_retry(notifier, alert, channel, marker)
        finally:
            self.in_flight -= 1

    async def _send_with_retry(
        self, notifier: Notifier, alert: AlertEvent, channel: str, marker: str
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await notifier.deliver(Notification.single(alert, channel))
            except DeliveryError as e:
                if not e.retryable or attempt >= self.policy.attempts:
                    why = "not retryable" if not e.retryable else f"{attempt} attempts"
                    log.error("alert %s to %s failed (%s): %s", alert.id, channel, why, e)
                    await self._dead("", alert.to_json(), channel, str(e))
                    return
                delay = self.policy.delay(attempt, e.retry_after)
                log.warning(
                    "alert %s to %s failed (attempt %d/%d), retrying in %.1fs: %s",
                    alert.id, channel, attempt, self.policy.attempts, delay, e,
                )  # fmt: skip
                await asyncio.sleep(delay)
            else:
                await self.redis.set(marker, "done", ex=DELIVERED_TTL_S)
                log.debug("sent %s to %s (attempt %d)", alert.id, channel, attempt)
                self.stats.sent[channel] = self.stats.sent.get(channel, 0) + 1
                return

    async def _dead(self, entry_id: str, alert_json: str, channel: str, reason: str) -> None:
        self.stats.dead += 1
        fields = {"alert": alert_json, "channel": channel, "reason": reason, "entry": entry_id}
        await self.redis.xadd(self.keys.deadletter, fields, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
