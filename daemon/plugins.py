"""Built-in plugins named by import path and imported on first use, for both registries
(notifiers and sources): importing the config or the engine must not import every channel's
and every feed's network library."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

__all__ = ["import_builtins"]


def import_builtins(paths: Mapping[str, str]) -> dict[str, Any]:
    """kind → class for `{kind: "module:Class"}`. A built-in that fails to import is our bug,
    not a plugin's: it raises rather than being skipped."""
    found: dict[str, Any] = {}
    for kind, path in paths.items():
        module, _, name = path.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert cls.kind == kind, f"{path}.kind is {cls.kind!r}, registered as {kind!r}"
        found[kind] = cls
    return found
