"""The dead-man's switch: a GET to an external URL every minute while the daemon is healthy.

`deadman: {url: "${DEADMAN_URL}"}` in alerts.yaml, for healthchecks.io, Dead Man's Snitch,
Cronitor or an Uptime Kuma push monitor (as Prometheus's Watchdog alert feeds one): the service
raises the alarm when the pings stop, so a daemon that died, hangs, or lost Redis is noticed by
someone even though it can no longer say so itself. Each ping is a plain GET with no body (every
such service takes one); an answer of 2xx counts, anything else is a failure. The ping is sent
only while `/healthz` would say the daemon is up and Redis answers (`daemon.web.health.health`, the
same verdict, handed in as `HealthCheck`), and it runs on the daemon's event loop, so a wedged
loop, a failed stage or a lost Redis all stop it. The URL carries the check's token: it is a
`SecretStr`, and logs name its host only. A failing or slow endpoint costs at most `timeout`
per ping and is logged once per streak of failures, and once when it recovers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from daemon import __version__
from daemon.durations import Duration, format_duration

__all__ = ["Deadman", "DeadmanSettings", "HealthCheck"]

log = logging.getLogger("tickwatch.deadman")

#: The shortest interval allowed (tests use it; a service wants minutes).
MIN_EVERY = timedelta(seconds=1)

#: `daemon.web.health.health` bound to the daemon: what `/healthz` would answer, (status, body).
HealthCheck = Callable[[], Awaitable[tuple[int, Mapping[str, Any]]]]


class DeadmanSettings(BaseModel):
    """`deadman:` in alerts.yaml: ping `url` every `every` while the daemon is healthy."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr | None = Field(
        None,
        description="The check's ping URL, e.g. https://hc-ping.com/<uuid> (from ${ENV}: it "
        "carries the check's token; only its host is ever logged); empty: off",
    )
    every: Duration = Field(
        default=timedelta(minutes=1), description="How often to ping (1s or more)"
    )
    timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="How long one ping may take, health check included; less than `every`",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _http_url(cls, v: Any) -> Any:
        if isinstance(v, SecretStr):
            v = v.get_secret_value()
        if v in ("", None):  # unset, or an empty ${DEADMAN_URL:-}
            return None
        parts = urlsplit(str(v).strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # never echo the value: it is a secret
            scheme = f"{parts.scheme}:" if parts.scheme else "no scheme"
            raise ValueError(
                f"the dead-man's switch URL is not an http(s) URL ({scheme}); write e.g. "
                "https://hc-ping.com/<your-check-uuid>"
            )
        return str(v).strip()

    @model_validator(mode="after")
    def _timing(self) -> Self:
        if self.every < MIN_EVERY:
            raise ValueError(f"every: {format_duration(self.every)} is too often; write 1s or more")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout: must be more than 0, e.g. 10s")
        if self.timeout >= self.every:
            raise ValueError(
                f"timeout ({format_duration(self.timeout)}) must be shorter than every "
                f"({format_duration(self.every)}), so one slow ping never overlaps the next"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @property
    def host(self) -> str:
        """The URL's host (and port), the only part of it fit for a log line."""
        assert self.url is not None
        return urlsplit(self.url.get_secret_value()).netloc.rpartition("@")[2]


class Deadman:
    """The pinger: `ping()` once per interval (the `deadman` job of `schedule.Jobs`)."""

    def __init__(self, settings: DeadmanSettings, health: HealthCheck) -> None:
        if settings.url is None:
            raise ValueError("the dead-man's switch has no url")
        self.settings = settings
        self.health = health
        self._url = settings.url.get_secret_value()
        self.host = settings.host
        #: Pings answered 2xx, pings that failed, and turns skipped because the daemon was not
        #: healthy (for tests and `status`).
        self.sent = 0
        self.failed = 0
        self.skipped = 0
        self._failing = 0  # consecutive failures: the first is logged, then silence
        self._unhealthy = False

    @property
    def every_s(self) -> float:
        return self.settings.every.total_seconds()

    async def ping(self) -> bool:
        """One turn: GET the URL if the daemon is healthy. Never raises (but CancelledError);
        the health check and the GET together take at most `timeout`. True when a ping was
        answered 2xx."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout.total_seconds()
        try:
            async with asyncio.timeout_at(deadline):
                reason = await self._unhealthy_reason()
        except TimeoutError:
            reason = "the health check did not answer in time"
        if reason is not None:
            self._skip(reason)
            return False
        if self._unhealthy:
            self._unhealthy = False
            log.info("deadman: the daemon is healthy again; pinging %s", self.host)
        try:
            async with asyncio.timeout_at(deadline):
                status = await self._get(max(deadline - loop.time(), 0.001))
        except TimeoutError:
            self._fail(f"no answer within {format_duration(self.settings.timeout)}")
            return False
        except Exception as e:  # a failing endpoint must never stop the job or the daemon
            self._fail(self._describe(e))
            return False
        if not 200 <= status < 300:
            self._fail(f"HTTP {status}")
            return False
        self.sent += 1
        if self._failing:
            log.info("deadman: ping to %s recovered after %d failure(s)", self.host, self._failing)
            self._failing = 0
        return True

    async def _unhealthy_reason(self) -> str | None:
        """Why the daemon should not ping (None: it should): `/healthz`'s own verdict, not
        200, or Redis not answering (200 "degraded": the stages retry, but nothing works)."""
        try:
            status, body = await self.health()
        except Exception as e:
            return f"the health check failed: {type(e).__name__}"
        if status == 200 and body.get("redis") == "ok":
            return None
        problems = [str(p) for p in body.get("problems", ()) if not str(p).startswith("feed ")]
        return "; ".join(problems) or f"/healthz says {body.get('status', status)}"

    async def _get(self, timeout: float) -> int:
        import aiohttp  # only a daemon with a dead-man's switch needs it at this point

        client_timeout = aiohttp.ClientTimeout(total=timeout)
        headers = {"User-Agent": f"tickwatch/{__version__} (dead-man's switch)"}
        async with (
            aiohttp.ClientSession(timeout=client_timeout, headers=headers) as session,
            session.get(self._url, allow_redirects=True) as resp,
        ):
            await resp.read()
            return resp.status

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        if not self._unhealthy:
            self._unhealthy = True
            log.warning(
                "deadman: not pinging %s while the daemon is unhealthy (%s): the service will "
                "raise the alarm if this lasts",
                self.host,
                reason,
            )

    def _fail(self, reason: str) -> None:
        self.failed += 1
        self._failing += 1
        if self._failing == 1:
            log.warning(
                "deadman: ping to %s failed (%s); retrying every %s, logged again when it recovers",
                self.host,
                reason,
                format_duration(self.settings.every),
            )

    def _describe(self, e: Exception) -> str:
        """An exception as a log line's reason, with the URL's secret parts cut out (aiohttp
        puts the whole URL into some of its messages)."""
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        parts = urlsplit(self._url)
        tokens = {s for s in (*parts.path.split("/"), *parts.query.split("&")) if len(s) >= 8}
        for secret in sorted({self._url, parts.path, parts.query, *tokens}, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text[:200]
