"""Stage 1, the edge: providers in, normalized `Tick`/`Headline` events out, checked once.

What the other stages use: `registry` (a source by its `type:`), `base.Source` and
`base.SourceContext` (what the daemon builds and schedules), `normalize.EdgeFilter` (the edge's
rules, also the backtest's), `tables` and `replay` (history files). Adapters are written on
`feed.FeedSource` (websockets) or `poller.RestSource` (REST); see docs/architecture.md.
"""
