"""The REST sources' HTTP helpers: GET with retries and Retry-After, errors mapped, secrets cut.

Providers differ in URLs and payloads; what goes wrong is the same everywhere (a 429 with
Retry-After, a 5xx, a dropped connection, a wrong key) and is handled here once: waited out with
backoff when waiting helps, turned into a `FatalSourceError` naming the variable to check when it
cannot. aiohttp writes the full URL, `apikey=` query and all, into its exception text, so no
aiohttp exception text reaches a log or a message without `redact`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from daemon.sources.backoff import Backoff
from daemon.sources.base import FatalSourceError
from daemon.sources.redact import cut_keys, cut_secrets

__all__ = [
    "Answer",
    "Http",
    "NextPage",
    "PageParser",
    "PollError",
    "Throttled",
    "by_page_token",
    "describe_error",
    "pages",
    "parse_retry_after",
]

log = logging.getLogger("tickwatch.sources.rest")


class PollError(Exception):
    """A request or poll failed in a way waiting may fix. The message holds no secret."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(PollError):
    """The provider asked us to slow down (HTTP 429, or Alpha Vantage's HTTP 200 Note)."""


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (RFC 9110: delay-seconds or an HTTP date), None when absent/bad."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class Answer:
    """A 2xx answer's body. (Anything else became an exception in `Http.get`.)"""

    status: int
    text: str
    path: str


@dataclass
class Http:
    """GET with retries and the error mapping every provider shares; no I/O state of its own.

    `secrets` are scrubbed from every message this class (or its user, via `redact`) produces;
    `key_hint` says where the credentials come from, for the 401/403 message.
    """

    provider: str
    key_hint: str
    secrets: tuple[str, ...] = ()
    retries: int = 2
    backoff: Backoff = field(default_factory=Backoff)
    #: Longest wait inside one poll; a longer Retry-After ends the poll and pauses the poller.
    max_wait: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def redact(self, text: str) -> str:
        return cut_keys(cut_secrets(text, sorted(self.secrets, key=len, reverse=True)))

    async def get(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """The body of a 2xx answer. 401/403 → FatalSourceError; 429, 5xx and network errors
        are retried `retries` times, then raised as Throttled/PollError; other 4xx → PollError."""
        path = URL(url).path
        what = f"{self.provider} {path}"
        attempt = 0
        while True:
            error: PollError
            try:
                async with session.get(url, params=params, headers=headers) as resp:
                    status = resp.status
                    text = await resp.text(errors="replace")
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as e:
                # raised below `from None`: aiohttp's exception text holds the URL with the key
                error = PollError(f"{what}: {self.redact(describe_error(e))}")
            else:
                if 200 <= status < 300:
                    return Answer(status, text, path)
                detail = self.redact(_error_text(text))
                if status in (401, 403):
                    raise FatalSourceError(
                        f"{self.provider} refused the credentials (HTTP {status}"
                        f"{': ' + detail if detail else ''}); check {self.key_hint}"
                    )
                if status == 429:
                    error = Throttled(f"{what}: HTTP 429 (rate limited)", retry_after)
                elif status >= 500:
                    error = PollError(f"{what}: HTTP {status} {detail}".rstrip(), retry_after)
                else:
                    raise PollError(f"{what}: HTTP {status} {detail}".rstrip())
            wait = self.backoff.delay(attempt, error.retry_after)
            if attempt >= self.retries or wait > self.max_wait:
                raise error from None
            attempt += 1
            log.debug("%s; retry %d/%d in %.1fs", error, attempt, self.retries, wait)
            await self.sleep(wait)

    async def get_json(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        answer = await self.get(session, url, params=params, headers=headers)
        return self.json(answer)

    def json(self, answer: Answer) -> Any:
        try:
            return json.loads(answer.text)
        except ValueError:
            excerpt = self.redact(answer.text[:80])
            raise PollError(
                f"{self.provider} {answer.path}: answer is not JSON: {excerpt!r}"
            ) from None


#: What a page parser gives: the page's rows, how many it skipped as malformed, and where the
#: next page is (a token or a URL; None: this was the last).
PageParser = Callable[[Any], tuple[list[Any], int, str | None]]
#: From the request just made and the next page's pointer, the next request (url, params).
NextPage = Callable[[str, dict[str, str] | None, str], tuple[str, dict[str, str] | None]]


async def pages(
    http: Http,
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str] | None,
    *,
    headers: Mapping[str, str],
    parse: PageParser,
    follow: NextPage,
    what: str,
    max_pages: int,
) -> tuple[list[Any], int]:
    """Every page of a paged answer (Alpaca's `next_page_token`, Polygon's `next_url`):
    the rows and how many were skipped as malformed. A parser's ValueError and a pointer
    that never ends are `PollError`s that name `what` (e.g. "Alpaca /v2/stocks/bars")."""
    rows: list[Any] = []
    bad = 0
    for _ in range(max_pages):
        payload = await http.get_json(session, url, params=params, headers=headers)
        try:
            page, page_bad, nxt = parse(payload)
        except ValueError as e:
            raise PollError(f"{what}: {e}") from None
        rows.extend(page)
        bad += page_bad
        if nxt is None:
            return rows, bad
        url, params = follow(url, params, nxt)
    raise PollError(f"{what}: more than {max_pages} pages; narrow the request")


def by_page_token(
    url: str, params: dict[str, str] | None, token: str
) -> tuple[str, dict[str, str]]:
    """Alpaca's paging: the same request, with `page_token`."""
    return url, {**(params or {}), "page_token": token}


def describe_error(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _error_text(body: str) -> str:
    """The `message`/`error` of a JSON error body, else the body's start (HTML pages: nothing)."""
    try:
        data = json.loads(body)
    except ValueError:
        return "" if body.lstrip().startswith("<") else body.strip()[:200]
    if isinstance(data, dict):
        for key in ("message", "error", "Error Message", "msg"):
            if isinstance(data.get(key), str):
                return str(data[key])[:200]
    return body.strip()[:200]
