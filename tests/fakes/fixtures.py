"""Pytest fixtures for the loopback fakes; `tests/conftest.py` does `from ... import *`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from redis.asyncio import Redis

from daemon.store.keys import Keys
from tests.fakes.rest_providers import FakeAlpacaData, FakeAlphaVantage, FakeFinnhub
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer
from tests.fakes.webhook_server import FakeWebhookServer
from tests.fakes.ws_feeds import FakeAlpacaServer, FakeFinnhubServer, FakePolygonServer
from tests.feed_harness import FeedHarness

__all__ = [
    "alpaca_rest",
    "alpaca_server",
    "alphavantage_rest",
    "feed_harness",
    "finnhub_rest",
    "finnhub_server",
    "polygon_server",
    "slack_server",
    "twilio_server",
    "webhook_server",
]


@pytest_asyncio.fixture
async def slack_server() -> AsyncIterator[FakeSlackServer]:
    """A started fake Slack Web API; `.base_url`, `.token`, `.requests`, failure injection."""
    async with FakeSlackServer() as server:
        yield server


@pytest_asyncio.fixture
async def twilio_server() -> AsyncIterator[FakeTwilioServer]:
    """A started fake Twilio Messages API; `.base_url`, `.account_sid`, `.auth_token`, `.sent`."""
    async with FakeTwilioServer() as server:
        yield server


@pytest_asyncio.fixture
async def webhook_server() -> AsyncIterator[FakeWebhookServer]:
    """A started fake webhook receiver that verifies the signature (`.url`, `.secret`)."""
    async with FakeWebhookServer() as server:
        yield server


@pytest_asyncio.fixture
async def alpaca_server() -> AsyncIterator[FakeAlpacaServer]:
    """A started fake Alpaca stream (`.stocks_url(feed)`, `.news_url`), one session per key."""
    async with FakeAlpacaServer() as server:
        yield server


@pytest_asyncio.fixture
async def polygon_server() -> AsyncIterator[FakePolygonServer]:
    """A started fake Polygon stocks cluster (`.stocks_url`, `.api_key`)."""
    async with FakePolygonServer() as server:
        yield server


@pytest_asyncio.fixture
async def finnhub_server() -> AsyncIterator[FakeFinnhubServer]:
    """A started fake Finnhub trades websocket (`.url()`, `.token` checked at the upgrade)."""
    async with FakeFinnhubServer() as server:
        yield server


@pytest_asyncio.fixture
async def feed_harness(redis: Redis, keys: Keys) -> AsyncIterator[FeedHarness]:
    """Runs live feed sources against the real Redis; records ops alerts and fatal errors."""
    harness = FeedHarness(redis, keys)
    yield harness
    await harness.stop()


@pytest_asyncio.fixture
async def alphavantage_rest() -> AsyncIterator[FakeAlphaVantage]:
    """A started fake Alpha Vantage `/query` (`.news`, `.earnings_csv`, `.api_key`, throttling)."""
    async with FakeAlphaVantage() as server:
        yield server


@pytest_asyncio.fixture
async def finnhub_rest() -> AsyncIterator[FakeFinnhub]:
    """A started fake Finnhub REST API (`.calendar` rows, `.token`, `.base_url` = .../api/v1)."""
    async with FakeFinnhub() as server:
        yield server


@pytest_asyncio.fixture
async def alpaca_rest() -> AsyncIterator[FakeAlpacaData]:
    """A started fake Alpaca market data REST API (`.bars`, `.key_id`, `.secret_key`)."""
    async with FakeAlpacaData() as server:
        yield server
