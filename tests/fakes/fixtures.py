"""Pytest fixtures for the loopback fakes; `tests/conftest.py` does `from ... import *`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.twilio_server import FakeTwilioServer

__all__ = ["slack_server", "twilio_server"]


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
