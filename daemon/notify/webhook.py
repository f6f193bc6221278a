"""Webhook channel: a signed JSON POST of the notification to any HTTP endpoint.

The receiver can trust and de-duplicate what it gets: the body is signed with HMAC-SHA256 over
`"<timestamp>.<raw body>"` (the scheme Stripe and Slack use, so a captured request cannot be
replayed later with a new timestamp), and `Idempotency-Key` repeats the notification's key, so a
redelivery after a crash can be recognised. `verify_signature` is the receiver's half, for Python
receivers and for our tests.

Status codes follow Alertmanager's retrier: 2xx delivered; 408, 429 and 5xx (and timeouts and
connection errors) worth retrying, honouring `Retry-After` on any of them (delta-seconds or an
HTTP-date, as RFC 9110 allows; the worker waits it out however long it is); any other 4xx or a
redirect is a mistake in the config or the receiver that a retry cannot fix.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, ClassVar, Final, Literal

import aiohttp
from pydantic import Field, SecretStr, field_validator

from daemon.alerts import AlertEvent, Input
from daemon.events import ms_to_dt
from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.failure import DeliveryError, parse_retry_after
from daemon.notify.notification import Notification, Receipt

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookConfig",
    "WebhookNotifier",
    "parse_retry_after",
    "payload",
    "sign",
    "verify_signature",
]

TIMESTAMP_HEADER: Final = "X-Tickwatch-Timestamp"
SIGNATURE_HEADER: Final = "X-Tickwatch-Signature"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
PAYLOAD_VERSION: Final = 1
_RETRYABLE_4XX: Final = frozenset({408, 425, 429})


class WebhookConfig(ChannelConfig):
    """`channels.<name>` with `type: webhook` in alerts.yaml."""

    type: Literal["webhook"]
    url: str = Field(description="Where to POST, e.g. https://hooks.example.com/tickwatch")
    secret: SecretStr = Field(description="HMAC key shared with the receiver (from ${ENV})")
    timeout: float = Field(default=10, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL; write e.g. https://host/path")
        return v


def _key_bytes(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes | SecretStr, timestamp: int | str, body: bytes) -> str:
    """The `X-Tickwatch-Signature` value: `sha256=<hex HMAC-SHA256(secret, "ts.body")>`."""
    mac = hmac.new(_key_bytes(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str | bytes | SecretStr,
    timestamp: str | int,
    body: bytes,
    header: str,
    tolerance: float = 300,
    *,
    now: float | None = None,
) -> bool:
    """Whether a request is genuine: signed with `secret`, and stamped within `tolerance` s.

    Pass the raw body exactly as received (before any JSON parsing). The comparison runs in
    constant time; a timestamp too old (a replay) or too far ahead is refused.
    """
    try:
        stamped = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - stamped) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, stamped, body), header.strip())


def _iso(ts_ms: int) -> str:
    return ms_to_dt(ts_ms).isoformat().replace("+00:00", "Z")


def _input_dict(i: Input) -> dict[str, Any]:
    return {
        "symbol": i.symbol,
        "price": i.price,
        "time": _iso(i.ts_ms),
        "ts_ms": i.ts_ms,
        "source": i.source,
        "kind": i.kind,
    }


def _alert_dict(a: AlertEvent) -> dict[str, Any]:
    """One alert for receivers: full names, and ISO UTC times beside the epoch milliseconds.

    `inputs` (what it was judged on) and `rule_version` are always present, empty when the
    event carries none, so a receiver's parser needs no special case.
    """
    return {
        "id": a.id,
        "rule": a.rule,
        "key": a.key,
        "state": a.state,
        "seq": a.seq,
        "repeat": a.repeat,
        "severity": a.severity,
        "labels": dict(a.labels),
        "values": dict(a.values),
        "value": a.value,
        "threshold": a.threshold,
        "comparison": a.comparison,
        "summary": a.summary,
        "time": _iso(a.ts_ms),
        "ts_ms": a.ts_ms,
        "inputs": [_input_dict(i) for i in a.inputs],
        "rule_version": a.rule_version,
    }


def payload(n: Notification) -> dict[str, Any]:
    """The JSON document a receiver gets (versioned, so it can evolve)."""
    return {
        "version": PAYLOAD_VERSION,
        "kind": n.kind,
        "key": n.key,
        "channel": n.channel,
        "text": n.text,
        "alerts": [_alert_dict(a) for a in n.alerts],
        "meta": dict(n.meta),
    }


class WebhookNotifier(Notifier):
    """POSTs each notification as signed JSON to one URL."""

    kind: ClassVar[str] = "webhook"
    config_model: ClassVar[type[ChannelConfig]] = WebhookConfig
    body_maxlen: ClassVar[int] = 8000
    config: WebhookConfig

    def __init__(self, name: str, config: WebhookConfig):
        if not isinstance(config, WebhookConfig):
            raise TypeError(f"WebhookNotifier needs a WebhookConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        """Created on first use (needs a running loop); pooled across sends."""
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.config.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    def request(self, n: Notification, *, now: float | None = None) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers of the POST (the body is what gets signed)."""
        body = json.dumps(payload(n), separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(time.time() if now is None else now))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tickwatch-webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.config.secret, timestamp, body),
            IDEMPOTENCY_HEADER: n.key,
        }
        return body, headers

    async def send(self, n: Notification) -> Receipt | None:
        body, headers = self.request(n)
        where = f"webhook channel {self.name!r}"
        try:
            async with self._get_session().post(
                self.config.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                status = resp.status
                if 200 <= status < 300:
                    return None
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                location = resp.headers.get("Location", "")
                text = (await resp.text(errors="replace"))[:200]
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            reason = f"{type(e).__name__}: {e}".rstrip(": ")
            raise DeliveryError(
                f"{where}: could not reach the receiver ({reason}); will retry",
                retryable=True,
                reason=f"could not reach the receiver ({type(e).__name__})",
            ) from e
        raise self._status_error(status, retry_after, location, " ".join(text.split()))

    def _status_error(
        self, status: int, retry_after: float | None, location: str, text: str
    ) -> DeliveryError:
        where = f"webhook channel {self.name!r}"
        key = f"channels.{self.name}"
        if status in _RETRYABLE_4XX or status >= 500:
            wait = f"; it asks to wait {retry_after:g}s" if retry_after is not None else ""
            why = "rate limited by the receiver" if status == 429 else "the receiver answered"
            return DeliveryError(
                f"{where}: the receiver answered HTTP {status}{wait}; will retry",
                retryable=True,
                retry_after=retry_after,
                reason=f"{why} (HTTP {status})",
            )
        if 300 <= status < 400:
            fix = f"point {key}.url at the final address" + (f" ({location})" if location else "")
            return DeliveryError(f"{where}: redirected (HTTP {status}); {fix}", retryable=False)
        fixes = {
            401: f"the receiver refused the signature; make {key}.secret match the receiver's",
            403: f"the receiver refused the signature; make {key}.secret match the receiver's",
            404: f"nothing listens at that path; fix {key}.url",
            405: f"the URL does not accept POST; fix {key}.url",
            410: f"the endpoint is gone; fix {key}.url",
            413: "the notification is too large for the receiver",
        }
        detail = f": {text}" if text else ""
        fix = fixes.get(status, f"the receiver rejected the notification{detail}")
        return DeliveryError(f"{where}: HTTP {status}: {fix}", retryable=False)

    def preview(self, n: Notification) -> str:
        return json.dumps(payload(self.prepare(n)), indent=2, ensure_ascii=False)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
