"""Stage 3, the judgement: rule files to alert transitions, pure (time passed in, no I/O).

The names the other stages may use are `__all__`, each with its module in `__init__.pyi`,
imported on first use: `compile_rules` (rules → a `Plan`), `Driver` and `simulate` (the one loop
the daemon, `tickwatch test` and the backtest all run), the rule models (`Rule`, `RuleFile`),
`nyse` (the exchange calendar) and the message templates. `Evaluator` is the daemon's Redis
shell around the driver, through `daemon.store` only.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
