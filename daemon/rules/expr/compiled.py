"""A compiled expression (`Expr`), its per-alert evaluation state (`ExprState`), `compile_expr`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from daemon.rules.expr.functions import AnchorDay
from daemon.rules.expr.lex import ExprError
from daemon.rules.expr.parse import _describe, _Node, _Parser
from daemon.rules.expr.windows import _Buffer, _Ema, _Extreme
from daemon.rules.market import NEW_YORK, Market

MAX_LENGTH = 1000


class Expr:
    """A compiled expression: what it reads, and a factory for per-alert evaluation state."""

    __slots__ = ("_extremes", "_root", "_uses_ytd", "_windows", "anchors", "returns_bool",
                 "symbols", "text", "value_names")  # fmt: skip

    def __init__(self, text: str, root: _Node, p: _Parser):
        self.text = text
        self.symbols: frozenset[str] = frozenset(p.symbols)
        self.anchors: Mapping[str, frozenset[AnchorDay]] = {
            s: frozenset(days) for s, days in p.anchors.items()
        }
        self.returns_bool = root.kind == "bool"
        #: the keys `ExprState.values()` can hold: value, threshold, value2, threshold2, ...
        self.value_names: tuple[str, ...] = tuple(p.keys)
        fn = root.cond if root.cond is not None else root.num
        assert fn is not None
        self._root: Callable[[ExprState], bool | float | None] = fn
        self._extremes = tuple(p.extremes)
        self._uses_ytd = any("ytd" in days for days in self.anchors.values()) or any(
            day == "ytd" for _, day in self._extremes
        )
        self._windows = tuple(p.windows)

    def instance(self) -> ExprState:
        return ExprState(self)

    def track(self, market: Market) -> None:
        """Make `market` record the anchor prices this expression reads."""
        for sym, days in self.anchors.items():
            for day in days:
                if day == "ytd":
                    market.ytd_symbols.add(sym)
                else:
                    market.anchor_days.setdefault(sym, set()).add(day)

    def __repr__(self) -> str:
        return f"Expr({self.text!r})"


_NO_MARKET = Market()


class ExprState:
    """One alert's evaluation state: the rolling buffers of its window calls, its last values."""

    __slots__ = ("_bufs", "_emas", "_expr", "_extremes", "_market", "_now", "_values",
                 "_year_start")  # fmt: skip

    def __init__(self, expr: Expr):
        self._expr = expr
        self._bufs = [
            _Buffer(ms, f in ("pct_change", "change")) for f, ms in expr._windows if f != "ema"
        ]
        self._emas = [_Ema(ms) for f, ms in expr._windows if f == "ema"]
        self._extremes = [
            _Extreme(max if f == "high_since" else min, day) for f, day in expr._extremes
        ]
        self._market, self._now = _NO_MARKET, 0
        self._values: dict[str, float] = {}
        self._year_start = dt.date(1970, 1, 1)

    def evaluate(self, market: Market, now_ms: int) -> bool | float | None:
        """The value now: a bool for a condition, None while there is not enough data."""
        self._market, self._now, self._values = market, now_ms, {}
        if self._expr._uses_ytd:
            year = dt.datetime.fromtimestamp(now_ms / 1000, NEW_YORK).year
            self._year_start = dt.date(year, 1, 1)
        return self._expr._root(self)

    def values(self) -> dict[str, float]:
        """Both sides of each comparison at the last evaluation (value, threshold, value2, ...)."""
        return dict(self._values)


def compile_expr(text: str, *, condition: bool = True) -> Expr:
    """Parse and check `text`; with `condition` (the default) it must be true/false."""
    if len(text) > MAX_LENGTH:
        raise ExprError(
            f"expression is {len(text)} characters; the limit is {MAX_LENGTH}", MAX_LENGTH + 1
        )
    p = _Parser(text)
    root = p.parse()
    if root.kind == "bool" or (root.kind == "num" and not condition):
        return Expr(text, root, p)
    shown = text.strip() if len(text.strip()) <= 60 else "..."
    hint = f"e.g. {shown} < 8" if root.kind == "num" else f"got {_describe(root)}"
    raise ExprError(f"a condition must compare something, {hint}", len(text.rstrip()) + 1)
