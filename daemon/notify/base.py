"""The notifier plugin base: what a channel must declare and implement.

Modelled on apprise's `NotifyBase`: each channel states its own config model, which of its fields
are secrets (for redaction and for "disabled: SLACK_BOT_TOKEN is not set" messages), and its
limits (`rate_limit`, `body_maxlen`, `title_maxlen`). Transport lives in the subclass; the policy
every channel shares lives here, in `deliver()`, once: per-channel message templates, truncation,
throttling to the channel's rate (`pacing.py`), redaction of secrets from errors (`redaction.py`),
and logging a permanent error once instead of on every alert. What a send is given and returns
is `notification.py`; how it fails (`DeliveryError`, `Retry-After`) is `failure.py`; when it is
tried again is the delivery worker's (`retry.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import traceback
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from daemon.alerts import AlertEvent
from daemon.notify.channel_templates import render_for
from daemon.notify.failure import DeliveryError, NotSent, parse_retry_after, retry_after_from
from daemon.notify.notification import Notification, NotificationKind, Receipt
from daemon.notify.pacing import TokenBucket
from daemon.notify.quiet import QuietHours
from daemon.notify.redaction import holds_secret, redact, secret_values

# Besides its own two classes, the names this module held before they moved beside it, for the
# importers that still take them from here (sms*.py, store/outbox.py, plugins).
__all__ = [
    "ChannelConfig",
    "DeliveryError",
    "NotSent",
    "Notification",
    "NotificationKind",
    "Notifier",
    "Receipt",
    "TokenBucket",
    "parse_retry_after",
    "redact",
    "retry_after_from",
]

log = logging.getLogger(__name__)

_REPORTED_MAX = 64  # distinct permanent errors remembered per channel


class ChannelConfig(BaseModel):
    """Fields shared by every channel's config block in alerts.yaml."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str
    enabled: bool = True
    rate_limit: float | None = Field(
        None, gt=0, description="Messages per second at most; default: the channel type's own"
    )
    quiet_hours: QuietHours | None = Field(
        None, description="When only critical alerts go out on this channel (others recorded)"
    )
    daily_cap: int | None = Field(
        None,
        ge=1,
        description="At most this many messages per New York day; then one notice, and "
        "the rest are recorded, not sent",
    )


