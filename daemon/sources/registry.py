"""Which source class reads each source `type`, found through `tickwatch.sources`.

Built like the notifier registry (`daemon.plugins.PluginRegistry`): the built-ins are named
here and in our pyproject's entry points, a package adds a feed by its own entry point, and a
kind's module (with its websockets, aiohttp or APScheduler) is imported when a config first
names it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from daemon.plugins import PluginRegistry

if TYPE_CHECKING:
    from daemon.sources.base import Source
    from daemon.sources.source_config import SourceConfig

    #: The source classes by kind (a lazy module attribute: see `__getattr__`).
    BUILTIN_SOURCES: dict[str, type[Source]]

__all__ = [
    "BUILTIN_PATHS",
    "BUILTIN_SOURCES",
    "ENTRY_POINT_GROUP",
    "SOURCES",
    "source_class",
    "source_config_models",
]

ENTRY_POINT_GROUP: Final = "tickwatch.sources"

#: Source `type:` → "module:Class" of the source reading it, imported on first use.
BUILTIN_PATHS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "replay": "daemon.sources.replay:ReplaySource",
        "synthetic": "daemon.sources.synthetic:SyntheticSource",
        "alpaca": "daemon.sources.alpaca:AlpacaSource",
        "alpaca_news": "daemon.sources.alpaca:AlpacaNewsSource",
        "finnhub": "daemon.sources.finnhub:FinnhubSource",
        "polygon": "daemon.sources.polygon:PolygonSource",
        "alphavantage_news": "daemon.sources.alphavantage:AlphaVantageNewsSource",
        "earnings_calendar": "daemon.sources.earnings:EarningsCalendarSource",
        "alpaca_backfill": "daemon.sources.alpaca_rest:AlpacaBackfillSource",
    }
)

#: The registry of source kinds.
SOURCES: Final[PluginRegistry[Source]] = PluginRegistry(
    group=ENTRY_POINT_GROUP,
    builtins=BUILTIN_PATHS,
    base="daemon.sources.base:Source",
    config_base="daemon.sources.source_config:SourceConfig",
    what="source",
    kind_word="source type",
    log=logging.getLogger(__name__),
)


def __getattr__(name: str) -> Any:
    """`BUILTIN_SOURCES` resolves (and imports every built-in source) only when first read."""
    if name == "BUILTIN_SOURCES":
        return SOURCES.builtins()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def source_class(kind: str) -> type[Source]:
    """The class for a source `type`, importing only its module (KeyError for an unknown
    one: config parsing rules it out)."""
    return SOURCES.get(kind)


def source_config_models() -> tuple[type[SourceConfig], ...]:
    """One config model per source kind, built-ins first (imports them all)."""
    return tuple(cls.config_model for cls in SOURCES.every().values())
