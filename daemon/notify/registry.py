"""Which notifier class serves each channel `type`, and their config models for parsing.

Notifiers are found through the `tickwatch.notifiers` entry-point group, the way third-party
packages add a channel type:

    [project.entry-points."tickwatch.notifiers"]
    pager = "tickwatch_pager:PagerNotifier"

The built-ins register the same way in our own pyproject, and are also listed here directly, so a
stale install (entry points from before a channel was added) never loses one. A plugin that fails
to import, is not a `Notifier`, or claims a type that is already taken is logged with its name and
the reason and skipped: a broken plugin never stops the daemon.

Nothing is imported until a notifier or config model is first asked for: the built-ins are named
here as "module:Class", so importing this module does not drag in aiohttp, slack_sdk or twilio.

Config parsing builds a discriminated union on `type` from `channel_config_models()`, so a typo in
`type:` or in a channel's fields is reported against that channel's own model.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, get_args

from daemon.notify.base import ChannelConfig, Notifier
from daemon.plugins import import_builtins

__all__ = [
    "BUILTIN_NOTIFIERS",
    "BUILTIN_PATHS",
    "ENTRY_POINT_GROUP",
    "builtin_notifiers",
    "channel_config_models",
    "discover_notifiers",
    "make_notifier",
    "notifier_class",
    "notifiers",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "tickwatch.notifiers"
_KIND: Final = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")

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

if TYPE_CHECKING:
    #: The built-in classes by channel type (a lazy module attribute: see `__getattr__`).
    BUILTIN_NOTIFIERS: dict[str, type[Notifier]]


@cache
def builtin_notifiers() -> dict[str, type[Notifier]]:
    """The built-in notifier classes by channel type, imported once. A built-in that fails to
    import is our bug, not a plugin's: it raises rather than being skipped."""
    return import_builtins(BUILTIN_PATHS)


def __getattr__(name: str) -> Any:
    """`BUILTIN_NOTIFIERS` resolves (and imports the built-ins) only when first read."""
    if name == "BUILTIN_NOTIFIERS":
        return builtin_notifiers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _plugin_problem(obj: object) -> str | None:
    """Why `obj` can't serve as a notifier class, or None when it can."""
    if not (isinstance(obj, type) and issubclass(obj, Notifier)):
        return f"{obj!r} is not a subclass of daemon.notify.base.Notifier"
    if inspect.isabstract(obj):
        return f"{obj.__name__} does not implement send()"
    kind = getattr(obj, "kind", None)
    if not isinstance(kind, str) or not _KIND.match(kind):
        return f"{obj.__name__}.kind must be a lower-case name such as 'pager', got {kind!r}"
    model = getattr(obj, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, ChannelConfig)):
        return f"{obj.__name__}.config_model must be a subclass of ChannelConfig"
    type_field = model.model_fields.get("type")
    if type_field is None or get_args(type_field.annotation) != (kind,):
        return f"{model.__name__}.type must be declared as Literal[{kind!r}]"
    return None


def discover_notifiers(
    builtins: Mapping[str, type[Notifier]] | None = None,
) -> dict[str, type[Notifier]]:
    """The built-ins (`builtin_notifiers()` by default) plus every sound plugin of the
    entry-point group, by channel type."""
    if builtins is None:
        builtins = builtin_notifiers()
    found = dict(builtins)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception as e:  # any import-time failure of someone else's package
            log.error(
                "notifier plugin %r (%s) skipped: it failed to load: %s: %s",
                ep.name,
                ep.value,
                type(e).__name__,
                e,
            )
            continue
        problem = _plugin_problem(obj)
        if problem is not None:
            log.error("notifier plugin %r (%s) skipped: %s", ep.name, ep.value, problem)
            continue
        kind: str = obj.kind
        taken = found.get(kind)
        if taken is obj:
            continue  # a built-in, registered through its own entry point
        if taken is not None:
            owner = "a built-in channel" if kind in builtins else f"{taken.__module__}"
            log.error(
                "notifier plugin %r (%s) refused: channel type %r is already %s",
                ep.name,
                ep.value,
                kind,
                "taken by " + owner,
            )
            continue
        found[kind] = obj
    return found


@lru_cache(maxsize=1)
def notifiers() -> dict[str, type[Notifier]]:
    """Every notifier class by channel type, discovered once per process."""
    return discover_notifiers()


def notifier_class(kind: str) -> type[Notifier]:
    """The class for a channel `type` (KeyError for an unknown one: config parsing rules it out)."""
    return notifiers()[kind]


def make_notifier(name: str, config: ChannelConfig) -> Notifier:
    """The notifier for a parsed channel config."""
    return notifier_class(config.type)(name, config)


def channel_config_models() -> tuple[type[ChannelConfig], ...]:
    """One config model per known channel kind, built-ins first."""
    return tuple(cls.config_model for cls in notifiers().values())
