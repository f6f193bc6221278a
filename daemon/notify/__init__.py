"""Stage 4, delivery: alert transitions to messages on channels, nothing lost, nothing twice.

What the daemon uses: `delivery.Delivery` (the router and one worker per channel, from the
config), `registry` (a notifier by its channel `type:`), `dispatch.Dispatcher` (the pure
pipeline, also the backtest's). Channel plugins subclass `base.Notifier`; see
docs/architecture.md for the path an alert takes.
"""
