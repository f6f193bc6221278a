"""Writing events into Redis and reading them back: the only code that touches the streams.

A batch, its reject counts, the latest prices and the source's resume cursor are written by one
Lua script call: no reader sees half a batch, and a dropped connection or a crash writes all of
it or none (the AOF records a script's effects as one transaction), so a replay can't resume
past ticks that were never written, or write them twice.

Why a script and not MULTI/EXEC with one XADD per event: redis-py spends ~10 µs of client CPU
on every command (build, pack, parse its reply), and a 10-tick frame needed 13 commands. One
EVALSHA pays that once whatever the batch size: a 10-tick write went from ~590 to ~390 µs of
client CPU on this machine, for ~15 µs more server time (bench/feed.py, issue 6).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from daemon.events import Headline, Tick
from daemon.store.keys import Keys

__all__ = ["Entry", "StreamStore"]

Entry = tuple[str, str, dict[str, str]]  # (stream key, entry id, fields)

#: KEYS: ticks, news, latest, rejects, cursor. ARGV: maxlen, then five sections, each its
#: length followed by its items: tick entries and headline entries (each entry `2n, field1,
#: value1, ...`), latest (`symbol, "price ts"` pairs), rejects (`reason, n` pairs), cursor
#: (`field, value` pairs). HSETs go in chunks: Lua's `unpack` stops at ~8,000 values.
_WRITE = """
local maxlen, i = ARGV[1], 2
local function section()
  local first = i + 1
  i = first + tonumber(ARGV[i])
  return first, i - 1
end
local function xadds(key)
  local j, last = section()
  while j <= last do
    local k = tonumber(ARGV[j])
    redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', unpack(ARGV, j + 1, j + k))
    j = j + k + 1
  end
end
local function hset(key)
  local j, last = section()
  while j <= last do
    local stop = math.min(last, j + 999)
    redis.call('HSET', key, unpack(ARGV, j, stop))
    j = stop + 1
  end
end
xadds(KEYS[1])
xadds(KEYS[2])
hset(KEYS[3])
local j, last = section()
while j < last do
  redis.call('HINCRBY', KEYS[4], ARGV[j], ARGV[j + 1])
  j = j + 2
end
hset(KEYS[5])
return 0
"""
_WRITE_SHA = hashlib.sha1(_WRITE.encode()).hexdigest()


class StreamStore:
    """The tick and news streams, their consumer groups, and what the edge writes with them
    (the `latest` hash, reject counts, each source's resume cursor)."""

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
        args: list[str | int] = [self.maxlen]
        _entries(args, ticks)
        _entries(args, headlines)
        latest = {t.symbol: f"{t.price!r} {t.ts_ms}" for t in ticks}
        _pairs(args, latest.items())
        _pairs(args, [(r, n) for r, n in (rejects or {}).items() if n])
        source, fields = cursor if cursor is not None else ("", {})
        _pairs(args, fields.items())
        keys = (k.ticks, k.news, k.latest, k.rejects, k.source_cursor(source))
        try:  # redis-py's Script wrapper costs ~50 µs a call here: EVALSHA by hand
            await self.redis.evalsha(_WRITE_SHA, len(keys), *keys, *args)  # type: ignore[misc]
        except NoScriptError:  # a restarted (or flushed) Redis forgot the script
            await self.redis.script_load(_WRITE)
            await self.redis.evalsha(_WRITE_SHA, len(keys), *keys, *args)  # type: ignore[misc]

    async def edge_memory(
        self, since_ms: int, max_headlines: int = 50_000
    ) -> tuple[dict[str, int], list[Headline]]:
        """What the edge had accepted before a restart, read back from what it wrote: each
        symbol's latest event time (the `latest` hash) and the headlines that arrived since
        `since_ms` (the news stream). Written by the same script as the events themselves, so
        it can never disagree with them."""
        raw: dict[str, str] = await self.redis.hgetall(self.keys.latest)  # type: ignore[misc]
        clocks: dict[str, int] = {}
        for sym, value in raw.items():
            parts = value.split()
            if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
                clocks[sym] = int(parts[1])
        rows: Any = await self.redis.xrevrange(
            self.keys.news, "+", str(max(since_ms, 0)), count=max_headlines
        )
        news = []
        for _, fields in reversed(rows or []):
            try:
                news.append(Headline.from_fields(fields))
            except (KeyError, ValueError):
                continue
        return clocks, news

    async def latest_times(self, symbols: Iterable[str]) -> dict[str, int]:
        """Each symbol's newest accepted price time (the `latest` hash, "price ts_ms"), 0 for
        one never written: where a backfill takes up."""
        names = list(symbols)
        values = await self.redis.hmget(self.keys.latest, names)  # type: ignore[misc]
        out: dict[str, int] = {}
        for name, value in zip(names, values, strict=True):
            text = value.decode() if isinstance(value, bytes) else str(value or "")
            try:
                out[name] = int(text.split()[1]) if text else 0
            except (IndexError, ValueError):
                out[name] = 0
        return out

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

    async def first_unprocessed(self, stream: str, group: str) -> str | None:
        """Id of the first entry `group` has not acknowledged: its oldest pending entry, else
        the one after its last delivered; None when it has read nothing yet. The group must
        exist (`ensure_group`). Where the evaluator's window warm-up stops: what it consumed,
        it has judged."""
        pending: Any = await self.redis.xpending(stream, group)
        if pending and pending.get("pending"):
            return str(pending["min"])
        groups: Any = await self.redis.xinfo_groups(stream)
        for g in groups:
            if g["name"] == group:
                last = str(g["last-delivered-id"])
                if last == "0-0":
                    return None
                ms, seq = last.split("-")
                return f"{ms}-{int(seq) + 1}"
        return None

    async def history(self, stream: str, before_id: str, count: int) -> list[Entry]:
        """Up to `count` entries before `before_id`, oldest first (window warm-up)."""
        rows: Any = await self.redis.xrevrange(stream, max=f"({before_id}", count=count)
        return [(stream, i, f) for i, f in reversed(rows)]


def _entries(args: list[str | int], events: Sequence[Tick] | Sequence[Headline]) -> None:
    """A stream section of `_WRITE`'s arguments: its length, then each entry `2n, f1, v1, ...`."""
    at = len(args)
    args.append(0)
    for e in events:
        fields = e.flat_fields()
        args.append(len(fields))
        args += fields
    args[at] = len(args) - at - 1


def _pairs(args: list[str | int], pairs: Iterable[tuple[str, str | int]]) -> None:
    """A hash section of `_WRITE`'s arguments: its length, then `field, value, ...`."""
    at = len(args)
    args.append(0)
    for kv in pairs:
        args.extend(kv)
    args[at] = len(args) - at - 1
