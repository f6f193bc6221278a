"""The escalator's Redis: its consumer group on the outbox, and the escalations under way.

An escalation is a sorted-set member ("alert key#seq", scored by when its next step is due) and
its state (JSON) in a hash. Each change is atomic with what caused it: a transition read from the
outbox is scheduled (or cancelled) together with its acknowledgement, and a step is taken by one
script that checks the member is still due at the score it was read with, moves it on (or drops
it) and queues the step's messages on the channels' delivery streams. A crash repeats nothing,
and of two escalators reading the same due step only one takes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from daemon.store.keys import Keys
from daemon.store.numbers import AlertNumbers
from daemon.store.streams import Entry, StreamStore

__all__ = ["EscalationStore"]

# KEYS: zset, state hash, acks hash, then one delivery stream per message.
# ARGV: member, expected due (ms), next due ("" = done: drop it), state JSON, maxlen, alert key,
# when the firing started (ms), then the messages. An ack given since the firing started ends it
# here too, so an ack that lands between the escalator's read and this step still wins.
_STEP = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not due) or tonumber(due) ~= tonumber(ARGV[2]) then return 0 end
local ack = redis.call('HGET', KEYS[3], ARGV[6])
if ack then
  local ok, rec = pcall(cjson.decode, ack)
  if ok and type(rec) == 'table' and tonumber(rec['at_ms'] or 0) >= tonumber(ARGV[7]) then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
    return 2
  end
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
end
for i = 4, #KEYS do
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[5], '*', 'n', ARGV[i + 4])
end
return 1
"""


class EscalationStore:
    """What the escalator reads and writes; `maxlen` caps the channels' delivery streams."""

    def __init__(self, redis: Redis, keys: Keys, maxlen: int = 1_000_000):
        self.redis = redis
        self.keys = keys
        self.maxlen = maxlen
        self._streams = StreamStore(redis, keys, maxlen)
        self._step = redis.register_script(_STEP)
        #: The desk's numbers: a step's message carries its firing's.
        self.numbers = AlertNumbers(redis, keys)

    # --- the outbox, through the escalator's own group -------------------------------------
    async def ensure_group(self) -> None:
        await self._streams.ensure_group(self.keys.outbox, self.keys.ESCALATE_GROUP)

    async def read(
        self, consumer: str, *, count: int, block_ms: int | None, pending: bool = False
    ) -> list[Entry]:
        k = self.keys
        return await self._streams.read_group(
            (k.outbox,), k.ESCALATE_GROUP, consumer, count=count, block_ms=block_ms,
            pending=pending,
        )  # fmt: skip

    async def skip(self, entry_id: str) -> None:
        """A transition that starts or ends no escalation: acknowledged only."""
        await self.redis.xack(self.keys.outbox, self.keys.ESCALATE_GROUP, entry_id)

    async def schedule(self, entry_id: str, member: str, due_ms: int, state: str) -> None:
        """A firing that escalates unless acknowledged: scheduled, with its outbox ack."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(k.escalations, {member: due_ms}, nx=True)  # a re-read entry keeps its due
        pipe.hsetnx(k.escalation_state, member, state)
        pipe.xack(k.outbox, k.ESCALATE_GROUP, entry_id)
        await pipe.execute()

    async def cancel(self, entry_id: str, member: str, ack_key: str | None) -> None:
        """A resolve: its escalation ends (and its ack with it), with the outbox ack."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(k.escalations, member)
        pipe.hdel(k.escalation_state, member)
        if ack_key is not None:
            pipe.hdel(k.acks, ack_key)
        pipe.xack(k.outbox, k.ESCALATE_GROUP, entry_id)
        await pipe.execute()

    # --- steps -------------------------------------------------------------------------------
    async def due(self, now_ms: int, limit: int = 100) -> list[tuple[str, int, str]]:
        """(member, due ms, state JSON) of the steps due by `now_ms`, soonest first."""
        k = self.keys
        rows = await self.redis.zrangebyscore(
            k.escalations, "-inf", now_ms, start=0, num=limit, withscores=True
        )
        if not rows:
            return []
        states = await self.redis.hmget(k.escalation_state, [m for m, _ in rows])  # type: ignore[misc]
        return [(m, int(due), st) for (m, due), st in zip(rows, states, strict=True) if st]

    async def next_due_ms(self) -> int | None:
        rows = await self.redis.zrange(self.keys.escalations, 0, 0, withscores=True)
        return int(rows[0][1]) if rows else None

    async def all(self) -> dict[str, tuple[int, str]]:
        """Every escalation under way: member → (next due ms, state JSON)."""
        k = self.keys
        rows = await self.redis.zrange(k.escalations, 0, -1, withscores=True)
        states: dict[str, str] = await self.redis.hgetall(k.escalation_state)  # type: ignore[misc]
        return {m: (int(due), states[m]) for m, due in rows if m in states}

    async def step(
        self,
        member: str,
        expected_due_ms: int,
        next_due_ms: int | None,
        state: str,
        messages: Sequence[tuple[str, str]],
        *,
        alert_key: str,
        started_ms: int,
    ) -> str:
        """Take one step: move the escalation on to `next_due_ms` (None: it is over) and queue
        `messages` ((channel, notification JSON)), only if it is still due at
        `expected_due_ms` and no ack of `alert_key` came since `started_ms`. Says "sent",
        "acked" (it is over) or "gone" (another escalator took it, or a resolve ended it)."""
        k = self.keys
        keys = [k.escalations, k.escalation_state, k.acks, *(k.deliver(ch) for ch, _ in messages)]
        args = [member, expected_due_ms, "" if next_due_ms is None else next_due_ms, state,
                self.maxlen, alert_key, started_ms, *(text for _, text in messages)]  # fmt: skip
        done = int(await self._step(keys=keys, args=args))
        return {1: "sent", 2: "acked"}.get(done, "gone")
