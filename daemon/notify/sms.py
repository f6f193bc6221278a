"""SMS channel via Twilio's Messages API (the official `twilio` client, async transport).

One message per recipient, kept to `max_segments` segments (1 by default, at most 2) and so to a
known cost. Length is counted the way carriers bill it (PROTOCOLS.md §7.4): GSM-7 text takes 160
septets in one segment (153 each when split), `€ [ ] { } ~ ^ | \\` taking two; a single character
outside GSM-7 switches the whole text to UCS-2 at 70 (67) characters. So typographic marks
(’ “ ” – — …) are transliterated and emoji dropped, keeping GSM-7 wherever the words themselves
allow; text in another script (Cyrillic, CJK) is kept as UCS-2 and cut to fit that budget. The
state, severity, rule, value and time always survive; the summary gives way ("...").
Provenance comes last and only in room the alert text leaves: `(XMAG 27.10@13:53 MAGS
61.20@13:53 v3f2a9c1e)`, fewer inputs (`+1`) or just the rule version when space is short,
nothing when none is left. It never adds a segment to the bill (round brackets: `[` and `]`
cost two septets each).

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
import re
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import aiohttp
from pydantic import Field, SecretStr, field_validator
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from daemon.alerts import AlertEvent, Input
from daemon.notify.base import (
    ChannelConfig,
    DeliveryError,
    Notification,
    Notifier,
    Receipt,
    retry_after_from,
)
from daemon.notify.slack_blocks import compare_text, format_number, order_alerts

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

SMS_MAXLEN: Final = 160
E164: Final = re.compile(r"^\+[1-9]\d{6,14}$")
Encoding = Literal["GSM-7", "UCS-2"]
#: (one segment, per segment when split) for each encoding.
_SEGMENT: Final[dict[str, tuple[int, int]]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}
_ELLIPSIS: Final = "..."

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
    max_segments: int = Field(
        default=1, ge=1, le=2, description="Longest message, in SMS segments (each is billed)"
    )

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


def _gsm_char(ch: str) -> str | None:
    """`ch` in GSM-7: itself, a faithful spelling, its base letter, "" (drop), or None (no way)."""
    if ch in _GSM_BASIC or ch in _GSM_EXT:
        return ch
    if ch in _REPLACE:
        return _REPLACE[ch]
    # Accented letters outside GSM (ô, ł, ā): keep the base letter when that is GSM.
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(c in _GSM_BASIC for c in base):
        return base
    category = unicodedata.category(ch)
    if category[0] in "LN":
        return None  # a letter or digit of another script: only UCS-2 can carry it
    return ""  # emoji, symbols, marks, controls: decoration an SMS can do without


def to_gsm7(text: str) -> str:
    """Text in the GSM-7 alphabet on one line: typographic marks replaced, the rest dropped."""
    out = "".join(_gsm_char(ch) or "" for ch in text)
    return " ".join(out.split())  # newlines and runs of spaces collapse to one space


def _as_gsm7(text: str) -> str | None:
    """`text` in GSM-7 without losing a word, or None when it has letters GSM-7 lacks."""
    out: list[str] = []
    for ch in text:
        g = _gsm_char(ch)
        if g is None:
            return None
        out.append(g)
    return " ".join("".join(out).split())


def _as_ucs2(text: str) -> str:
    """`text` for a UCS-2 message: kept as written, on one line, without control characters."""
    kept = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join(kept.split())


def gsm7_length(text: str) -> int:
    """Septets `text` takes (extension characters such as `€` and `[` count twice)."""
    return sum(2 if ch in _GSM_EXT else 1 for ch in text)


def ucs2_length(text: str) -> int:
    """UTF-16 code units `text` takes (an emoji outside the BMP counts twice)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in its alphabet, else UCS-2."""
    return "GSM-7" if all(ch in _GSM_BASIC or ch in _GSM_EXT for ch in text) else "UCS-2"


def _units(text: str, encoding: Encoding) -> int:
    return gsm7_length(text) if encoding == "GSM-7" else ucs2_length(text)


def segment_budget(encoding: Encoding, max_segments: int) -> int:
    """Units that fit in `max_segments` segments: 160/306 septets, or 70/134 UCS-2 characters."""
    single, split = _SEGMENT[encoding]
    return single if max_segments <= 1 else split * max_segments


def segments(text: str) -> int:
    """Segments a carrier bills for `text`."""
    encoding = encoding_of(text)
    units = _units(text, encoding)
    single, split = _SEGMENT[encoding]
    return 1 if units <= single else -(-units // split)


def _fit(text: str, budget: int, encoding: Encoding, ellipsis: str = _ELLIPSIS) -> str:
    """`text` cut to at most `budget` units, ending in `ellipsis` when it had to be cut."""
    if _units(text, encoding) <= budget:
        return text
    room = budget - _units(ellipsis, encoding)
    if room <= 0:
        return ""
    out: list[str] = []
    used = 0
    for ch in text:
        cost = _units(ch, encoding)
        if used + cost > room:
            break
        out.append(ch)
        used += cost
    return "".join(out).rstrip() + ellipsis


class _Composer:
    """Puts parts into one message of a fixed budget, in the one encoding they all fit."""

    def __init__(self, parts: Sequence[str], max_segments: int):
        gsm = [_as_gsm7(p) for p in parts]
        if all(g is not None for g in gsm):
            self.encoding: Encoding = "GSM-7"
            self.parts = [g or "" for g in gsm]
        else:
            self.encoding = "UCS-2"
            self.parts = [_as_ucs2(p) for p in parts]
        self.budget = segment_budget(self.encoding, max_segments)

    def units(self, text: str) -> int:
        return _units(text, self.encoding)

    def fit(self, text: str, budget: int) -> str:
        return _fit(text, budget, self.encoding)


def _state_word(alert: AlertEvent) -> str:
    if alert.state == "resolved":
        return "RESOLVED"
    return "STILL FIRING" if alert.repeat else "FIRING"


def _input_compact(inp: Input, alert: AlertEvent) -> str:
    """`XMAG 27.10@13:53` (New York time), `@4/8 13:53` when not on the alert's day."""
    t = inp.time_ny
    day = "" if t.date() == alert.time_ny.date() else f"{t.month}/{t.day} "
    return f"{inp.symbol} {format_number(inp.price)}@{day}{t:%H:%M}"


