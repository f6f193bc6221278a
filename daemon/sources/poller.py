"""The `RestSource` base of REST sources and `Poller`, its scheduled, self-pausing variant.

`RestSource` is the plumbing (also used by the one-shot Alpaca backfill): the session, the
credentials, the provider; the HTTP itself is `rest.Http`'s. `Poller` adds the APScheduler
interval job and the pause after failures. Pollers keep no state between polls except what they
save with `emit(..., cursor=...)`, so a restart resumes where the last poll ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from abc import abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import aiohttp
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import Field, SecretStr, field_validator

from daemon.durations import Duration
from daemon.sources.backoff import Backoff
from daemon.sources.base import FatalSourceError, Source, SourceConfig, SourceContext
from daemon.sources.rest import (
    Answer,
    Http,
    PollError,
    Throttled,
    describe_error,
    parse_retry_after,
)
from daemon.store import REDIS_DOWN

__all__ = [  # the names sources and tests import from here, wherever they live
    "Answer",
    "Backoff",
    "Http",
    "PollError",
    "Poller",
    "PollerConfig",
    "Provider",
    "RestConfig",
    "RestSource",
    "Throttled",
    "count_into",
    "now_ms",
    "parse_retry_after",
]

log = logging.getLogger("tickwatch.sources.rest")

_OPS_AFTER = 3  # consecutive failed polls (not throttling) before the ops channels hear of it


@dataclass(frozen=True, slots=True)
class Provider:
    """Who a source talks to: the name in messages, the default URL, the usual env vars."""

    name: str
    base_url: str
    key_env: tuple[str, ...]


class RestConfig(SourceConfig):
    base_url: str | None = Field(
        None, description="Provider URL override (a proxy, or a local fake in tests)"
    )
    timeout: Duration = Field(
        default=timedelta(seconds=30), description="Per request, connect to last byte"
    )
    retries: int = Field(
        2, ge=0, le=10, description="Retries within one poll on HTTP 429, 5xx and network errors"
    )
    tickers: list[str] | None = Field(
        None,
        description="Only these of the symbols the rules need (default: all the rules need)",
    )

    @field_validator("timeout")
    @classmethod
    def _positive(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("timeout must be positive, e.g. 30s")
        return v

    @field_validator("tickers")
    @classmethod
    def _upper(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [t.strip().upper() for t in v if t.strip()]


class RestSource(Source):
    """A source that calls a REST API: the session, the credentials, the error mapping."""

    provider_info: ClassVar[Provider]
    config: RestConfig

    def __init__(self, config: RestConfig, ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self.provider = self.pick_provider()
        self.http = Http(
            provider=self.provider.name,
            key_hint=self.key_hint(),
            secrets=tuple(v.get_secret_value() for _, v in self._secret_fields()),
            retries=config.retries,
        )
        self._session: aiohttp.ClientSession | None = None

    def pick_provider(self) -> Provider:
        return self.provider_info

    def _secret_fields(self) -> list[tuple[str, SecretStr]]:
        return [(name, v) for name, v in self.config if isinstance(v, SecretStr)]

    def key_hint(self) -> str:
        fields = " and ".join(name for name, _ in self._secret_fields()) or "the credentials"
        env = " / ".join(f"${e}" for e in self.provider.key_env)
        return f"{fields} of source {self.name!r} in alerts.yaml (usually {env})"

    def check_secrets(self) -> None:
        """An empty key is a configuration mistake, not a provider error: say what to export."""
        empty = [name for name, v in self._secret_fields() if not v.get_secret_value()]
        if empty:
            env = " / ".join(self.provider.key_env)
            raise FatalSourceError(
                f"{' and '.join(empty)} of source {self.name!r} is empty: export {env} "
                f"(or set enabled: false on the source)"
            )

    @property
    def base_url(self) -> str:
        return (self.config.base_url or self.provider.base_url).rstrip("/")

    def session(self) -> aiohttp.ClientSession:
        """One session per source, created on first use inside the running event loop."""
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout.total_seconds())
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def wanted_symbols(self) -> list[str]:
        """The symbols the rules need, narrowed by `tickers:` when given, sorted."""
        wanted = set(self.ctx.symbols)
        if self.config.tickers is not None:
            wanted &= set(self.config.tickers)
        return sorted(wanted)


class PollerConfig(RestConfig):
    interval: Duration = Field(default=timedelta(minutes=15), description="Time between polls")
    max_backoff: Duration = Field(
        default=timedelta(hours=1),
        description="Longest pause after failed polls or provider throttling",
    )

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: timedelta) -> timedelta:
        if v < timedelta(seconds=1):
            raise ValueError("interval must be at least 1s, e.g. 5m")
        return v


class Poller(RestSource):
    """A REST source polled on an APScheduler interval job; `poll()` does one round.

    A failed poll pauses the poller: exponential backoff across polls (starting at
    `retry_base` seconds, capped at `max_backoff`), or exactly what the provider's Retry-After
    asked. The pause moves the job's next run, so it can come sooner than the interval (a
    6-hourly calendar retries within a minute) or later (a throttled poller skips runs).
    """

    config: PollerConfig
    retry_base: ClassVar[float] = 30.0

    def __init__(self, config: PollerConfig, ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self.backoff = Backoff(self.retry_base, config.max_backoff.total_seconds())
        self.polls = 0
        self.failures = 0  # consecutive failed polls
        self.malformed = 0  # provider items skipped because they could not be read
        self.last_error: str | None = None
        self.pause_s: float | None = None  # the pause chosen after the last failed poll
        self._scheduler: AsyncIOScheduler | None = None
        self._throttle_logged = False
        self._ops_told = False
        self._stopped = False

    @property
    def job_id(self) -> str:
        return f"source:{self.name}"

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        """First poll right away, then every `interval`; never two polls at once."""
        self._scheduler = scheduler
        scheduler.add_job(
            self.poll_once,
            "interval",
            seconds=self.config.interval.total_seconds(),
            id=self.job_id,
            name=f"source {self.name}",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def run(self) -> None:
        await self.poll_once()

    @abstractmethod
    async def poll(self) -> None:
        """One round: fetch, map, `emit` (or write). Raise PollError/Throttled on failure."""

    async def poll_once(self) -> bool:
        """One scheduled poll; True when it worked. Never raises (the scheduler would only log
        it): failures become a pause, a FatalSourceError stops the poller and the daemon."""
        if self._stopped:
            return False
        self.polls += 1
        try:
            self.check_secrets()
            await self.poll()
        except asyncio.CancelledError:
            raise
        except FatalSourceError as e:
            self._stopped = True
            self._unschedule()
            self.ctx.on_fatal(self, e)
        except PollError as e:
            await self._failed(e)
        except REDIS_DOWN as e:
            await self._failed(PollError(f"cannot write to Redis ({describe_error(e)})"))
        except Exception as e:
            tb = self.http.redact(traceback.format_exc())
            log.error("source %s: poll failed on an unexpected error:\n%s", self.name, tb)
            await self._failed(PollError(self.http.redact(describe_error(e))))
        else:
            self._succeeded()
            return True
        return False

    async def _failed(self, error: PollError) -> None:
        self.failures += 1
        self.last_error = str(error)
        pause = min(
            self.backoff.delay(self.failures - 1, error.retry_after),
            max(self.config.max_backoff.total_seconds(), error.retry_after or 0.0),
        )
        self.pause_s = pause
        self._reschedule(pause)
        if isinstance(error, Throttled):
            level = logging.DEBUG if self._throttle_logged else logging.WARNING
            self._throttle_logged = True
            log.log(level, "source %s: %s; next poll in %.0fs", self.name, error, pause)
            return
        log.warning("source %s: poll failed: %s; next poll in %.0fs", self.name, error, pause)
        if self.failures >= _OPS_AFTER and not self._ops_told:
            self._ops_told = True
            summary = (
                f"source {self.name}: {self.failures} polls of {self.provider.name} failed "
                f"in a row ({error}); still retrying"
            )
            try:
                await self.ctx.ops(summary, {"source": self.name, "provider": self.provider.name})
            except Exception:
                log.warning("source %s: could not raise the ops alert", self.name)

    def _succeeded(self) -> None:
        if self.failures:
            log.info(
                "source %s: %s answers again after %d failed poll(s)",
                self.name,
                self.provider.name,
                self.failures,
            )
        self.failures = 0
        self.last_error = None
        self.pause_s = None
        self._throttle_logged = False
        self._ops_told = False

    def _reschedule(self, pause: float) -> None:
        if self._scheduler is None:
            return
        with contextlib.suppress(JobLookupError):
            self._scheduler.modify_job(
                self.job_id, next_run_time=datetime.now(UTC) + timedelta(seconds=pause)
            )

    def _unschedule(self) -> None:
        if self._scheduler is None:
            return
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(self.job_id)


def count_into(counts: dict[str, int] | None, reason: str, n: int) -> None:
    """Add `n` to `counts[reason]` when a counter was given (fetchers report skipped rows)."""
    if counts is not None and n:
        counts[reason] = counts.get(reason, 0) + n


def now_ms() -> int:
    return int(time.time() * 1000)
