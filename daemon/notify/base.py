"""The notifier plugin base: what a channel must declare and implement.

Modelled on apprise's `NotifyBase`: each channel states its own config model, which of its fields
are secrets (for redaction and for "disabled: SLACK_BOT_TOKEN is not set" messages), and its
limits. Transport lives in the subclass; retry policy lives in the dispatcher, driven by the
`DeliveryError.retryable` flag each channel sets (Alertmanager's `(recoverable, err)` contract).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from daemon.alerts import AlertEvent

__all__ = ["ChannelConfig", "DeliveryError", "Notifier"]


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

    @abstractmethod
    async def send(self, alert: AlertEvent) -> None:
        """Deliver one alert transition; raise DeliveryError on failure."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release clients and sessions."""