def sms_provenance(alert: AlertEvent, room: int | None = None, encoding: Encoding = "GSM-7") -> str:
    """`(XMAG 27.10@13:53 MAGS 61.20@13:53 v3f2a9c1e)` in at most `room` units ("" if none fit).

    When the whole does not fit, the last inputs give way to a count (`+1`), then all of them,
    leaving the rule version; "" when the event carries no provenance or nothing fits.
    """
    items = [_input_compact(i, alert) for i in alert.inputs]
    version = [f"v{alert.rule_version}"] if alert.rule_version else []
    for shown in range(len(items), -1, -1):
        hidden = len(items) - shown
        words = [*items[:shown], *([f"+{hidden}"] if hidden and shown else []), *version]
        if not words:
            return ""
        text = f"({' '.join(words)})"
        if room is None or _units(text, encoding) <= room:
            return text
    return ""


def sms_text(alert: AlertEvent, max_segments: int = 1) -> str:
    """`FIRING warning rule: <summary> 7.98 < 8.00 13:47 ET (XMAG 27.10@13:53 v3f2a9c1e)`.

    Within `max_segments` segments. The state, severity, rule, value and time always survive;
    the summary gives way ("..."); the provenance is added only in the room the rest leaves in
    the segments it already takes.
    """
    text = _alert_text(alert, max_segments)
    if not (alert.inputs or alert.rule_version):
        return text
    encoding = encoding_of(text)
    # the room left in the segments the text already takes: provenance never adds a segment
    room = segment_budget(encoding, segments(text)) - _units(text, encoding) - 1
    provenance = sms_provenance(alert, room, encoding)
    if encoding == "GSM-7" and encoding_of(provenance) != "GSM-7":
        return text  # a symbol outside GSM-7: not worth turning the whole text into UCS-2
    return f"{text} {provenance}" if provenance else text


def _alert_text(alert: AlertEvent, max_segments: int) -> str:
    """The alert itself: `FIRING warning rule: <summary> 7.98 < 8.00 13:47 ET`."""
    head = f"{_state_word(alert)} {alert.severity} {alert.rule}:"
    tail = " ".join(
        p for p in (compare_text(alert, symbols=True), f"{alert.time_ny:%H:%M} ET") if p
    )
    c = _Composer([head, alert.summary, tail], max_segments)
    head, summary, tail = c.parts
    fixed = c.units(head) + 1 + c.units(tail)
    if fixed > c.budget:  # absurdly long rule name: keep the tail, cut the head
        head = c.fit(head, c.budget - 1 - c.units(tail))
        return f"{head} {tail}".strip()
    summary = c.fit(summary, c.budget - fixed - 1)
    return " ".join(p for p in (head, summary, tail) if p)


def _item(alert: AlertEvent, one_rule: bool) -> str:
    """One alert in a group text: `NVDA -3.20`, `NVDA big-move -3.20`, `NVDA ok`."""
    labels = alert.labels
    subject = labels.get("symbol") or ",".join(labels[k] for k in sorted(labels))
    words = [subject] if subject else []
    if not one_rule or not subject:
        words.append(alert.rule)
    if alert.state == "resolved":
        words.append("ok")
    elif alert.value is not None:
        words.append(format_number(alert.value))
    return " ".join(words)


def sms_group_text(alerts: Sequence[AlertEvent], max_segments: int = 1) -> str:
    """`3 alerts: NVDA -3.20; AMD -3.10; +1 more 13:47 ET`, most pressing first, within budget."""
    ordered = order_alerts(alerts)
    if not ordered:
        return ""
    rules = {a.rule for a in ordered}
    one_rule = len(rules) == 1
    noun = f"{next(iter(rules))} alerts" if one_rule else "alerts"
    head = f"{len(ordered)} {noun}:"
    tail = f"{ordered[0].time_ny:%H:%M} ET"
    c = _Composer([head, tail, *(_item(a, one_rule) for a in ordered)], max_segments)
    head, tail, *items = c.parts
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i - 1
        more = f"; +{rest} more" if rest else ""
        candidate = "; ".join([*shown, item])
        if c.units(f"{head} {candidate}{more} {tail}") > c.budget:
            break
        shown.append(item)
    hidden = len(items) - len(shown)
    body = "; ".join(shown) + (f"; +{hidden} more" if shown and hidden else "")
    if not shown:
        body = f"+{hidden} more"
    text = f"{head} {body} {tail}"
    return text if c.units(text) <= c.budget else c.fit(text, c.budget)


def sms_notice(text: str, max_segments: int = 1) -> str:
    """A notice (a test message) cut to the budget in whichever encoding it needs."""
    c = _Composer([text], max_segments)
    return c.fit(c.parts[0], c.budget)


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
        pending = [to for to in self.config.to if to not in done]
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
