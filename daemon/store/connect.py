"""Opening Redis connections: one place for client options every stage shares.

`redis+cluster://host:port` (or `rediss+cluster://`) opens redis-py's asyncio Redis Cluster
client instead (`RedisCluster`, seeded from that node): every key carries the `{prefix}` hash tag
(`keys.Keys`), so each MULTI/EXEC and script the stores send touches one slot, and the cluster
client answers the same commands the single-server client does.

redis-py's asyncio connection packs commands in pure Python (its sync client already uses
hiredis for this). Packing was half of the replay → Redis → evaluator profile, and hiredis's
`pack_command` does the same RESP encoding 2-3x faster (measured by `make bench`), so
`FastPackConnection` swaps it in; anything hiredis refuses falls back to redis-py's packer.
"""

from __future__ import annotations

from typing import Any, cast

from hiredis import pack_command as _hiredis_pack
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection

__all__ = ["CLUSTER_SCHEMES", "FastPackConnection", "connect", "dedicated", "is_cluster"]

#: URL schemes that mean a Redis Cluster (seed node).
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


class FastPackConnection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        head = args[0]
        if isinstance(head, str) and " " in head:  # "XGROUP CREATE" is two words on the wire
            args = (*head.split(), *args[1:])
        try:
            return [_hiredis_pack(args)]
        except TypeError:  # a type hiredis doesn't pack: let redis-py encode it
            return super().pack_command(*args)


def connect(url: str, **options: Any) -> Redis:
    """A client for `url` with string replies and the fast command packer (TCP URLs)."""
    options.setdefault("decode_responses", True)
    if url.startswith(CLUSTER_SCHEMES):
        seed = url.replace("+cluster", "", 1)
        cluster = RedisCluster.from_url(seed, **options)
        # Typed as the single-server client: the stores use only commands both answer alike
        # (the cluster suite runs them, tests/e2e/test_cluster.py).
        return cast(Redis, cluster)
    if url.startswith("redis://"):  # TLS and unix sockets keep redis-py's own classes
        pool = ConnectionPool.from_url(url, connection_class=FastPackConnection, **options)
        return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its sockets
    return Redis.from_url(url, **options)


def dedicated(redis: Redis) -> Redis:
    """A client on one connection of its own, taken from `redis`'s pool; `aclose()` it.

    For the sources' writes, the feed's hot path: a pooled command checks the connection out
    and back in each time, with a lock and a readability probe (a syscall, slow on VMs), which
    cost 60-80 µs of client CPU per write here (bench/feed.py). Sharing it is safe: redis-py
    serializes callers on a single connection, and reconnects it after an outage.

    On a cluster, a second cluster client seeded from the same node: its connections are per
    node and per slot, so there is no one connection to pin.
    """
    if is_cluster(redis):
        node = cast(RedisCluster, redis).get_default_node()
        assert node is not None
        return cast(Redis, RedisCluster(host=node.host, port=node.port, decode_responses=True))
    return Redis(connection_pool=redis.connection_pool, single_connection_client=True)


def is_cluster(redis: Any) -> bool:
    return isinstance(redis, RedisCluster)
