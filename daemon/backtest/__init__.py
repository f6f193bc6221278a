"""`tickwatch backtest`: rules tried on history with the live daemon's semantics.

The stages mirror the daemon's: `data` reads history files in time order (in chunks), `run`
feeds them through the same `Driver` and compiled plan as the evaluator and through the same
delivery decisions (`daemon.notify.dispatch`) on simulated time, `model` holds what came out,
and `table`, `files`, `charts` and `html` show it. Nothing here touches Redis or the network
(`fetch` excepted: it fills the history cache from a provider's REST API, once).
"""
