"""Which notifier class serves each channel `type`, and their config models for parsing.

Config parsing builds a discriminated union on `type` from `channel_config_models()`, so a typo in
`type:` or in a channel's fields is reported against that channel's own model.
Later this also discovers third-party notifiers through the `tickwatch.notifiers` entry-point group.
"""

from __future__ import annotations

from typing import Final

from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.console import ConsoleNotifier
from daemon.notify.slack import SlackNotifier
from daemon.notify.sms import SmsNotifier

__all__ = ["BUILTIN_NOTIFIERS", "channel_config_models"]

BUILTIN_NOTIFIERS: Final[dict[str, type[Notifier]]] = {
    cls.kind: cls for cls in (ConsoleNotifier, SlackNotifier, SmsNotifier)
}


def channel_config_models() -> tuple[type[ChannelConfig], ...]:
    """One config model per known channel kind, in registration order."""
    return tuple(cls.config_model for cls in BUILTIN_NOTIFIERS.values())
