"""The notifier plugin base: what a channel must declare and implement.

Modelled on apprise's `NotifyBase`: each channel states its own config model, which of its fields
are secrets (for redaction and for "disabled: SLACK_BOT_TOKEN is not set" messages), and its
limits. Transport lives in the subclass; retry policy lives in the dispatcher, driven by the
`DeliveryError.retryable` flag each channel sets (Alertmanager's `(recoverable, err)` contract).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from daemon.alerts import AlertEvent

__all__ = ["ChannelConfig", "DeliveryError", "Notification", "Notifier", "Receipt"]

#: What a channel says about a message it sent, e.g. Slack's `{"channel": "C1", "ts": "17.1"}`:
#: kept per alert and channel, so a reminder or the resolve can thread under the first message.
Receipt = Mapping[str, str]

NotificationKind = Literal["alert", "group", "digest", "notice"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one channel: an alert transition, a group or digest of them, or a notice.

    `key` is the idempotency key of this (content, channel): delivering the same key twice sends
    once. `thread` is the receipt of the first message about the same alert on this channel, for
    channels that can follow up in place (Slack threads and `chat.update`). A `notice` carries
    only `text` (a test message, a catch-up summary).
    """

    channel: str
    key: str
    alerts: tuple[AlertEvent, ...] = ()
    kind: NotificationKind = "alert"
    text: str = ""
    thread: Mapping[str, str] | None = None
    #: Channel-agnostic extra data (e.g. the group's labels), kept small.
    meta: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def single(cls, alert: AlertEvent, channel: str) -> Notification:
        return cls(channel=channel, key=f"{alert.id}@{channel}", alerts=(alert,))

    @property
    def alert(self) -> AlertEvent:
        """The (first) alert: what single-alert channels render."""
        return self.alerts[0]

    def to_json(self) -> str:
        return json.dumps(
            {
                "channel": self.channel,
                "key": self.key,
                "alerts": [json.loads(a.to_json()) for a in self.alerts],
                "kind": self.kind,
                "text": self.text,
                "thread": dict(self.thread) if self.thread is not None else None,
                "meta": dict(self.meta),
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Notification:
        d = json.loads(text)
        alerts = tuple(AlertEvent.from_json(json.dumps(a)) for a in d.get("alerts", []))
        return cls(
            channel=str(d["channel"]),
            key=str(d["key"]),
            alerts=alerts,
            kind=d.get("kind", "alert"),
            text=str(d.get("text", "")),
            thread=d.get("thread"),
            meta=d.get("meta") or {},
        )


class ChannelConfig(BaseModel):
    """Fields shared by every channel's config block in alerts.yaml."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str
    enabled: bool = True


class DeliveryError(Exception):
    """A send failed. `retryable` says whether trying again can help (5xx, timeouts, 429)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(ABC):
    """One configured channel. Subclasses set `kind`, `config_model`, and implement `send`."""

    kind: ClassVar[str]
    config_model: ClassVar[type[ChannelConfig]]
    #: Max characters of message text the channel accepts; longer text is truncated here.
    body_maxlen: ClassVar[int] = 4000
    #: Plain (non-secret) fields that must be non-empty for the channel to work.
    required_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, config: ChannelConfig):
        self.name = name
        self.config = config

    def disabled_reason(self, env_vars: Mapping[str, str] | None = None) -> str | None:
        """Why this channel can't send (e.g. a secret is unset), or None when it can.

        `env_vars` maps a field, as written in alerts.yaml, to the variable that supplies it,
        so the message can say exactly what to export.
        """
        if not self.config.enabled:
            return "disabled in config"
        missing = []
        for fname, finfo in type(self.config).model_fields.items():
            value = getattr(self.config, fname)
            empty = (isinstance(value, SecretStr) and not value.get_secret_value()) or (
                fname in self.required_fields and not value
            )
            if empty:
                written = finfo.alias or fname
                var = (env_vars or {}).get(written)
                missing.append(f"{written} is empty" + (f" (export {var})" if var else ""))
        return "; ".join(missing) or None

    def truncate(self, text: str) -> str:
        if len(text) <= self.body_maxlen:
            return text
        return text[: self.body_maxlen - 1] + "…"

    async def deliver(self, n: Notification) -> Receipt | None:
        """What the delivery worker calls: the shared policy around the channel's own `send`."""
        return await self.send(n)

    @abstractmethod
    async def send(self, n: Notification) -> Receipt | None:
        """Deliver one notification; raise DeliveryError on failure."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and sessions."""
