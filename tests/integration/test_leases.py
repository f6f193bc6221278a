"""The primary lease: one holder at a time, renewals only by the holder, and commits fenced so
a paused old holder cannot write over the one that took over (real Redis, and the cluster)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from daemon.store import Keys, Lease, LeaseLost, StateStore, connect
from tests.cluster import RedisClusterServers
from tests.helpers import make_alert


async def test_one_holder_renewals_by_it_only_and_release_frees_it(
    redis: Redis, keys: Keys
) -> None:
    a = Lease(redis, keys.lease("primary"), "a", 5000)
    b = Lease(redis, keys.lease("primary"), "b", 5000)
    assert await a.take() and not await b.take()
    holder, left = await b.holder()
    assert holder == "a" and 0 < left <= 5000
    assert await a.renew() and not await b.renew()
    await b.release()  # not b's: nothing happens
    assert (await a.holder())[0] == "a"
    await a.release()
    assert await b.take() and (await a.holder())[0] == "b"


async def test_a_commit_under_a_lost_lease_is_refused_and_writes_nothing(
    redis: Redis, keys: Keys
) -> None:
    old = Lease(redis, keys.lease("primary"), "old", 5000)
    assert await old.take()
    state = StateStore(redis, keys)
    state.lease = old
    await state.commit(states={"k1": "{}"}, checkpoint={}, alerts=[make_alert()], acks={})
    assert await redis.hget(keys.alert_state, "k1") == "{}"
    # `old` pauses past its TTL; `new` takes over
    await redis.delete(keys.lease("primary"))
    assert await Lease(redis, keys.lease("primary"), "new", 5000).take()
    with pytest.raises(LeaseLost, match="no longer held by old"):
        await state.commit(states={"k2": "{}"}, checkpoint={}, alerts=[make_alert()], acks={})
    assert await redis.hget(keys.alert_state, "k2") is None
    assert await redis.xlen(keys.outbox) == 1  # only the first commit's alert


@pytest.mark.slow
async def test_fenced_commits_work_on_a_cluster(
    redis_cluster: RedisClusterServers, keys: Keys
) -> None:
    r = connect(redis_cluster.url)
    try:
        lease = Lease(r, keys.lease("primary"), "a", 5000)
        assert await lease.take()
        state = StateStore(r, keys)
        state.lease = lease
        await state.commit(states={"k": "{}"}, checkpoint={"t": "1"}, alerts=[make_alert()],
                           acks={})  # fmt: skip
        assert await r.hget(keys.alert_state, "k") == "{}"
    finally:
        await r.aclose()
