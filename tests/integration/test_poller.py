"""The shared REST poller base: retries, Retry-After, fatal credentials, redaction, scheduling."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import SecretStr
from redis.asyncio import Redis

from daemon.sources.base import FatalSourceError, Source, SourceContext
from daemon.sources.normalize import EdgeFilter
from daemon.sources.poller import (
    Backoff,
    Http,
    Poller,
    PollerConfig,
    PollError,
    Provider,
    Throttled,
    parse_retry_after,
)
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.fakes.rest_providers import DEFAULT_AV_KEY, FakeAlpacaData, FakeAlphaVantage
from tests.helpers import wait_until

SECRET = "s3cr3t-KEY-0042"


class Sleeps:
    """Stands in for asyncio.sleep: records the waits, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def http(sleeps: Sleeps | None = None, retries: int = 2, secrets: tuple[str, ...] = ()) -> Http:
    return Http(
        provider="Alpha Vantage",
        key_hint="api_key (usually $ALPHAVANTAGE_API_KEY)",
        secrets=secrets,
        retries=retries,
        sleep=sleeps or Sleeps(),
    )


# --- pure pieces ------------------------------------------------------------------------------


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    b = Backoff(base=1.0, cap=8.0)
    for attempt, full in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (10, 8.0)]:
        waits = [b.delay(attempt) for _ in range(50)]
        assert all(full / 2 <= w <= full for w in waits)
        assert len(set(waits)) > 1  # jittered
    assert b.delay(5, retry_after=42.0) == 42.0  # the server's word, even above the cap


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("-3") == 0.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 85 <= (parse_retry_after(later) or 0) <= 90
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_redact_scrubs_secrets_query_keys_and_quoted_keys() -> None:
    h = http(secrets=(SECRET,))
    text = (
        f"url='http://x/query?function=NEWS&apikey=OTHERKEY123&token=abc' {SECRET} "
        "We have detected your API key as QWERTY12345 and ..."
    )
    out = h.redact(text)
    for leaked in (SECRET, "OTHERKEY123", "abc'", "QWERTY12345"):
        assert leaked not in out
    assert "apikey=***" in out and "function=NEWS" in out


# --- Http.get over real HTTP ------------------------------------------------------------------


async def test_429_retry_after_is_honoured_then_succeeds(
    alphavantage_rest: FakeAlphaVantage,
) -> None:
    alphavantage_rest.rate_limit(retry_after=2, times=1)
    sleeps = Sleeps()
    async with aiohttp.ClientSession() as session:
        payload = await http(sleeps).get_json(
            session,
            f"{alphavantage_rest.base_url}/query",
            params={"function": "NEWS_SENTIMENT", "apikey": DEFAULT_AV_KEY},
        )
    assert sleeps.waits == [2.0]
    assert payload["feed"] == []
    assert [r.status for r in alphavantage_rest.requests] == [429, 200]


async def test_5xx_retried_with_backoff_then_given_up(alphavantage_rest: FakeAlphaVantage) -> None:
    alphavantage_rest.server_error(503, times=5)
    sleeps = Sleeps()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PollError, match="HTTP 503") as err:
            await http(sleeps, retries=2).get(
                session, f"{alphavantage_rest.base_url}/query", params={"apikey": DEFAULT_AV_KEY}
            )
    assert len(sleeps.waits) == 2 and sleeps.waits[1] > sleeps.waits[0] / 2
    assert not isinstance(err.value, Throttled)
    assert "<html" not in str(err.value)  # a proxy's error page is not the message
    assert len(alphavantage_rest.requests) == 3


async def test_long_retry_after_ends_the_poll_instead_of_sleeping(
    alphavantage_rest: FakeAlphaVantage,
) -> None:
    alphavantage_rest.rate_limit(retry_after=600)
    sleeps = Sleeps()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(Throttled) as err:
            await http(sleeps).get(
                session, f"{alphavantage_rest.base_url}/query", params={"apikey": DEFAULT_AV_KEY}
            )
    assert err.value.retry_after == 600 and sleeps.waits == []


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"wrong": "1"}, 403)])
async def test_401_403_are_fatal_and_name_the_variable(
    alpaca_rest: FakeAlpacaData, headers: dict[str, str], status: int
) -> None:
    sent = {"APCA-API-KEY-ID": SECRET, "APCA-API-SECRET-KEY": "also-secret-999"} if headers else {}
    h = Http("Alpaca", "key_id and secret_key (usually $APCA_API_KEY_ID)", (SECRET,))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(FatalSourceError) as err:
            await h.get(session, f"{alpaca_rest.base_url}/v2/stocks/bars", headers=sent)
    msg = str(err.value)
    assert f"HTTP {status}" in msg and "$APCA_API_KEY_ID" in msg and SECRET not in msg


