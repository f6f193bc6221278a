"""SMS channel via Twilio's Messages API (the official `twilio` client, async transport).

One message per recipient, each a single 160-character GSM-7 segment (`sms_text`): one non-GSM
character would switch the whole text to UCS-2 and cut it to 70 characters (PROTOCOLS.md §7.4).
A recipient who cannot be reached (unsubscribed, not a mobile) never stops the others; errors are
collected and raised once, after every recipient was tried.

Recipients that got an alert, or failed for good, are remembered per alert id for a while, so a
dispatcher retry after a partial failure (say a 429 for the third number) texts only the numbers
still owed, not everyone again.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import aiohttp
from pydantic import Field, SecretStr, field_validator
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from daemon.alerts import AlertEvent
from daemon.notify.base import ChannelConfig, DeliveryError, Notification, Notifier, Receipt
from daemon.notify.slack_blocks import compare_text

__all__ = ["SMS_MAXLEN", "SmsConfig", "SmsNotifier", "gsm7_length", "sms_text", "to_gsm7"]

SMS_MAXLEN: Final = 160
E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")

# GSM 03.38 default alphabet (1 septet each) and its extension table (2 septets: ESC + char).
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT: Final = frozenset("^{}\\[~]|€")
# Common non-GSM characters with a faithful GSM spelling; anything else is transliterated
# (é stays, ô → o) or dropped (emoji).
_REPLACE: Final[dict[str, str]] = {
    "“": '"',
    "”": '"',
    "„": '"',
    "«": '"',
    "»": '"',
    "‘": "'",
    "’": "'",
    "‚": "'",
    "`": "'",
    "´": "'",
    "—": "-",
    "–": "-",
    "‐": "-",
    "−": "-",
    "…": "...",
    "•": "*",
    "·": "*",
    "×": "x",
    "÷": "/",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "±": "+/-",
    "→": "->",
    "←": "<-",
    "↑": "up",
    "↓": "down",
    "¢": "c",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "œ": "oe",
    "Œ": "OE",
    "ı": "i",
    "\t": " ",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}

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


def _gsm_char(ch: str) -> str:
    if ch in _GSM_BASIC or ch in _GSM_EXT:
        return ch
    if ch in _REPLACE:
        return _REPLACE[ch]
    # Accented letters outside GSM (ô, ł, ā): keep the base letter when that is GSM.
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(c in _GSM_BASIC for c in base):
        return base
    return ""


def to_gsm7(text: str) -> str:
    """Text in the GSM-7 alphabet on one line: typographic marks replaced, the rest dropped."""
    out = "".join(_gsm_char(ch) for ch in text)
    return " ".join(out.split())  # newlines and runs of spaces collapse to one space


def gsm7_length(text: str) -> int:
    """Septets `text` takes (extension characters such as `€` and `[` count twice)."""
    return sum(2 if ch in _GSM_EXT else 1 for ch in text)


def _fit(text: str, septets: int, ellipsis: str = "...") -> str:
    """`text` cut to at most `septets`, ending in `ellipsis` when it had to be cut."""
    if gsm7_length(text) <= septets:
        return text
    budget = septets - gsm7_length(ellipsis)
    if budget <= 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in text:
        cost = 2 if ch in _GSM_EXT else 1
        if used + cost > budget:
            break
        out.append(ch)
        used += cost
    return "".join(out).rstrip() + ellipsis


def sms_text(alert: AlertEvent) -> str:
    """One GSM-7 segment: `FIRING warning rule: <summary> 7.98 < 8.00 13:47 ET`.

    The state, severity, rule, value and time always survive; the summary gives way ("...").
    """
    state = "RESOLVED" if alert.state == "resolved" else "FIRING"
    head = to_gsm7(f"{state} {alert.severity} {alert.rule}") + ":"
    tail = " ".join(
        p for p in (to_gsm7(compare_text(alert, symbols=True)), f"{alert.time_ny:%H:%M} ET") if p
    )
    fixed = gsm7_length(head) + 1 + gsm7_length(tail)
    if fixed > SMS_MAXLEN:  # absurdly long rule name: keep the tail, cut the head
        head = _fit(head, SMS_MAXLEN - 1 - gsm7_length(tail))
        return f"{head} {tail}".strip()
    summary = _fit(to_gsm7(alert.summary), SMS_MAXLEN - fixed - 1)
    return " ".join(p for p in (head, summary, tail) if p)


class _HeaderAuthHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """twilio's async client, sending Basic auth as a header rather than aiohttp's `auth=`.

    twilio 9.13 passes `auth=BasicAuth(...)`, which aiohttp 3.14 deprecates (gone in 4.0); the
    header is the replacement aiohttp names. Same request on the wire; twilio's request log
    already leaves out `Authorization` headers.
    """

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
        return await super().request(
            method, url, params, data, headers, None, timeout, allow_redirects
        )


@dataclass(slots=True)
class _Failure:
    to: str
    message: str
    retryable: bool
    #: The next number would hit the same wall (bad credentials, rate limit, network down).
    stop: bool = False


class SmsNotifier(Notifier):
    """Texts each alert transition to every number in `to`, one Twilio message each."""

    kind: ClassVar[str] = "sms"
    config_model: ClassVar[type[ChannelConfig]] = SmsConfig
    body_maxlen: ClassVar[int] = SMS_MAXLEN
    required_fields: ClassVar[tuple[str, ...]] = ("account_sid",)
    config: SmsConfig

    def __init__(self, name: str, config: SmsConfig):
        if not isinstance(config, SmsConfig):
            raise TypeError(f"SmsNotifier needs an SmsConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self._client: Any = None  # twilio.rest.Client (the twilio package ships no types)
        self._http: _HeaderAuthHttpClient | None = None
        self._done: OrderedDict[str, set[str]] = OrderedDict()

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

    async def send(self, n: Notification) -> Receipt | None:
        alert = n.alert
        body = sms_text(alert)
        client = self._get_client()
        done = self._done.setdefault(alert.id, set())
        self._done.move_to_end(alert.id)
        while len(self._done) > _REMEMBER:
            self._done.popitem(last=False)

        failures: list[_Failure] = []
        pending = [to for to in self.config.to if to not in done]
        for i, to in enumerate(pending):
            try:
                async with asyncio.timeout(self.config.timeout):
                    await client.messages.create_async(to=to, from_=self.config.from_, body=body)
            except (TwilioRestException, TwilioServiceException) as e:
                failure = self._rest_failure(to, e)
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                reason = f"{type(e).__name__}: {e}".rstrip(": ")
                message = f"could not reach Twilio ({self._scrub(reason)})"
                failure = _Failure(to, message, retryable=True, stop=True)
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

    def _rest_failure(self, to: str, e: TwilioRestException | TwilioServiceException) -> _Failure:
        status = int(e.status)
        code = e.code if isinstance(e.code, int) else None
        if status == 429 or code == 20429:
            message = f"rate limited by Twilio (HTTP 429, code {code})"
            return _Failure(to, message, retryable=True, stop=True)
        if status >= 500:  # often one request's bad luck: still try the other numbers
            return _Failure(to, f"Twilio server error (HTTP {status}, code {code})", True)
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
            to,
            self._scrub(f"Twilio refused the message (HTTP {status}, code {code}): {detail}"),
            False,
        )

    def _summarize(self, failures: list[_Failure], total: int) -> DeliveryError:
        retryable = any(f.retryable for f in failures)
        lines = "; ".join(f"{f.to}: {f.message}" for f in failures)
        return DeliveryError(
            f"SMS channel {self.name!r}: {len(failures)} of {total} recipient(s) not texted: "
            f"{lines}",
            retryable=retryable,
        )

    def _scrub(self, text: str) -> str:
        """Belt and braces: no error text we build may ever carry the auth token."""
        token = self.config.auth_token.get_secret_value()
        return text.replace(token, "***") if token else text

    async def aclose(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()
