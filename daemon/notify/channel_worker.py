"""One channel's delivery worker: its own stream, its own pace, nothing lost, nothing sent twice.

Each channel has a delivery stream (written by the router) and a worker reading it through a
consumer group, so a Slack outage or a slow Twilio never delays another channel. Per message:

- dedup: an idempotency marker (channel, notification key) goes to "sending" before the send
  and "done" after; a redelivered message whose marker is "done" is acknowledged unsent. The
  only duplicate window is a process dying between the channel's answer and the "done" write.
- cap: past the channel's daily cap one notice goes out, then messages are recorded, not sent.
- send: `Notifier.deliver`. A failure the service dated (`Retry-After`: Slack, Twilio, webhooks)
  waits exactly that long, however long, holding this channel's queue (and only this one's);
  one without waits out exponential backoff with jitter, at most `RetryPolicy.max_delay`. While
  it waits, the worker says so (`waiting`, and the `delivery_waits` hash `tickwatch status`
  reads): "slack_desk: rate limited by Slack, next try in 42 s".
- record: marker, daily count, the thread receipt and the acknowledgement in one MULTI/EXEC
  (`store.delivery.DeliveryStore`, where every Redis read and write of the worker's lives).
  A permanent failure, or one still failing `give_up_after` after the message was queued (the
  time budget, `delivery: {give_up_after: 1h}`), moves the message to the dead-letter stream and
  raises an ops alert on the other ops channels. The budget counts from the stream entry's id,
  so it survives a restart and a backlog behind a long outage is not retried for an hour each.

Stopping (`finish`): no new send begins (one waiting for the channel's rate limit is not sent),
and the sends under way get `STOP_GRACE_S` to be answered and recorded; what is left stays
pending for the next start. Waits and the time budget run on the monotonic clock once a message
is in hand, so a step of the wall clock neither spends the budget at once nor stretches it.

Entries left pending by a consumer that died are reclaimed with XAUTOCLAIM once idle for
`claim_idle_ms`, so a crashed replica's in-flight messages are still delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from daemon.alerts import NEW_YORK
from daemon.notify.base import Notifier
from daemon.notify.failure import DeliveryError, NotSent
from daemon.notify.notification import Notification, Receipt
from daemon.notify.retry import Clock, RetryPolicy, Wait, queued_at, wait_text
from daemon.store import DeliveryStore

# Clock, RetryPolicy and Wait live in retry.py; named here too for importers of the old path.
__all__ = ["STOP_GRACE_S", "ChannelWorker", "Clock", "RetryPolicy", "Wait", "WorkerStats"]

log = logging.getLogger("tickwatch.notify")
#: At stop, how long the sends under way get to be answered and recorded (all channels at
#: once); a send still unanswered then is cut off and may be repeated after a restart. Well
#: under the 10 s `docker stop` waits before its SIGKILL, and more than a healthy send takes.
STOP_GRACE_S = 5.0
#: Ops callback: (summary, labels) → raise an ops alert on the ops channels except `channel`.
OpsAlert = Callable[[str, Mapping[str, str]], Awaitable[None]]


@dataclass
class WorkerStats:
    sent: int = 0
    skipped_duplicate: int = 0
    dead: int = 0
    capped: int = 0
    reclaimed: int = 0
    #: waits before trying a failed send again (Retry-After or backoff)
    retries: int = 0
    #: of those, the waits a service asked for (`Retry-After`)
    retry_after_waits: int = 0
    #: send latency: seconds from the alert's event time to the channel's answer, last 1,000
    latencies: list[float] = field(default_factory=list)


class ChannelWorker:
    def __init__(
        self,
        store: DeliveryStore,
        notifier: Notifier,
        *,
        policy: RetryPolicy | None = None,
        daily_cap: int | None = None,
        ops: OpsAlert | None = None,
        claim_idle_ms: int = 60_000,
        clock: Clock | None = None,
    ):
        #: Every read and write of this worker's (the channel and consumer are the store's).
        self.store = store
        self.channel = store.channel
        self.consumer = store.consumer
        self.notifier = notifier
        self.policy = policy or RetryPolicy()
        self.daily_cap = daily_cap
        self.ops = ops
        self.claim_idle_ms = claim_idle_ms
        self.clock = clock or Clock()
        self.stats = WorkerStats()
        self.idle = asyncio.Event()
        #: 1 between reading a message's marker and writing "done": a kill now may repeat it
        self.in_flight = 0
        #: set while waiting to try a failed send again
        self.waiting: Wait | None = None
        self._wait_due = 0.0  # when that wait ends, on `clock.monotonic()`
        self._stopping = False
        self._stop = asyncio.Event()
        self._delivering = asyncio.Lock()

    # --- loop -------------------------------------------------------------------------------
    def next_attempt_in(self) -> float:
        """Seconds until this channel's next try of a failed send; 0 when it is not waiting."""
        return 0.0 if self.waiting is None else max(0.0, self._wait_due - self.clock.monotonic())

    async def run(self) -> None:
        await self.store.ensure_group()
        # a wait a previous run left behind (killed mid-wait) is over
        await self.store.drop_stale_wait()
        while True:  # first, what this consumer read before a crash and never acknowledged
            entries = await self.store.read(count=50, block_ms=None, pending=True)
            if not entries:
                break
            await self._deliver_all([(e[1], e[2]) for e in entries])
        next_claim = 0.0
        while not self._stopping:
            if time.monotonic() >= next_claim:
                next_claim = time.monotonic() + self.claim_idle_ms / 2000
                await self._deliver_all(await self.reclaim())
            entries = await self.store.read(count=50, block_ms=200)
            if not entries:
                self.idle.set()
                continue
            self.idle.clear()
            await self._deliver_all([(e[1], e[2]) for e in entries])

    async def reclaim(self) -> list[tuple[str, dict[str, str]]]:
        """Messages another consumer took and left unacknowledged for `claim_idle_ms` (it died)."""
        out = await self.store.reclaim(self.claim_idle_ms)
        if out:
            self.stats.reclaimed += len(out)
            log.warning(
                "%s: reclaimed %d message(s) left pending by a stopped worker",
                self.channel,
                len(out),
            )
        return out

    async def _deliver_all(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        for entry_id, fields in entries:
            async with self._delivering:
                if self._stopping:
                    return  # left pending: the next start delivers it
                await self.deliver_entry(entry_id, fields)

    def stop_taking(self) -> None:
        """From now on no send begins: not the next message, nor one waiting for the rate
        limit or for a retry (those stay pending, for the next start)."""
        self._stopping = True
        self._stop.set()

    async def finish(self, timeout: float = STOP_GRACE_S) -> None:
        """Stop taking messages, letting the one under way complete (no duplicate on restart).

        A wait before a retry is cut short: that message stays pending, for the next start."""
        self.stop_taking()
        try:
            await asyncio.wait_for(self._delivering.acquire(), timeout)
        except TimeoutError:
            log.warning(
                "%s: a delivery was still under way after %.0fs; it may be repeated after restart",
                self.channel, timeout,
            )  # fmt: skip

    # --- one message --------------------------------------------------------------------
    async def deliver_entry(self, entry_id: str, fields: Mapping[str, str]) -> None:
        try:
            n = Notification.from_json(fields["n"])
        except (KeyError, ValueError, TypeError) as e:
            log.error("%s: message %s is malformed (%r); moved to dead letters", self.channel,
                      entry_id, e)  # fmt: skip
            await self._dead(entry_id, fields.get("n", ""), f"malformed: {e!r}", 0)
            return
        self.in_flight += 1
        try:
            day = _ny_day()
            thread = (
                n.kind == "alert"
                and bool(n.alerts)
                and (n.alert.state != "firing" or n.alert.repeat > 0)
            )
            # one round trip: already done? over the cap? if not, mark "sending" (and fetch the
            # first message's receipt to thread under); syscalls are what a send costs here
            status, receipt = await self.store.claim(
                n.key, day, cap=self.daily_cap,
                thread=(n.alert.key, n.alert.seq) if thread else None,
            )  # fmt: skip
            if status == "done":
                self.stats.skipped_duplicate += 1
                log.debug("%s: %s already delivered", self.channel, n.key)
                await self.store.ack(entry_id)
                return
            if status == "capped":
                await self._capped(n, entry_id, day)
                return
            if receipt:
                n = replace(n, thread=receipt)
            await self._send_with_retry(n, entry_id)
        finally:
            self.in_flight -= 1

    async def _capped(self, n: Notification, entry_id: str, day: str) -> None:
        """Past the daily cap: say so once, then record instead of sending."""
        self.stats.capped += 1
        first_over = await self.store.capped(entry_id, day)
        log.warning("%s: daily cap of %d reached; %s recorded, not sent", self.channel,
                    self.daily_cap, n.key)  # fmt: skip
        if first_over:
            notice = Notification(
                channel=self.channel,
                key=f"cap:{_ny_day()}",
                kind="notice",
                text=f"tickwatch: daily cap of {self.daily_cap} messages reached on "
                f"{self.channel}; further alerts today are recorded, not sent",
            )
            try:
                await self.notifier.deliver(notice)
            except DeliveryError as e:
                log.error("%s: could not send the cap notice: %s", self.channel, e)

    async def _send_with_retry(self, n: Notification, entry_id: str) -> None:
        # The age at the first try comes from the entry id (wall time: it survives a restart);
        # from then on time runs on the monotonic clock. `now()` below is wall time as it was
        # when the message was taken, moved on by monotonic time only: a step of the wall
        # clock while the message is retried (+1 h: the budget spent at once, the next failure
        # dead-lettered after a zero wait; -1 h: an hour more of retries) changes nothing.
        wall0, mono0 = self.clock.now(), self.clock.monotonic()

        def now() -> float:
            return wall0 + (self.clock.monotonic() - mono0)

        queued = queued_at(entry_id, wall0)
        give_up_at = queued + self.policy.give_up_after
        attempt = 0
        last = False  # this try comes as the budget ends: if it fails, that is the end
        while True:
            attempt += 1
            try:
                receipt = await self.notifier.deliver(n, stop=self._stop)
            except NotSent:  # stopping, and the send had not begun: left for the next start
                await self.store.clear_wait()
                return
            except DeliveryError as e:
                now_s = now()
                delay = self.policy.delay(attempt, e.retry_after)
                why = self._give_up_why(e, now_s, delay, queued, give_up_at, last)
                if why is not None:
                    log.warning("%s: %s failed (%s): %s", self.channel, n.key, why, e)
                    await self._dead(entry_id, n.to_json(), f"{e} ({why})", attempt)
                    await self._ops_alert(n, str(e))
                    return
                if now_s + delay >= give_up_at:  # backoff past the budget: a last try at its end
                    delay, last = max(0.0, give_up_at - now_s), True
                # `until` and `give_up_at` are for status (wall time, as of now); the wait
                # itself is `delay` seconds on the monotonic clock
                wall = self.clock.now()
                w = Wait(e.reason, wall + delay, e.retry_after, attempt, n.key,
                         wall + (give_up_at - now_s))  # fmt: skip
                if not await self._wait(w, e, entry_id, delay):  # stopping: left for next start
                    await self.store.clear_wait()
                    return
            else:
                await self._record(n, entry_id, receipt)
                return

    def _give_up_why(
        self,
        e: DeliveryError,
        now: float,
        delay: float,
        queued: float,
        give_up_at: float,
        last: bool,
    ) -> str | None:
        """Why the message goes to the dead letters now, or None to try it again."""
        if not e.retryable:
            return "not retryable"
        budget = f"delivery.give_up_after is {wait_text(self.policy.give_up_after)}"
        if last or now >= give_up_at:
            return f"still failing {wait_text(now - queued)} after it was queued; {budget}"
        if e.retry_after is not None and now + delay > give_up_at:
            return (
                f"asked to wait {wait_text(delay)}, past the time left for it "
                f"({wait_text(give_up_at - now)}); {budget}"
            )
        return None

    async def _wait(self, w: Wait, e: DeliveryError, entry_id: str, delay: float) -> bool:
        """Wait `delay` seconds, shown in status and metrics; False if `finish()` cut it short."""
        delay = max(0.0, delay)
        self.stats.retries += 1
        if w.retry_after is not None:
            self.stats.retry_after_waits += 1
            log.warning(
                "%s: %s (attempt %d): %s; waiting %s as asked (Retry-After), then trying again",
                self.channel, w.key, w.attempt, e, wait_text(delay),
            )  # fmt: skip
        else:
            log.warning(
                "%s: %s failed (attempt %d), retrying in %.1fs: %s",
                self.channel, w.key, w.attempt, delay, e,
            )  # fmt: skip
        self.waiting, self._wait_due = w, self.clock.monotonic() + delay
        try:
            await self.store.set_wait(w.to_json(self.channel, self.consumer))
            keep = asyncio.ensure_future(self._keep_claimed(entry_id))
            try:
                return await self._pause(delay)
            finally:
                keep.cancel()
                await asyncio.gather(keep, return_exceptions=True)
        finally:
            self.waiting = None

    async def _keep_claimed(self, entry_id: str) -> None:
        """While waiting, keep the entry this consumer's: reset its idle time (XCLAIM JUSTID)
        so another replica's XAUTOCLAIM does not take, and send early, a message held here."""
        every = max(0.05, self.claim_idle_ms / 3000)
        while True:
            await asyncio.sleep(every)
            try:
                await self.store.keep_claimed(entry_id)
            except Exception as e:  # Redis away for a moment: the next round tries again
                log.debug("%s: could not refresh the claim on %s: %r", self.channel, entry_id, e)

    async def _pause(self, seconds: float) -> bool:
        """Sleep on the worker's clock unless told to stop; False when stopping."""
        if self._stopping:
            return False
        if seconds <= 0:
            return True
        sleeping = asyncio.ensure_future(self.clock.sleep(seconds))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeping, stopping):
                t.cancel()
            await asyncio.gather(sleeping, stopping, return_exceptions=True)
        return not self._stopping

    async def _record(self, n: Notification, entry_id: str, receipt: Receipt | None) -> None:
        count_day = _ny_day() if self.daily_cap is not None and n.kind != "notice" else None
        first: tuple[str, int, Receipt] | None = None  # the receipt to thread follow-ups under
        if receipt and n.kind == "alert" and n.alerts:
            a = n.alert
            if a.state == "firing" and not a.repeat:
                first = (a.key, a.seq, receipt)
        await self.store.record(entry_id, n.key, count_day=count_day, receipt=first)
        self.stats.sent += 1
        if n.alerts:
            lat = time.time() - max(a.ts_ms for a in n.alerts) / 1000
            self.stats.latencies.append(lat)
            del self.stats.latencies[:-1000]
        log.debug("%s: sent %s", self.channel, n.key)

    async def _dead(self, entry_id: str, body: str, reason: str, attempts: int) -> None:
        self.stats.dead += 1
        fields = {"n": body, "channel": self.channel, "reason": reason, "entry": entry_id,
                  "attempts": str(attempts), "ts": str(int(self.clock.now() * 1000))}  # fmt: skip
        await self.store.dead(entry_id, fields)

    async def _ops_alert(self, n: Notification, reason: str) -> None:
        """Tell the ops channels (never this one, never about an ops alert: no loops)."""
        if self.ops is None or any(a.rule.startswith("tickwatch-") for a in n.alerts):
            return
        what = n.alert.key if n.alerts else n.kind
        await self.ops(
            f"Delivery to {self.channel} failed for good ({what}): {reason}. "
            f"It is in the dead letters: tickwatch deadletter list / retry",
            {"channel": self.channel},
        )


def _ny_day() -> str:
    return datetime.now(NEW_YORK).strftime("%Y-%m-%d")
