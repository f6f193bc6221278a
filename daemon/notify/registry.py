"""Which notifier class serves each channel `type`, found through `tickwatch.notifiers`.

A third-party package adds a channel type by an entry point:

    [project.entry-points."tickwatch.notifiers"]
    pager = "tickwatch_pager:PagerNotifier"

The built-ins register the same way in our own pyproject and are named here too (see
`daemon.plugins.PluginRegistry`, which both registries share). A channel type's module is
imported when a config first names it: a config with one Slack channel never imports twilio.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from daemon.plugins import PluginRegistry

if TYPE_CHECKING:
    from daemon.notify.base import ChannelConfig, Notifier

    #: The built-in classes by channel type (a lazy module attribute: see `__getattr__`).
    BUILTIN_NOTIFIERS: dict[str, type[Notifier]]

__all__ = [
    "BUILTIN_NOTIFIERS",
    "BUILTIN_PATHS",
    "ENTRY_POINT_GROUP",
    "NOTIFIERS",
    "channel_config_models",
    "discover_notifiers",
    "make_notifier",
    "notifier_class",
    "notifiers",
]

ENTRY_POINT_GROUP: Final = "tickwatch.notifiers"

#: Channel type → "module:Class" of the built-in serving it, imported on first use.
BUILTIN_PATHS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "console": "daemon.notify.console:ConsoleNotifier",
        "slack": "daemon.notify.slack:SlackNotifier",
        "sms": "daemon.notify.sms:SmsNotifier",
        "webhook": "daemon.notify.webhook:WebhookNotifier",
        "apprise": "daemon.notify.apprise:AppriseNotifier",
    }
)

#: The registry of channel types.
NOTIFIERS: Final[PluginRegistry[Notifier]] = PluginRegistry(
    group=ENTRY_POINT_GROUP,
    builtins=BUILTIN_PATHS,
    base="daemon.notify.base:Notifier",
    config_base="daemon.notify.base:ChannelConfig",
    what="notifier",
    kind_word="channel type",
    log=logging.getLogger(__name__),
)


def __getattr__(name: str) -> Any:
    """`BUILTIN_NOTIFIERS` resolves (and imports the built-ins) only when first read."""
    if name == "BUILTIN_NOTIFIERS":
        return NOTIFIERS.builtins()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def discover_notifiers(
    builtins: Mapping[str, type[Notifier]] | None = None,
) -> dict[str, type[Notifier]]:
    """The built-ins plus every sound plugin of the entry-point group, scanned afresh."""
    return NOTIFIERS.discover(builtins)


def notifiers() -> dict[str, type[Notifier]]:
    """Every notifier class by channel type (imports them all), discovered once."""
    return NOTIFIERS.every()


def notifier_class(kind: str) -> type[Notifier]:
    """The class for a channel `type`, importing only its module (KeyError for an unknown
    one: config parsing rules it out)."""
    return NOTIFIERS.get(kind)


def make_notifier(name: str, config: ChannelConfig) -> Notifier:
    """The notifier for a parsed channel config."""
    return notifier_class(config.type)(name, config)


def channel_config_models() -> tuple[type[ChannelConfig], ...]:
    """One config model per known channel type, built-ins first (imports them all)."""
    return tuple(cls.config_model for cls in notifiers().values())
