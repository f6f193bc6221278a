"""Source kinds by their `type:` in alerts.yaml."""

from __future__ import annotations

from daemon.sources.base import Source, SourceConfig
from daemon.sources.replay import ReplaySource
from daemon.sources.synthetic import SyntheticSource

__all__ = ["BUILTIN_SOURCES", "source_config_models"]

BUILTIN_SOURCES: dict[str, type[Source]] = {
    ReplaySource.kind: ReplaySource,
    SyntheticSource.kind: SyntheticSource,
}


def source_config_models() -> tuple[type[SourceConfig], ...]:
    return tuple(s.config_model for s in BUILTIN_SOURCES.values())
