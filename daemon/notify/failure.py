"""How a send fails: `DeliveryError` (retryable or not, with the asked-for wait), `NotSent`.

Retry policy lives in the delivery worker (`retry.py`), driven by the `DeliveryError.retryable`
flag each channel sets (Alertmanager's `(recoverable, err)` contract) and by
`DeliveryError.retry_after`, the wait the service asked for (`parse_retry_after` reads an HTTP
`Retry-After` header in either of its forms), which the worker honours however long it is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["DeliveryError", "NotSent", "parse_retry_after", "retry_after_from"]


class DeliveryError(Exception):
    """A send failed. `retryable` says whether trying again can help (5xx, timeouts, 429).

    `retry_after` is the wait in seconds the service asked for (HTTP `Retry-After`), None when it
    said nothing; `reason` is a short phrase for `tickwatch status` ("rate limited by Slack"),
    the message itself when not given.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        reason: str | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.reason = reason or message


class NotSent(Exception):
    """`deliver(n, stop=...)` was told to stop before the send began (the daemon is stopping
    while the message waited for its turn under the channel's rate limit): nothing went out."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds (`120`) or an HTTP-date (RFC 9110 §10.2.3).

    A negative number or a date already past is 0 (retry now); None when the header is absent
    or unreadable. `now` (epoch seconds) is for tests.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC, as HTTP dates are
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def retry_after_from(
    headers: Mapping[str, Any] | None, *, now: float | None = None
) -> float | None:
    """The `Retry-After` of a response's headers (any letter case), as `parse_retry_after`."""
    if not headers:
        return None
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            if isinstance(value, list | tuple):  # some clients keep every value of a header
                value = value[0] if value else None
            return parse_retry_after(None if value is None else str(value), now=now)
    return None