async def test_connection_errors_never_carry_the_key_in_the_message() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PollError) as err:
            await http(sleeps, retries=1, secrets=(SECRET,)).get(
                session, f"http://127.0.0.1:{port}/query", params={"apikey": SECRET}
            )
    assert SECRET not in str(err.value) and "/query" in str(err.value)
    assert err.value.__suppress_context__  # the aiohttp error (URL with the key) is not shown
    assert len(sleeps.waits) == 1


# --- the Poller -------------------------------------------------------------------------------


class ScriptedConfig(PollerConfig):
    type: Literal["scripted"] = "scripted"
    api_key: SecretStr = SecretStr(SECRET)


class ScriptedPoller(Poller):
    """A poller whose `poll` raises what the test queued (or succeeds)."""

    kind = "scripted"
    config_model = ScriptedConfig
    provider_info = Provider("Example", "http://127.0.0.1:9", ("EXAMPLE_API_KEY",))
    retry_base = 10.0

    def __init__(self, config: ScriptedConfig, ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self.script: list[BaseException | None] = []

    async def poll(self) -> None:
        step = self.script.pop(0) if self.script else None
        if step is not None:
            raise step


class Recorder:
    def __init__(self) -> None:
        self.ops: list[tuple[str, Mapping[str, str]]] = []
        self.fatal: list[str] = []

    async def on_ops(self, summary: str, labels: Mapping[str, str]) -> None:
        self.ops.append((summary, labels))

    def on_fatal(self, source: Source, error: FatalSourceError) -> None:
        self.fatal.append(str(error))


def scripted(redis: Redis, keys: Keys, rec: Recorder, **cfg: Any) -> ScriptedPoller:
    ctx = SourceContext(
        StreamStore(redis, keys), EdgeFilter(frozenset({"AAA"})), Path("."),
        symbols=frozenset({"AAA"}), ops=rec.on_ops, on_fatal=rec.on_fatal,
    )  # fmt: skip
    return ScriptedPoller(ScriptedConfig(name="scripted", **cfg), ctx)


async def test_interval_job_runs_at_once_never_overlaps_and_a_failure_moves_it(
    redis: Redis, keys: Keys
) -> None:
    rec = Recorder()
    src = scripted(redis, keys, rec, interval="1h", max_backoff="10m")
    src.script = [Throttled("slow down", retry_after=120)]
    scheduler = AsyncIOScheduler(timezone="UTC")
    src.schedule(scheduler)
    job = scheduler.get_job(src.job_id)
    assert job.max_instances == 1 and job.coalesce is True
    assert job.trigger.interval == timedelta(hours=1)
    scheduler.start()
    try:
        await wait_until(lambda: src.polls >= 1, timeout=5, what="the first poll")
        await wait_until(lambda: src.pause_s is not None, timeout=5, what="the pause")
        # honoured Retry-After: the next poll is in 120 s, not in an hour
        delay = (scheduler.get_job(src.job_id).next_run_time - datetime.now(UTC)).total_seconds()
        assert 110 < delay <= 120
    finally:
        scheduler.shutdown(wait=False)


async def test_failures_back_off_exponentially_then_ops_alert_then_recover(
    redis: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    src = scripted(redis, keys, rec, max_backoff="1m")
    src.script = [PollError("boom")] * 4
    pauses = []
    for _ in range(4):
        assert await src.poll_once() is False
        pauses.append(src.pause_s)
    assert 5 <= pauses[0] <= 10 and 10 <= pauses[1] <= 20 and pauses[3] == pytest.approx(60, 0.5)
    assert len(rec.ops) == 1 and "3 polls of Example failed" in rec.ops[0][0]
    assert rec.ops[0][1] == {"source": "scripted", "provider": "Example"}
    with caplog.at_level(logging.INFO, "tickwatch.sources.rest"):
        assert await src.poll_once() is True
    assert src.failures == 0 and "answers again after 4 failed poll(s)" in caplog.text


async def test_throttling_is_logged_once_per_episode(
    redis: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    src = scripted(redis, keys, rec)
    src.script = [Throttled("provider says slow down")] * 3
    with caplog.at_level(logging.DEBUG, "tickwatch.sources.rest"):
        for _ in range(3):
            await src.poll_once()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and not rec.ops  # throttling is not an outage


async def test_fatal_error_stops_the_poller_and_reaches_the_daemon(
    redis: Redis, keys: Keys
) -> None:
    rec = Recorder()
    src = scripted(redis, keys, rec)
    scheduler = AsyncIOScheduler(timezone="UTC")
    src.schedule(scheduler)
    src.script = [FatalSourceError("Example refused the credentials; check $EXAMPLE_API_KEY")]
    assert await src.poll_once() is False
    assert rec.fatal == ["Example refused the credentials; check $EXAMPLE_API_KEY"]
    assert scheduler.get_job(src.job_id) is None
    assert await src.poll_once() is False and src.polls == 1  # stopped: no more polls


async def test_empty_key_is_fatal_with_the_variable_to_export(redis: Redis, keys: Keys) -> None:
    rec = Recorder()
    src = scripted(redis, keys, rec, api_key="")
    assert await src.poll_once() is False
    assert rec.fatal and "export EXAMPLE_API_KEY" in rec.fatal[0]


def test_key_hint_names_the_field_the_source_and_the_variable(redis: Redis, keys: Keys) -> None:
    src = scripted(redis, keys, Recorder())
    assert src.http.key_hint == (
        "api_key of source 'scripted' in alerts.yaml (usually $EXAMPLE_API_KEY)"
    )
    assert src.http.secrets == (SECRET,)


# --- alerts.yaml ------------------------------------------------------------------------------

ALERTS = """\
groups:
  megas: [AAPL, NVDA]
sources:
  - name: av-news
    type: alphavantage_news
    api_key: ${ALPHAVANTAGE_API_KEY}
    scope: market
    interval: 1h
    topics: [earnings, technology]
  - name: earnings
    type: earnings_calendar
    provider: finnhub
    api_key: ${FINNHUB_API_KEY}
  - name: warmup
    type: alpaca_backfill
    key_id: ${APCA_API_KEY_ID}
    secret_key: ${APCA_API_SECRET_KEY}
    lookback: 90m
channels:
  console: {type: console}
"""


def test_the_new_source_types_load_from_alerts_yaml_with_secrets_masked(tmp_path: Path) -> None:
    from daemon.config import load_config
    from daemon.sources.registry import BUILTIN_SOURCES

    (tmp_path / "alerts.yaml").write_text(ALERTS)
    env = {"ALPHAVANTAGE_API_KEY": "AVKEY-abc-123", "FINNHUB_API_KEY": "FHKEY-def-456",
           "APCA_API_KEY_ID": "PKID-789", "APCA_API_SECRET_KEY": "APSECRET-000"}  # fmt: skip
    cfg = load_config(tmp_path / "alerts.yaml", env=env)
    av, cal, warm = cfg.settings.sources
    assert (av.type, cal.type, warm.type) == ("alphavantage_news", "earnings_calendar",
                                              "alpaca_backfill")  # fmt: skip
    assert av.api_key.get_secret_value() == "AVKEY-abc-123"  # type: ignore[attr-defined]
    assert av.interval == timedelta(hours=1)  # type: ignore[attr-defined]
    assert cal.interval == timedelta(hours=6)  # type: ignore[attr-defined]
    assert warm.lookback == timedelta(minutes=90)  # type: ignore[attr-defined]
    dumped = repr(cfg.dump())
    assert not any(secret in dumped for secret in env.values())
    assert {"alphavantage_news", "earnings_calendar", "alpaca_backfill"} <= set(BUILTIN_SOURCES)


def test_redact_keeps_ordinary_words_after_api_key() -> None:
    text = "the parameter apikey is invalid or missing"
    assert http(secrets=(SECRET,)).redact(text) == text
