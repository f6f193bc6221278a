"""The evaluator's Redis: alert states, its checkpoint, and the commits of its batches.

Each commit is one MULTI/EXEC, so a crash at any point leaves either all of a batch's effects
(states, checkpoint, outbox entries, the XACK of what it consumed) or none of them: the batch is
then read again, judged against the last committed state, and tells the same transitions once.
States and checkpoint fields go in and come out as the evaluator's own strings (JSON, "price
ts kind source"): this module stores them, the rules engine alone knows what they mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from daemon.alerts import AlertEvent
from daemon.store.keys import Keys
from daemon.store.leases import Lease, commit

__all__ = ["StateStore"]


class StateStore:
    """Alert states, the evaluator checkpoint, and the outbox entries they produce;
    `maxlen` caps the outbox (approximately), as for every stream."""

    def __init__(self, redis: Redis, keys: Keys, maxlen: int = 1_000_000):
        self.redis = redis
        self.keys = keys
        self.maxlen = maxlen
        #: The primary lease, when several instances share this Redis: commits run under it.
        self.lease: Lease | None = None

    # --- reads (start-up) -------------------------------------------------------------------
    async def states(self) -> dict[str, str]:
        """Alert key → JSON of its lifecycle state, as last committed."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.alert_state)  # type: ignore[misc]
        return raw

    async def checkpoint(self) -> dict[str, str]:
        """The evaluator's checkpoint fields (last prices, anchors, bars), as last committed."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.eval_checkpoint)  # type: ignore[misc]
        return raw

    # --- commits (one MULTI/EXEC each) ------------------------------------------------------
    async def commit(
        self,
        *,
        states: Mapping[str, str],
        checkpoint: Mapping[str, str],
        alerts: Sequence[AlertEvent],
        acks: Mapping[str, Sequence[str]],
    ) -> None:
        """One judged batch: changed states, checkpoint fields, new outbox entries and the
        XACK (in the evaluator's group) of the stream entries it consumed, all or nothing."""
        k = self.keys

        def build(pipe: Pipeline) -> None:
            if states:
                pipe.hset(k.alert_state, mapping=dict(states))
            if checkpoint:
                pipe.hset(k.eval_checkpoint, mapping=dict(checkpoint))
            for a in alerts:
                pipe.xadd(k.outbox, {"alert": a.to_json()}, maxlen=self.maxlen, approximate=True)
            for stream, ids in acks.items():
                pipe.xack(stream, k.EVAL_GROUP, *ids)

        await commit(self.redis, self.lease, build)

    async def retire(self, states: Mapping[str, str], alerts: Sequence[AlertEvent] = ()) -> None:
        """Alerts a reload reset (changed or removed rules): their fresh states, out of the
        firing set (so they inhibit nothing any more), and their resolves to the outbox,
        together."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        if states:
            pipe.hset(k.alert_state, mapping=dict(states))
            pipe.hdel(k.firing, *states)
        for a in alerts:
            pipe.xadd(k.outbox, {"alert": a.to_json()}, maxlen=self.maxlen, approximate=True)
        await pipe.execute()
