"""`PluginRegistry`: the kinds of one entry-point group (notifiers, sources), imported on use.

Both registries work alike, so they share this one: a kind (`type:` in alerts.yaml) maps to a
class found among the built-ins (named here as "module:Class", so a stale install whose entry
points predate a built-in still has it) or in the registry's entry-point group, the way a
third-party package adds one:

    [project.entry-points."tickwatch.notifiers"]
    pager = "tickwatch_pager:PagerNotifier"

Nothing is imported until a kind is asked for, and then only that kind's module: loading a
config with one Slack channel imports slack_sdk, not twilio, aiohttp or websockets. Listing
every kind (`every()`, for the JSON Schema or an error that lists what is allowed) imports them
all. A plugin that fails to import, is not the right base class, or claims a kind already taken
is logged with its name and the reason and skipped: a broken plugin never stops the daemon.
A built-in that fails to import is our bug, not a plugin's: it raises.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
from collections.abc import Mapping
from functools import cached_property
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, get_args

__all__ = ["PluginRegistry", "import_path"]

P = TypeVar("P")

_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def import_path(path: str) -> Any:
    """The object named by "module:attr"."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class PluginRegistry(Generic[P]):
    """Plugin classes by kind for one entry-point group.

    `base` and `config_base` are "module:Class" paths of the class every plugin subclasses and
    of the config model its `config_model` subclasses; they are imported only to vet a plugin.
    `what` names a plugin in messages ("notifier"), `kind_word` its kind ("channel type").
    """

    def __init__(
        self,
        *,
        group: str,
        builtins: Mapping[str, str],
        base: str,
        config_base: str,
        what: str,
        kind_word: str,
        log: logging.Logger,
    ) -> None:
        self.group = group
        self.builtin_paths = builtins
        self._base_path = base
        self._config_base_path = config_base
        self.what = what
        self.kind_word = kind_word
        self.log = log
        self._loaded: dict[str, type[P]] = {}
        self._every: dict[str, type[P]] | None = None
        #: Each entry point's class, or None when refused (and logged once), by (name, value).
        self._tried: dict[tuple[str, str], type[P] | None] = {}

    # -- names, without importing anything --------------------------------------------------
    def names(self) -> list[str]:
        """Every kind that may exist: the built-ins, then the entry points' names."""
        extra = sorted({ep.name for ep in self._entry_points()} - set(self.builtin_paths))
        return [*self.builtin_paths, *extra]

    # -- one kind ---------------------------------------------------------------------------
    def get(self, kind: str) -> type[P]:
        """The class serving `kind`, importing only its module (KeyError for an unknown kind:
        config parsing rules it out before anything asks)."""
        found = self._loaded.get(kind)
        if found is not None:
            return found
        if kind in self.builtin_paths:
            found = self._builtin(kind)
        else:
            named = [ep for ep in self._entry_points() if ep.name == kind]
            plugin = self._load(named[0]) if named else None
            if plugin is not None and getattr(plugin, "kind", None) == kind:
                found = plugin
            else:  # named otherwise than its kind, or refused: the full scan logs why
                found = self.every().get(kind)
            if found is None:
                raise KeyError(kind)
        self._loaded[kind] = found
        return found

    def config_model(self, kind: str) -> Any:
        """The config model of `kind`'s class."""
        return getattr(self.get(kind), "config_model")  # noqa: B009 - P is any plugin base

    # -- every kind -------------------------------------------------------------------------
    def builtins(self) -> dict[str, type[P]]:
        """The built-in classes by kind, imported now."""
        return {kind: self._builtin(kind) for kind in self.builtin_paths}

    def every(self) -> dict[str, type[P]]:
        """Built-ins first, then every sound plugin of the group; discovered once."""
        if self._every is None:
            self._every = self.discover()
        return self._every

    def discover(self, builtins: Mapping[str, type[P]] | None = None) -> dict[str, type[P]]:
        """The built-ins (`builtins()` by default) plus every sound plugin, scanned afresh."""
        if builtins is None:
            builtins = self.builtins()
        found = dict(builtins)
        for ep in sorted(self._entry_points(), key=lambda e: e.name):
            obj = self._load(ep)
            if obj is None:
                continue
            kind: str = getattr(obj, "kind")  # noqa: B009 - vetted by _load
            taken = found.get(kind)
            if taken is obj:
                continue  # a built-in, registered through its own entry point
            if taken is not None:
                owner = (
                    f"a built-in {self.kind_word.removesuffix(' type')}"
                    if kind in builtins
                    else taken.__module__
                )
                self.log.error(
                    "%s plugin %r (%s) refused: %s %r is already taken by %s",
                    self.what, ep.name, ep.value, self.kind_word, kind, owner,
                )  # fmt: skip
                continue
            found[kind] = obj
        return found

    def forget(self) -> None:
        """Drop what was imported and discovered: a plugin was installed or removed (tests)."""
        self._loaded.clear()
        self._every = None
        self._tried.clear()

    # -- inside -----------------------------------------------------------------------------
    def _entry_points(self) -> list[EntryPoint]:
        return list(entry_points(group=self.group))

    def _builtin(self, kind: str) -> type[P]:
        cls: type[P] = import_path(self.builtin_paths[kind])
        assert getattr(cls, "kind", None) == kind, f"{cls!r}.kind is not {kind!r}"
        return cls

    def _load(self, ep: EntryPoint) -> type[P] | None:
        """The plugin class behind `ep`, or None (logged once) when it cannot serve."""
        key = (ep.name, ep.value)
        if key not in self._tried:
            self._tried[key] = self._try(ep)
        return self._tried[key]

    def _try(self, ep: EntryPoint) -> type[P] | None:
        try:
            obj = ep.load()
        except Exception as e:  # any import-time failure of someone else's package
            self.log.error(
                "%s plugin %r (%s) skipped: it failed to load: %s: %s",
                self.what, ep.name, ep.value, type(e).__name__, e,
            )  # fmt: skip
            return None
        problem = self._problem(obj)
        if problem is not None:
            self.log.error("%s plugin %r (%s) skipped: %s", self.what, ep.name, ep.value, problem)
            return None
        cls: type[P] = obj
        return cls

    @cached_property
    def _bases(self) -> tuple[type, type]:
        return import_path(self._base_path), import_path(self._config_base_path)

    def _problem(self, obj: object) -> str | None:
        """Why `obj` can't serve as a plugin class, or None when it can."""
        base, config_base = self._bases
        if not (isinstance(obj, type) and issubclass(obj, base)):
            return f"{obj!r} is not a subclass of {self._base_path.replace(':', '.')}"
        if inspect.isabstract(obj):
            missing = ", ".join(f"{m}()" for m in sorted(getattr(obj, "__abstractmethods__", ())))
            return f"{obj.__name__} does not implement {missing}"
        kind = getattr(obj, "kind", None)
        if not isinstance(kind, str) or not _KIND.match(kind):
            return f"{obj.__name__}.kind must be a lower-case name such as 'pager', got {kind!r}"
        model = getattr(obj, "config_model", None)
        if not (isinstance(model, type) and issubclass(model, config_base)):
            return f"{obj.__name__}.config_model must be a subclass of {config_base.__name__}"
        type_field = model.model_fields.get("type")  # type: ignore[attr-defined]
        if type_field is None or get_args(type_field.annotation) != (kind,):
            return f"{model.__name__}.type must be declared as Literal[{kind!r}]"
        return None
