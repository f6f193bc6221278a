"""Source kinds by their `type:` in alerts.yaml.

The kinds are named here as "module:Class" and imported on first use, so importing this module
(as `daemon.config` does) costs nothing until a source class or config model is asked for; the
feeds' websockets, aiohttp and APScheduler load with them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from daemon.plugins import import_builtins

if TYPE_CHECKING:
    from daemon.sources.base import Source, SourceConfig

    #: The source classes by kind (a lazy module attribute: see `__getattr__`).
    BUILTIN_SOURCES: dict[str, type[Source]]

__all__ = [
    "BUILTIN_PATHS",
    "BUILTIN_SOURCES",
    "builtin_sources",
    "source_class",
    "source_config_models",
]

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


@cache
def builtin_sources() -> dict[str, type[Source]]:
    """Every source class by kind, imported once."""
    return import_builtins(BUILTIN_PATHS)


def __getattr__(name: str) -> Any:
    """`BUILTIN_SOURCES` resolves (and imports every source) only when first read."""
    if name == "BUILTIN_SOURCES":
        return builtin_sources()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def source_class(kind: str) -> type[Source]:
    """The class for a source `type` (KeyError for an unknown one: config parsing rules it out)."""
    return builtin_sources()[kind]


def source_config_models() -> tuple[type[SourceConfig], ...]:
    """One config model per source kind, in `BUILTIN_PATHS` order, for the config union."""
    return tuple(s.config_model for s in builtin_sources().values())
