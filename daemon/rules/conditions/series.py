"""Measures with state of their own per alert instance: expressions and series crossings."""

from __future__ import annotations

from typing import ClassVar, Self

from daemon.rules.conditions.base import Reading, _Slow
from daemon.rules.conditions.price import Spread
from daemon.rules.expr import Expr
from daemon.rules.market import Market
from daemon.rules.schema import CrossesCond

__all__ = ["ExprMeasure", "ExprSeries", "SeriesCross"]


class SeriesCross(_Slow):
    """A series (a spread, a ratio, an expression's value) crossing a level between two
    consecutive judged steps: an event, like `Crosses` on a price.

    The previous value is this measure's own state, so each alert instance has its own
    (`fresh`) and history replays through it at start-up (`warms`).
    """

    kind: ClassVar[str] = "crosses"
    event: ClassVar[bool] = True

    def __init__(self, cond: CrossesCond, series: Spread | ExprSeries):
        self.cond = cond
        self.series = series
        self.symbols: tuple[str, ...] = series.symbols
        self.labels: dict[str, str] = dict(series.labels)
        self.level = cond.level
        self.direction = cond.direction
        self._before: float | None = None

    def fresh(self) -> SeriesCross:
        series = self.series.fresh() if isinstance(self.series, ExprSeries) else self.series
        return SeriesCross(self.cond, series)

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        r = self.series.measure(m, now_ms)
        if r is None or r.value != r.value:
            return None
        now, before = r.value, self._before
        self._before = now
        lvl = self.level
        up = before is not None and before <= lvl < now
        down = before is not None and before >= lvl > now
        d = self.direction
        crossed = up if d == "up" else down if d == "down" else up or down
        how = "crossed up" if up else "crossed down" if down else "crosses"
        values: dict[str, float | str] = {**r.values, "value": now}
        if before is not None:
            values["from_value"] = before
        return Reading(now, crossed, not crossed, values, True, lvl, how)


class ExprMeasure(_Slow):
    """A condition written in the expression language (`daemon.rules.expr`)."""

    kind: ClassVar[str] = "expr"

    def __init__(self, expr: Expr):
        self.expr = expr
        self.state = expr.instance()
        self.symbols: tuple[str, ...] = tuple(sorted(expr.symbols))
        self.labels: dict[str, str] = {}

    def fresh(self) -> Self:
        """Same expression, its own rolling windows (one per alert instance)."""
        return type(self)(self.expr)

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        result = self.state.evaluate(m, now_ms)
        if result is None:
            return None
        active = bool(result)
        values: dict[str, float | str] = dict(self.state.values())
        value = float(values.get("value", float("nan")))
        threshold = values.get("threshold")
        return Reading(
            value, active, not active, values, False,
            float(threshold) if threshold is not None else None, "vs",
        )  # fmt: skip


class ExprSeries(ExprMeasure):
    """An expression's numeric value as a series (`crosses: {expr: ...}`): not a condition of
    its own, so its reading is the value, never active."""

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        result = self.state.evaluate(m, now_ms)
        if result is None or isinstance(result, bool):
            return None
        values: dict[str, float | str] = dict(self.state.values())
        return Reading(float(result), False, True, values, False, None, "expr")