class Notifier(ABC):
    """One configured channel. Subclasses set `kind`, `config_model`, and implement `send`.

    The delivery worker calls `deliver()`, never `send()` directly: `deliver` is where the shared
    policy lives, so a channel module only turns a notification into its wire format.
    """

    kind: ClassVar[str]
    config_model: ClassVar[type[ChannelConfig]]
    #: Max characters of message text the channel accepts; longer text is truncated here.
    body_maxlen: ClassVar[int] = 4000
    #: Max characters of a title (channels with a separate subject line); 0 = no title.
    title_maxlen: ClassVar[int] = 250
    #: Messages per second this channel may send (per configured channel); None = unthrottled.
    rate_limit: ClassVar[float | None] = None
    #: Messages that may go at once before `rate_limit` applies (a short burst).
    rate_burst: ClassVar[int] = 1
    #: Plain (non-secret) fields that must be non-empty for the channel to work.
    required_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, config: ChannelConfig):
        self.name = name
        self.config = config
        rate = config.rate_limit or type(self).rate_limit
        self._bucket = TokenBucket(rate, type(self).rate_burst) if rate else None
        self._reported: OrderedDict[str, None] = OrderedDict()

    # -- declarations -----------------------------------------------------------------------
    @classmethod
    def secret_fields(cls) -> tuple[str, ...]:
        """Config fields holding secrets: those typed `SecretStr` (or a list of them)."""
        return tuple(
            name
            for name, finfo in cls.config_model.model_fields.items()
            if holds_secret(finfo.annotation)
        )

    def secret_values(self) -> list[str]:
        """Every secret this channel holds, to keep out of errors and logs.

        A channel whose secrets can show up in pieces (a token inside a URL) adds the pieces.
        """
        out: list[str] = []
        for fname in self.secret_fields():
            for _, secret in secret_values(getattr(self.config, fname)):
                value = secret.get_secret_value()
                if value:
                    out.append(value)
        return out

    def redact(self, text: str) -> str:
        """`text` with this channel's secrets masked."""
        return redact(text, self.secret_values())

    def disabled_reason(self, env_vars: Mapping[str, str] | None = None) -> str | None:
        """Why this channel can't send (e.g. a secret is unset), or None when it can.

        `env_vars` maps a field, as written in alerts.yaml, to the variable that supplies it,
        so the message can say exactly what to export.
        """
        if not self.config.enabled:
            return "disabled in config"
        missing = []
        secret_fields = self.secret_fields()
        for fname, finfo in type(self.config).model_fields.items():
            value = getattr(self.config, fname)
            written = finfo.alias or fname
            empties: list[str] = []
            if fname in secret_fields:
                found = list(secret_values(value))
                if isinstance(value, list | tuple | dict) and not found:
                    empties.append(written)
                empties += [written + sub for sub, s in found if not s.get_secret_value()]
            elif fname in self.required_fields and not value:
                empties.append(written)
            for where in empties:
                var = (env_vars or {}).get(where)
                missing.append(f"{where} is empty" + (f" (export {var})" if var else ""))
        return "; ".join(missing) or None

    # -- shared policy ----------------------------------------------------------------------
    def truncate(self, text: str, limit: int | None = None) -> str:
        limit = self.body_maxlen if limit is None else limit
        if len(text) <= limit:
            return text
        return text[: limit - 1] + "…" if limit > 0 else ""

    def title(self, n: Notification) -> str:
        """A one-line subject for channels that have one: `FIRING warning rule`, `3 alerts`."""
        if n.kind == "notice" or not n.alerts:
            text = "tickwatch"
        elif len(n.alerts) == 1:
            a = n.alert
            state = "RESOLVED" if a.state == "resolved" else "FIRING"
            text = f"{state} {a.severity} {a.rule}"
            if set(a.labels) == {"symbol"}:
                text += f" {a.labels['symbol']}"
        else:
            firing = sum(a.state == "firing" for a in n.alerts)
            word = "digest" if n.kind == "digest" else "alerts"
            text = f"{len(n.alerts)} {word} ({firing} firing)"
        return self.truncate(text, self.title_maxlen)

    def prepare(self, n: Notification) -> Notification:
        """The notification as this channel should say it: per-channel template, truncated."""
        if n.kind == "notice" or not n.alerts:
            text = self.truncate(n.text)
            return n if text == n.text else dataclasses.replace(n, text=text)
        alerts = tuple(self._prepare_alert(a) for a in n.alerts)
        if all(new is old for new, old in zip(alerts, n.alerts, strict=True)):
            return n
        return dataclasses.replace(n, alerts=alerts)

    def _prepare_alert(self, alert: AlertEvent) -> AlertEvent:
        summary = self.truncate(render_for(self, alert))
        return alert if summary == alert.summary else dataclasses.replace(alert, summary=summary)

    def messages_for(self, n: Notification) -> int:
        """How many messages `send(n)` will send (SMS: one per recipient), for throttling."""
        return 1

    async def throttle(self, n: Notification, stop: asyncio.Event | None = None) -> None:
        """Wait for this channel's rate limit (cut short when `stop` is set); a no-op when it
        has none."""
        if self._bucket is not None:
            cost = self.messages_for(n)
            if cost > 0:
                await self._bucket.acquire(cost, stop)

    async def deliver(
        self, n: Notification, *, stop: asyncio.Event | None = None
    ) -> Receipt | None:
        """What the delivery worker calls: the shared policy around the channel's own `send`.

        Raises only `DeliveryError`, its message free of this channel's secrets; an unexpected
        exception (a bug) becomes a non-retryable one, logged with its traceback. With `stop`
        (the worker's, set when the daemon stops) a send not yet begun is not begun: once `stop`
        is set, waiting for the rate limit ends and `NotSent` is raised instead of sending.
        """
        n = self.prepare(n)
        await self.throttle(n, stop)
        if stop is not None and stop.is_set():
            raise NotSent(f"{self.name}: stopping before {n.key} was sent")
        try:
            receipt = await self.send(n)
        except DeliveryError as e:
            err = DeliveryError(
                self.redact(str(e)),
                retryable=e.retryable,
                retry_after=e.retry_after,
                reason=self.redact(e.reason),
            )
            self._report(err)
            raise err from None  # the cause may quote a secret (a URL, a request dump)
        except Exception as e:
            message = self.redact(f"{type(e).__name__}: {e}".rstrip(": "))
            err = DeliveryError(
                f"{self.kind} channel {self.name!r} failed unexpectedly: {message}",
                retryable=False,
            )
            tb = self.redact("".join(traceback.format_exception(e)))
            log.error("channel %s (%s): %s\n%s", self.name, self.kind, err, tb.rstrip())
            raise err from None
        self._reported.clear()  # working again: a new failure is news
        return receipt

    def _report(self, err: DeliveryError) -> None:
        """Log a permanent error once per channel (until a send succeeds), not once per alert."""
        if err.retryable:
            return  # the worker's retry logging covers these
        message = str(err)
        if message in self._reported:
            log.debug("channel %s (%s): still failing: %s", self.name, self.kind, message)
            return
        self._reported[message] = None
        while len(self._reported) > _REPORTED_MAX:
            self._reported.popitem(last=False)
        log.error("channel %s (%s) cannot deliver: %s", self.name, self.kind, message)

    def preview(self, n: Notification) -> str:
        """What `send` would say, as readable text (`tickwatch render`); channels refine it."""
        n = self.prepare(n)
        if n.kind == "notice" or not n.alerts:
            return n.text
        lines = [self.title(dataclasses.replace(n, alerts=(a,))) for a in n.alerts]
        return "\n".join(
            f"{line}: {a.summary}" if a.summary else line
            for line, a in zip(lines, n.alerts, strict=True)
        )

    @abstractmethod
    async def send(self, n: Notification) -> Receipt | None:
        """Deliver one notification; raise DeliveryError on failure."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and sessions."""
