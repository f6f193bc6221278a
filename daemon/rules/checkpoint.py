"""The evaluator checkpoint's fields: last prices, anchor prices and bars still to be judged."""

from __future__ import annotations

import datetime as dt
import json

from daemon.rules.evaluate import Engine
from daemon.rules.market import Quote

__all__ = ["checkpoint_fields", "load_checkpoint"]


def checkpoint_fields(engine: Engine) -> dict[str, str]:
    """Last price of each symbol touched since the last call (with its kind and feed), every
    anchor price, and the bars of `evaluate: bar_close` rules still to be judged."""
    m = engine.market
    out = {}
    for sym in m.dirty:
        q = m.quotes[sym]
        out[f"q:{sym}"] = f"{q.price!r} {q.ts_ms} {q.kind} {q.source}".rstrip()
    m.dirty.clear()
    if out:
        for (sym, day), price in m.anchors.prices.items():
            out[f"a:{sym}:{day.isoformat()}"] = repr(price)
    if engine.bars.open or engine.bars.judged:
        out["bars"] = json.dumps(engine.bars.to_dict())
    return out


def load_checkpoint(engine: Engine, fields: dict[str, str]) -> None:
    m = engine.market
    for name, value in fields.items():
        kind, _, rest = name.partition(":")
        if kind == "q":
            price, ts, *more = value.split(" ", 3)
            q = m.quotes[rest] = Quote(float(price), int(ts))
            if more:
                q.kind = more[0]
                q.source = more[1] if len(more) > 1 else ""
        elif kind == "a":
            sym, _, day = rest.rpartition(":")
            m.anchors.prices[(sym, dt.date.fromisoformat(day))] = float(value)
        elif kind == "bars":
            engine.bars.load(json.loads(value))
