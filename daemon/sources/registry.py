"""Source kinds by their `type:` in alerts.yaml."""

from __future__ import annotations

from daemon.sources.alpaca import AlpacaNewsSource, AlpacaSource
from daemon.sources.alpaca_rest import AlpacaBackfillSource
from daemon.sources.alphavantage import AlphaVantageNewsSource
from daemon.sources.base import Source, SourceConfig
from daemon.sources.earnings import EarningsCalendarSource
from daemon.sources.finnhub import FinnhubSource
from daemon.sources.polygon import PolygonSource
from daemon.sources.replay import ReplaySource
from daemon.sources.synthetic import SyntheticSource

__all__ = ["BUILTIN_SOURCES", "source_config_models"]

BUILTIN_SOURCES: dict[str, type[Source]] = {
    ReplaySource.kind: ReplaySource,
    SyntheticSource.kind: SyntheticSource,
    AlpacaSource.kind: AlpacaSource,
    AlpacaNewsSource.kind: AlpacaNewsSource,
    FinnhubSource.kind: FinnhubSource,
    PolygonSource.kind: PolygonSource,
    AlphaVantageNewsSource.kind: AlphaVantageNewsSource,
    EarningsCalendarSource.kind: EarningsCalendarSource,
    AlpacaBackfillSource.kind: AlpacaBackfillSource,
}


def source_config_models() -> tuple[type[SourceConfig], ...]:
    return tuple(s.config_model for s in BUILTIN_SOURCES.values())
