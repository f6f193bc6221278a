"""Stage 3, the judgement: rule files to alert transitions, pure (time passed in, no I/O).

What the other stages use: `compile` (rules → a `Plan`), `driver.Driver` and `driver.simulate`
(the one loop the daemon, `tickwatch test` and the backtest all run), `lifecycle.AlertState`,
`sessions` (the exchange calendar). `runner.Evaluator` is the daemon's Redis shell around the
driver, through `daemon.store` only.
"""
