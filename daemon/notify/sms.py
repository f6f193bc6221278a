"""SMS channel via Twilio's Messages API (the official `twilio` client, async transport).

One message per recipient, kept to `max_segments` segments (1 by default, at most 2) and so to a
known cost: the text is composed in `daemon.notify.sms_compose`, counted the way carriers bill it
in `daemon.notify.sms_segments` (both re-exported here).

A recipient who cannot be reached (unsubscribed, not a mobile) never stops the others; errors are
collected and raised once, after every recipient was tried. Recipients that got a notification,
or failed for good, are remembered per notification key for a while, so a retry after a partial
failure (say a 429 for the third number) texts only the numbers still owed, not everyone again.

Twilio's `Retry-After` (on a 429, or a 503) is honoured: `TwilioRestException` carries only the
status, code and message, so the headers come from the response our HTTP client saw last (sends
on one channel go one at a time, and the status is checked to match). The wait goes to the
delivery worker as `DeliveryError.retry_after`; the numbers not yet texted wait with it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import aiohttp
from pydantic import Field, SecretStr, field_validator
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from daemon.notify.base import (
    ChannelConfig,
    DeliveryError,
    Notification,
    Notifier,
    Receipt,
    retry_after_from,
)
from daemon.notify.sms_compose import sms_group_text, sms_notice, sms_provenance, sms_text
from daemon.notify.sms_segments import (
    SMS_MAXLEN,
    encoding_of,
    gsm7_length,
    segment_budget,
    segments,
    to_gsm7,
    ucs2_length,
)
from daemon.notify.sms_segments import Encoding as Encoding

__all__ = [
    "SMS_MAXLEN",
    "SmsConfig",
    "SmsNotifier",
    "encoding_of",
    "gsm7_length",
    "segment_budget",
    "segments",
    "sms_group_text",
    "sms_notice",
    "sms_provenance",
    "sms_text",
    "to_gsm7",
    "ucs2_length",
]

log = logging.getLogger("tickwatch.notify")

E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")

# Twilio error codes a retry cannot fix: what each means for the operator (PROTOCOLS.md §7.2).
_PERMANENT: Final[dict[int, str]] = {
    21211: "{to} is not a valid phone number (Twilio 21211); fix channels.{name}.to",
    21408: (
        "no permission to text {to}'s country (Twilio 21408); enable it under Messaging > "
        "Geo permissions in the Twilio console"
    ),
    21608: (
        "{to} is not a verified number on this trial account (Twilio 21608); verify it in the "
        "Twilio console or upgrade the account"
    ),
    21610: (
        "{to} has unsubscribed (replied STOP) (Twilio 21610); they must text START to the sender "
        "before they can get alerts again"
    ),
    21614: (
        "{to} cannot receive SMS, it is not a mobile number (Twilio 21614); fix channels.{name}.to"
    ),
}
_AUTH_FAILED: Final = 20003
_REMEMBER: Final = 1024  # alert ids whose per-recipient progress is kept for retries


class SmsConfig(ChannelConfig):
    """`channels.<name>` with `type: sms` in alerts.yaml (YAML `from` is `from_` here)."""

    type: Literal["sms"]
    account_sid: str = ""
    auth_token: SecretStr
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    base_url: str | None = None
    timeout: float = Field(default=10, gt=0)
    max_segments: int = Field(
        default=1, ge=1, le=2, description="Longest message, in SMS segments (each is billed)"
    )
    webhook_url: str | None = Field(
        None,
        description="The public URL Twilio posts replies to (the number's Messaging webhook, "
        "ending /hooks/twilio/sms), exactly as set in Twilio: signatures are checked against it",
    )

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _webhook(cls, v: Any) -> Any:
        if v in (None, ""):
            return None  # an empty ${TWILIO_WEBHOOK_URL:-}: the request's own URL is used
        if not str(v).startswith(("https://", "http://")):
            raise ValueError(f"webhook_url {v!r} is not a URL; write the one set in Twilio, "
                             "e.g. https://alerts.example.com/hooks/twilio/sms")  # fmt: skip
        return v

    @field_validator("from_")
    @classmethod
    def _check_from(cls, v: str) -> str:
        return _check_e164(v, "from")

    @field_validator("to")
    @classmethod
    def _check_to(cls, v: list[str]) -> list[str]:
        for number in v:
            _check_e164(number, "to")
        return list(dict.fromkeys(v))  # the same number twice would get every alert twice


def _check_e164(number: str, field: str) -> str:
    if not E164.match(number):
        raise ValueError(
            f"{field}: {number!r} is not a valid phone number; "
            "write numbers in E.164 form, e.g. +15551234567"
        )
    return number


class _HeaderAuthHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """twilio's async client, sending Basic auth as a header rather than aiohttp's `auth=`.

    twilio 9.13 passes `auth=BasicAuth(...)`, which aiohttp 3.14 deprecates (gone in 4.0); the
    header is the replacement aiohttp names. Same request on the wire; twilio's request log
    already leaves out `Authorization` headers.

    It also keeps the last response (`last_response`): twilio's exceptions drop the headers, and
    a 429's `Retry-After` is in them.
    """

    last_response: Response | None = None

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        if auth is not None:
            headers = {**(headers or {}), "Authorization": aiohttp.encode_basic_auth(*auth)}
        self.last_response = None
        response = await super().request(
            method, url, params, data, headers, None, timeout, allow_redirects
        )
        self.last_response = response
        return response


@dataclass(slots=True)
class _Failure:
    to: str
    message: str
    retryable: bool
    #: The next number would hit the same wall (bad credentials, rate limit, network down).
    stop: bool = False
    #: Seconds Twilio asked us to wait (`Retry-After`), None when it did not say.
    retry_after: float | None = None
    #: Short, for `tickwatch status`.
    reason: str = ""


class SmsNotifier(Notifier):
    """Texts each notification to every number in `to`, one Twilio message each."""

    kind: ClassVar[str] = "sms"
    config_model: ClassVar[type[ChannelConfig]] = SmsConfig
    body_maxlen: ClassVar[int] = 1600  # Twilio's cap; the segment budget is applied later
    title_maxlen: ClassVar[int] = 0  # an SMS has no subject line
    #: About one message per second per sending number (US long codes), with a short burst.
    rate_limit: ClassVar[float | None] = 1.0
    rate_burst: ClassVar[int] = 5
    required_fields: ClassVar[tuple[str, ...]] = ("account_sid",)
    config: SmsConfig

    def __init__(self, name: str, config: SmsConfig):
        if not isinstance(config, SmsConfig):
            raise TypeError(f"SmsNotifier needs an SmsConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self._client: Any = None  # twilio.rest.Client (the twilio package ships no types)
        self._http: _HeaderAuthHttpClient | None = None
        self._done: OrderedDict[str, set[str]] = OrderedDict()
        #: The phones that replied STOP (`Desk.opted_out`), set by the daemon: not texted until
        #: they reply START (Twilio would refuse them anyway, error 21610).
        self.opted_out: Callable[[], Awaitable[Collection[str]]] | None = None

    def _get_client(self) -> Any:
        """Create on first use: the async HTTP client opens an aiohttp session (needs a loop)."""
        if self._client is None:
            cfg = self.config
            self._http = _HeaderAuthHttpClient()
            client = Client(
                cfg.account_sid, cfg.auth_token.get_secret_value(), http_client=self._http
            )
            if cfg.base_url:
                client.api.base_url = cfg.base_url.rstrip("/")
            self._client = client
        return self._client

    def body(self, n: Notification) -> str:
        """The text every recipient gets, within the configured number of segments."""
        budget = self.config.max_segments
        if n.kind == "notice" or not n.alerts:
            return sms_notice(n.text, budget)
        if n.kind in ("group", "digest") or len(n.alerts) > 1:
            return sms_group_text(n.alerts, budget)
        return sms_text(n.alert, budget)

    def _pending(self, key: str) -> list[str]:
        done = self._done.get(key, set())
        return [to for to in self.config.to if to not in done]

    def messages_for(self, n: Notification) -> int:
        return len(self._pending(n.key))

    def preview(self, n: Notification) -> str:
        text = self.body(self.prepare(n))
        enc = encoding_of(text)
        return (
            f"{text}\n({len(text)} characters, {enc}, {segments(text)} segment(s) of at most "
            f"{self.config.max_segments}; to {len(self.config.to)} number(s))"
        )

    async def send(self, n: Notification) -> Receipt | None:
        body = self.body(n)
        client = self._get_client()
        done = self._done.setdefault(n.key, set())
        self._done.move_to_end(n.key)
        while len(self._done) > _REMEMBER:
            self._done.popitem(last=False)

        failures: list[_Failure] = []
        stopped = set(await self.opted_out()) if self.opted_out is not None else set()
        pending = [to for to in self.config.to if to not in done and to not in stopped]
        if stopped & set(self.config.to):
            log.info("sms channel %s: not texting %s (replied STOP; START resumes)", self.name,
                     ", ".join(sorted(stopped & set(self.config.to))))  # fmt: skip
        for i, to in enumerate(pending):
            try:
                async with asyncio.timeout(self.config.timeout):
                    await client.messages.create_async(to=to, from_=self.config.from_, body=body)
            except (TwilioRestException, TwilioServiceException) as e:
                failure = self._rest_failure(to, e)
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                reason = f"{type(e).__name__}: {e}".rstrip(": ")
                failure = _Failure(
                    to,
                    f"could not reach Twilio ({reason})",
                    True,
                    stop=True,
                    reason=f"could not reach Twilio ({type(e).__name__})",
                )
            else:
                done.add(to)
                continue
            failures.append(failure)
            if not failure.retryable:
                done.add(to)  # a retry would fail the same way
            if failure.stop:
                failures.extend(
                    _Failure(rest, "not attempted after the error above", failure.retryable)
                    for rest in pending[i + 1 :]
                )
                break

        if failures:
            raise self._summarize(failures, len(self.config.to))
        return None

    def _answer_headers(self, status: int) -> Mapping[str, str] | None:
        """The headers of the answer that raised (twilio's exceptions do not keep them)."""
        last = self._http.last_response if self._http is not None else None
        if last is None or last.status_code != status:
            return None
        return last.headers  # type: ignore[no-any-return]

    def _rest_failure(self, to: str, e: TwilioRestException | TwilioServiceException) -> _Failure:
        status = int(e.status)
        code = e.code if isinstance(e.code, int) else None
        retry_after = retry_after_from(self._answer_headers(status))
        wait = f"; Twilio asks to wait {retry_after:g}s" if retry_after is not None else ""
        if status == 429 or code == 20429:
            message = f"rate limited by Twilio (HTTP 429, code {code}){wait}"
            return _Failure(
                to, message, True, stop=True, retry_after=retry_after,
                reason="rate limited by Twilio",
            )  # fmt: skip
        if status >= 500:  # often one request's bad luck: still try the other numbers
            return _Failure(
                to, f"Twilio server error (HTTP {status}, code {code}){wait}", True,
                retry_after=retry_after, reason=f"Twilio server error (HTTP {status})",
            )  # fmt: skip
        if code == _AUTH_FAILED or status == 401:
            return _Failure(
                to,
                f"Twilio authentication failed (20003); check channels.{self.name}.account_sid "
                f"and auth_token",
                retryable=False,
                stop=True,
            )
        if code in _PERMANENT:
            return _Failure(to, _PERMANENT[code].format(to=to, name=self.name), False)
        detail = e.msg if isinstance(e, TwilioRestException) else (e.detail or e.title)
        return _Failure(
            to, f"Twilio refused the message (HTTP {status}, code {code}): {detail}", False
        )

    def _summarize(self, failures: list[_Failure], total: int) -> DeliveryError:
        retryable = any(f.retryable for f in failures)
        lines = "; ".join(f"{f.to}: {f.message}" for f in failures)
        waits = [f.retry_after for f in failures if f.retry_after is not None]
        reason = next((f.reason for f in failures if f.retry_after is not None), "") or next(
            (f.reason or f.message for f in failures if f.retryable), ""
        )
        return DeliveryError(
            f"SMS channel {self.name!r}: {len(failures)} of {total} recipient(s) not texted: "
            f"{lines}",
            retryable=retryable,
            retry_after=max(waits) if waits else None,
            reason=reason or None,
        )

    async def aclose(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()
