"""Stage 4, delivery: alert transitions to messages on channels, nothing lost, nothing twice.

The names the daemon may use are `__all__`, each with its module in `__init__.pyi`, imported on
first use (importing the stage imports no channel): `Delivery` (the router and one worker per
channel, from the config), `make_notifier` and `notifier_class` (a notifier by its channel
`type:`), `Dispatcher` (the pure pipeline, also the backtest's). Channel plugins subclass
`base.Notifier`; see docs/architecture.md for the path an alert takes.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
