"""What each operator and function of the expression language computes, as closures.

Every closure takes the `ExprState` and returns a number, a bool or None (not enough data);
none of them raises. The window functions keep their samples in `daemon.rules.expr.windows`.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from daemon.rules.expr.compiled import ExprState

AnchorDay = Literal["ytd"] | dt.date

#: name → usage, for arity messages and "did you mean".
FUNCTIONS = {
    "price": "price(SYM)", "bid": "bid(SYM)", "ask": "ask(SYM)", "mid": "mid(SYM)",
    "ytd_return": "ytd_return(SYM)", "return_since": 'return_since(SYM, "YYYY-MM-DD")',
    "spread": "spread(A, B)", "ratio": "ratio(A, B)", "abs": "abs(x)",
    "min": "min(a, b, ...) or min(x, window[, min_samples])",
    "max": "max(a, b, ...) or max(x, window[, min_samples])",
    "sma": "sma(x, window[, min_samples])", "ema": "ema(x, window[, min_samples])",
    "stdev": "stdev(x, window[, min_samples])", "zscore": "zscore(x, window[, min_samples])",
    "pct_change": "pct_change(x, window)",
    "change": "change(x, window)",
    "high_since": 'high_since(x, "YYYY-MM-DD" or "ytd")',
    "low_since": 'low_since(x, "YYYY-MM-DD" or "ytd")',
}  # fmt: skip
_QUOTE_FUNCS = {"price": "last", "bid": "bid", "ask": "ask", "mid": "mid"}
_CMP: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
_Num = Callable[["ExprState"], float | None]
_Cond = Callable[["ExprState"], bool | None]


def _fin(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _div(x: float, y: float) -> float | None:
    return None if y == 0 else x / y


def _ret(price: float, base: float) -> float | None:
    return None if base <= 0 else (price / base - 1) * 100


def _lift(
    fn: Callable[[float, float], float | None], x: float | None, y: float | None
) -> float | None:
    """fn(x, y), or None when either is None or the result is not finite."""
    return None if x is None or y is None else _fin(fn(x, y))


_ARITH: dict[str, Callable[[float, float], float | None]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _div,
}  # fmt: skip


def _binop(fn: Callable[[float, float], float | None], a: _Num, b: _Num) -> _Num:
    return lambda s: _lift(fn, a(s), b(s))  # both sides always: windows sample every time


def _price(s: ExprState, sym: str) -> float | None:
    q = s._market.quotes.get(sym)
    return None if q is None else q.price


def _kleene(op: str, fns: list[_Cond]) -> _Cond:
    stop, other = (False, True) if op == "and" else (True, False)

    def f(s: ExprState) -> bool | None:
        vals = [g(s) for g in fns]  # all of them: windows are sampled on every evaluation
        return stop if stop in vals else None if None in vals else other

    return f


def _chain(fns: list[_Num], ops: list[str], keys: list[tuple[str, str]]) -> _Cond:
    pairs = [(i, _CMP[op], *keys[i]) for i, op in enumerate(ops)]

    def f(s: ExprState) -> bool | None:
        vals = [g(s) for g in fns]
        out: bool | None = True
        for i, cmp, vkey, tkey in pairs:
            x, y = vals[i], vals[i + 1]
            if x is not None:
                s._values[vkey] = x
            if y is not None:
                s._values[tkey] = y
            r = None if x is None or y is None else cmp(x, y)
            out = False if r is False or out is False else None if r is None else out
        return out

    return f


def _pure_extreme(pick: Callable[[list[float]], float], fns: list[_Num]) -> _Num:
    def f(s: ExprState) -> float | None:
        vals = [g(s) for g in fns]
        got = [v for v in vals if v is not None]
        return pick(got) if len(got) == len(vals) else None

    return f


def _since(x: _Num, slot: int) -> _Num:
    def f(s: ExprState) -> float | None:
        v = x(s)
        return None if v is None else s._extremes[slot].push(s._now, v, s._year_start)

    return f


def _windowed(name: str, x: _Num, slot: int, min_n: int) -> _Num:
    def f(s: ExprState) -> float | None:
        v = x(s)
        if v is None:
            return None
        if name == "ema":
            e = s._emas[slot]
            out = e.push(s._now, v)
            return _fin(out) if e.n >= min_n else None
        b = s._bufs[slot]
        now = b.push(s._now, v)
        if name == "pct_change":
            return b.pct_change(now, v)
        if name == "change":
            return b.change(now, v)
        if len(b.x) < min_n:
            return None
        if name == "sma":
            return _fin(b.mean())
        if name == "min" or name == "max":
            return min(b.x) if name == "min" else max(b.x)
        sd = b.stdev()
        if name == "stdev":
            return _fin(sd)
        return _fin(_div(v - b.mean(), sd))  # zscore

    return f
