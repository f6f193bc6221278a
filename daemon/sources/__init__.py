"""Stage 1, the edge: providers in, normalized `Tick`/`Headline` events out, checked once.

The names the other stages may use are `__all__`, each with its module in `__init__.pyi`, and
are imported on first use (importing the stage imports no feed): chiefly `source_class` (a
source by its `type:`), `Source` and `SourceContext` (what the daemon builds and schedules),
`EdgeFilter` (the edge's rules, also the backtest's) and the history-file readers. Adapters are
written on `feed.FeedSource` (websockets) or `poller.RestSource` (REST); see
docs/architecture.md. tests/unit/test_layout.py keeps other stages to these names.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
