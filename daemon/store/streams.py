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

#: XADD of a whole batch in one command. redis-py spends ~10 µs of client CPU on every pipelined
#: command (building it, packing it, parsing its reply): more than everything else a tick costs
#: on its way in (bench/feed.py). One EVAL per batch pays that once. Runs inside the MULTI/EXEC,
#: so a batch is still all-or-nothing. ARGV: maxlen, then per entry 2n, field1, value1, ...
_XADD_MANY = """
local key, maxlen, i, n = KEYS[1], ARGV[1], 2, #ARGV
while i <= n do
  local k = tonumber(ARGV[i])
  redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', unpack(ARGV, i + 1, i + k))
  i = i + k + 1
end
return 0
"""


#: Up to this many ticks, plain pipelined XADDs: the latency regime (a live feed writes a few
#: ticks per frame), where native commands showed a shorter tail than EVAL in bench/feed.py;
#: bigger batches (bursts, replays, backfills) take the one-EVAL path for throughput.
SMALL = 32


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
        if len(ticks) > SMALL:
            pipe.eval(_XADD_MANY, 1, k.ticks, *_flat(ticks, self.maxlen))
        for t in ticks:
            if len(ticks) <= SMALL:
                fields: Any = t.to_fields()
                pipe.xadd(k.ticks, fields, maxlen=self.maxlen, approximate=True)
            latest[t.symbol] = f"{t.price!r} {t.ts_ms}"
        if headlines:
            pipe.eval(_XADD_MANY, 1, k.news, *_flat(headlines, self.maxlen))
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


def _flat(events: Sequence[Tick] | Sequence[Headline], maxlen: int) -> list[str | int]:
    """`_XADD_MANY`'s arguments: maxlen, then each entry as 2n, field, value, ..."""
    args: list[str | int] = [maxlen]
    for e in events:
        fields = e.to_fields()
        args.append(2 * len(fields))
        for kv in fields.items():
            args.extend(kv)
    return args
