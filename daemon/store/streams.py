"""Writing events into Redis and reading them back: the only code that touches the streams.

Writes go in one MULTI/EXEC per batch so that a batch, its reject counts and the source's resume
cursor land together or not at all; a crash can't leave a replay that resumes past ticks that
were never written, or one that writes them twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from daemon.events import Headline, Tick
from daemon.store.keys import Keys

__all__ = ["Entry", "StreamStore"]

Entry = tuple[str, str, dict[str, str]]  # (stream key, entry id, fields)


class StreamStore:
    def __init__(self, redis: Redis, keys: Keys, maxlen: int = 1_000_000):
        self.redis = redis
        self.keys = keys
        self.maxlen = maxlen

    async def write(
        self,
        ticks: Sequence[Tick] = (),
        headlines: Sequence[Headline] = (),
        *,
        rejects: Mapping[str, int] | None = None,
        cursor: tuple[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Append a batch atomically, with the latest price per symbol and the source cursor."""
        k = self.keys
        pipe = self.redis.pipeline(transaction=True)
        latest: dict[str, str] = {}
        for t in ticks:
            pipe.xadd(k.ticks, t.to_fields(), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
            latest[t.symbol] = f"{t.price!r} {t.ts_ms}"
        for h in headlines:
            pipe.xadd(k.news, h.to_fields(), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        if latest:
            pipe.hset(k.latest, mapping=latest)
        for reason, n in (rejects or {}).items():
            if n:
                pipe.hincrby(k.rejects, reason, n)
        if cursor is not None:
            source, fields = cursor
            pipe.hset(k.source_cursor(source), mapping=dict(fields))
        await pipe.execute()

    async def cursor(self, source: str) -> dict[str, str]:
        res: dict[str, str] = await self.redis.hgetall(self.keys.source_cursor(source))  # type: ignore[misc]
        return res

    async def ensure_group(self, stream: str, group: str) -> None:
        """Create the consumer group (and the stream) once; existing groups are kept."""
        try:
            await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def read_group(
        self,
        streams: Iterable[str],
        group: str,
        consumer: str,
        *,
        count: int,
        block_ms: int | None,
        pending: bool = False,
    ) -> list[Entry]:
        """New entries (or, with `pending`, this consumer's unacknowledged ones) in stream order."""
        ids: dict[Any, Any] = {s: ("0" if pending else ">") for s in streams}
        reply: Any = await self.redis.xreadgroup(
            group, consumer, ids, count=count, block=None if pending else block_ms
        )
        out: list[Entry] = []
        for stream, entries in reply or []:
            for entry_id, fields in entries:
                if fields:  # a deleted (trimmed) pending entry comes back empty
                    out.append((stream, entry_id, fields))
        return out

    async def history(self, stream: str, before_id: str, count: int) -> list[Entry]:
        """Up to `count` entries before `before_id`, oldest first (window warm-up)."""
        rows: Any = await self.redis.xrevrange(stream, max=f"({before_id}", count=count)
        return [(stream, i, f) for i, f in reversed(rows)]
