"""One channel worker's Redis: its delivery stream, markers, daily cap, receipts and retry waits.

The outcome of each message (sent, capped, dead-lettered) is one method here, one MULTI/EXEC
with the stream acknowledgement, so a crash leaves a message either pending or fully recorded.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from daemon.store.deadletters import DEADLETTER_MAXLEN
from daemon.store.keys import Keys
from daemon.store.streams import Entry, StreamStore

__all__ = ["MARKER_TTL_S", "DeliveryStore"]

#: How long an idempotency marker (and a thread receipt) is kept: redeliveries within it dedup.
MARKER_TTL_S = 30 * 86400
#: How long a day's sent counter and its cap notice flag are kept (past the New York day).
_DAY_TTL_S = 2 * 86400

#: KEYS: marker, today's sent counter, receipt hash. ARGV: marker TTL, daily cap (0: none),
#: 1 to fetch the receipt. Returns {"done"}, {"capped"} or {"go", receipt field, value, ...}.
_CLAIM = """
if redis.call('GET', KEYS[1]) == 'done' then return {'done'} end
local cap = tonumber(ARGV[2])
if cap > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= cap then return {'capped'} end
redis.call('SET', KEYS[1], 'sending', 'EX', ARGV[1])
local out = {'go'}
if ARGV[3] == '1' then
  for _, v in ipairs(redis.call('HGETALL', KEYS[3])) do table.insert(out, v) end
end
return out
"""


class DeliveryStore:
    """What the worker of `channel` reads and writes as consumer `consumer` of its stream."""

    def __init__(self, redis: Redis, keys: Keys, channel: str, *, consumer: str = "worker-1"):
        self.redis = redis
        self.keys = keys
        self.channel = channel
        self.consumer = consumer
        self.stream = keys.deliver(channel)
        self._streams = StreamStore(redis, keys)
        self._claim = redis.register_script(_CLAIM)
        self._wait_field = f"{channel}|{consumer}"
        self._wait_written = False  # our field in `delivery_waits` may be set

    # --- the stream ---------------------------------------------------------------------------
    async def ensure_group(self) -> None:
        """The workers' group on this channel's stream (and the stream), created once."""
        await self._streams.ensure_group(self.stream, self.keys.DELIVER_GROUP)

    async def read(self, *, count: int, block_ms: int | None, pending: bool = False) -> list[Entry]:
        """New messages (or, with `pending`, the ones this consumer read and never acked)."""
        return await self._streams.read_group(
            (self.stream,), self.keys.DELIVER_GROUP, self.consumer,
            count=count, block_ms=block_ms, pending=pending,
        )  # fmt: skip

    async def reclaim(self, min_idle_ms: int) -> list[tuple[str, dict[str, str]]]:
        """Messages another consumer took and left unacked for `min_idle_ms` (it died): ours now."""
        out: list[tuple[str, dict[str, str]]] = []
        start = "0-0"
        while True:
            res = await self.redis.xautoclaim(
                self.stream, self.keys.DELIVER_GROUP, self.consumer,
                min_idle_time=min_idle_ms, start_id=start, count=100,
            )  # fmt: skip
            start, claimed = res[0], res[1]
            out += [(eid, fields) for eid, fields in claimed if fields is not None]
            if start in ("0-0", b"0-0") or not claimed:
                break
        return out

    async def keep_claimed(self, entry_id: str) -> None:
        """Reset a held message's idle time (XCLAIM JUSTID), so no other replica's XAUTOCLAIM
        takes it, and sends it early, while this worker waits to retry it."""
        await self.redis.xclaim(
            self.stream, self.keys.DELIVER_GROUP, self.consumer,
            min_idle_time=0, message_ids=[entry_id], justid=True,
        )  # fmt: skip

    async def ack(self, entry_id: str) -> None:
        """Done with a message that needs no record (already delivered: a redelivery)."""
        await self.redis.xack(self.stream, self.keys.DELIVER_GROUP, entry_id)

    # --- one message ------------------------------------------------------------------------
    async def claim(
        self, key: str, day: str, *, cap: int | None, thread: tuple[str, int] | None
    ) -> tuple[str, dict[str, str]]:
        """One round trip before a send: already done? over the cap (`day`'s count)? If not,
        mark notification `key` "sending", and fetch the receipt of the alert's first message
        (`thread`: alert key, seq) to thread under. Returns ("done" | "capped" | "go", receipt)."""
        k, ch = self.keys, self.channel
        marker = k.delivered(key, ch)
        receipt_key = k.receipt(ch, *thread) if thread is not None else marker
        status, *receipt = await self._claim(
            keys=[marker, k.sent_today(ch, day), receipt_key],
            args=[MARKER_TTL_S, cap or 0, 1 if thread is not None else 0],
        )
        return status, dict(zip(receipt[::2], receipt[1::2], strict=True))

    async def capped(self, entry_id: str, day: str) -> bool:
        """Record a message over the daily cap instead of sending it (counted, acked); True the
        first time on `day`, when the channel should say so once."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(k.suppressed, f"cap:{self.channel}", 1)
        pipe.xack(self.stream, k.DELIVER_GROUP, entry_id)
        first_over = await self.redis.set(
            k.cap_notice(self.channel, day), "1", nx=True, ex=_DAY_TTL_S
        )
        await pipe.execute()
        return bool(first_over)

    async def record(
        self,
        entry_id: str,
        key: str,
        *,
        count_day: str | None,
        receipt: tuple[str, int, Mapping[str, str]] | None,
    ) -> None:
        """A message sent: its marker "done", `count_day`'s counter (capped channels) and the
        first message's receipt (alert key, seq, fields) for follow-ups, with the ack."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(k.delivered(key, self.channel), "done", ex=MARKER_TTL_S)
        if count_day is not None:
            day_key = k.sent_today(self.channel, count_day)
            pipe.incr(day_key)
            pipe.expire(day_key, _DAY_TTL_S)
        if receipt is not None:
            alert_key, seq, fields = receipt
            rkey = k.receipt(self.channel, alert_key, seq)
            pipe.hset(rkey, mapping=dict(fields))
            pipe.expire(rkey, MARKER_TTL_S)
        pipe.xack(self.stream, k.DELIVER_GROUP, entry_id)
        self._clear_wait(pipe)
        await pipe.execute()

    async def dead(self, entry_id: str, fields: Mapping[str, str]) -> None:
        """A message failed for good: to the dead letters and acked, together."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(k.deadletter, dict(fields), maxlen=DEADLETTER_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.xack(self.stream, k.DELIVER_GROUP, entry_id)
        self._clear_wait(pipe)
        await pipe.execute()

    # --- retry waits (what `tickwatch status` shows) -----------------------------------------
    async def set_wait(self, text: str) -> None:
        """Say this worker waits to retry (JSON of the wait), for status to show."""
        await self.redis.hset(self.keys.delivery_waits, self._wait_field, text)  # type: ignore[misc]
        self._wait_written = True

    async def clear_wait(self) -> None:
        """No longer waiting, nothing recorded (stopping: the message stays pending)."""
        pipe = self.redis.pipeline(transaction=False)
        self._clear_wait(pipe)
        await pipe.execute()

    async def drop_stale_wait(self) -> None:
        """At start: a wait a previous run left behind (killed mid-wait) is over."""
        await self.redis.hdel(self.keys.delivery_waits, self._wait_field)  # type: ignore[misc]

    def _clear_wait(self, pipe: Pipeline) -> None:
        """Drop our `delivery_waits` field with the outcome's writes (only if one was set)."""
        if self._wait_written:
            pipe.hdel(self.keys.delivery_waits, self._wait_field)
            self._wait_written = False
