"""Safe expressions for rule conditions: `when: {expr: "ytd_return(XMAG) - ytd_return(MAGS) < 8"}`.

Why a hand-written tokenizer and recursive-descent parser, not `eval` or `ast.parse`: the text
comes from a rule file, so nothing in it may reach a Python object; durations (`20d`) are not
Python syntax; and each refusal must name the column of the offending token with a one-line fix.
Compiling type-checks the tree (number, condition, symbol, duration, quoted text) into closures,
so evaluating cannot raise: missing data of any kind is None ("not enough data yet").

Grammar, lowest precedence first::

    condition := or
    or        := and ("or" and)*
    and       := not ("and" not)*
    not       := "not" not | compare
    compare   := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)*   # a < b < c chains
    sum       := product (("+" | "-") product)*
    product   := unary (("*" | "/") unary)*
    unary     := ("-" | "+") unary | atom
    atom      := NUMBER | SYMBOL | QUOTED | DURATION | "(" condition ")"
               | NAME "(" [condition ("," condition)*] ")"

NUMBER: 12, 0.5, .5 (at most 15 digits, no exponent). SYMBOL: a bare upper-case name (XMAG,
BRK_B); other symbols are quoted ("BRK.B", "^VIX"). QUOTED text is only a symbol or a date
(return_since(XMAG, "2026-01-02")). DURATION (500ms, 30s, 5m, 1h30m, 20d, 2w) is only a window
argument. `**` is refused. Limits: 1,000 characters, 200 nodes, nesting depth 32. The top level
must be a condition, unless compiled with `condition=False`.

Semantics:
- `/` by zero, a non-finite result, a missing quote or anchor, an unfilled window: None.
- `and`/`or`/`not` are three-valued (False and None = False, True or None = True, otherwise
  None) and never short-circuit, so every window function is sampled on every evaluation.
- mid = (bid + ask) / 2, or the last price without both sides (`Quote.read`). ytd_return =
  (price / anchor(Jan 1 of now's New York year) - 1) * 100; return_since likewise with the
  date's anchor (`Expr.track` tells a `Market` to record them). spread = A - B; ratio = A / B.
- min/max with a duration second argument are window functions; otherwise min/max of 2-8 numbers.
- Window functions sample their argument at `now_ms` each evaluation, into state keyed by call
  site in the `ExprState`. Samples in one W/1000 time bucket coalesce (the newest wins), so a
  buffer holds at most ~1,000 samples whatever the tick rate. A None argument is not sampled.
  sma, stdev, zscore, min, max: over the samples in (now - W, now], the current one included;
  None until `min_samples` samples (default 5, optional third argument). stdev is the sample
  (n - 1) standard deviation; zscore = (x - sma) / stdev, None while stdev is 0.
  ema = Σ wᵢxᵢ / Σ wᵢ, wᵢ = exp(-(now - tᵢ) / (W/2)): the mean lag of sma over W (W/2); as
  pandas `ewm(halflife=W/2 * ln 2, times=t).mean()`. None until `min_samples` samples.
  pct_change = (x - x₀) / |x₀| * 100, x₀ the last sample at or before now - W; None until the
  history reaches back W. After a gap over 2W, x₀ is the oldest sample inside the window (as
  `Window.reference`: a move across a night or an outage is not a move "within" W).
  change = x - x₀ with the same x₀: e.g. `change(ytd_return(XMAG) - ytd_return(MAGS), 1d) < -1`
  is "the spread compressed by more than a point in a day".
- high_since/low_since: the highest/lowest sample of x since New York midnight starting the
  date ("ytd": January 1 of now's New York year, so it starts afresh each year), the current
  sample included: `high_since(s, "ytd") - s > 3` with s the YTD spread is "3 points off its
  high of the year". Like windows, rebuilt from stream history at start (`evaluator.warmup`).
- `ExprState.values()`: both sides of each comparison, in reading order, as value/threshold,
  value2/threshold2, ... (`Expr.value_names`), for message templates.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import operator
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from daemon.durations import parse_duration
from daemon.rules.market import NEW_YORK, Market

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "AnchorDay", "Expr", "ExprError",
           "ExprState", "compile_expr"]  # fmt: skip

MAX_LENGTH = 1000
MAX_NODES = 200
MAX_DEPTH = 32
MAX_DIGITS = 15
MIN_SAMPLES = 5
BUCKETS = 1000
MAX_WINDOW_MS = 3650 * 86_400_000
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
_KEYWORDS = ("and", "or", "not")
_OPS = ("<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "(", ")", ",")
_CMP: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}  # fmt: skip
_REFUSED = {
    "**": "'**' (power) is not allowed; multiply instead, e.g. x * x",
    "//": "'//' is not allowed; use / to divide", "%": "'%' is not allowed",
    "&&": "'&&' is not allowed; write 'and'", "&": "'&' is not allowed; write 'and'",
    "||": "'||' is not allowed; write 'or'", "|": "'|' is not allowed; write 'or'",
    "!": "'!' is not allowed; write 'not'", "~": "'~' is not allowed; write 'not' or '-'",
    "=": "'=' is not allowed; compare with == (there are no assignments or keyword arguments)",
    "[": "subscripts and lists are not allowed", "]": "subscripts and lists are not allowed",
    "{": "braces are not allowed", "}": "braces are not allowed",
}  # fmt: skip
_DIGITS = frozenset("0123456789")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[0-9.][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)\Z")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_QUOTED_SYMBOL = re.compile(r"[A-Za-z0-9^$][A-Za-z0-9.\-^=/:_]{0,19}\Z")
_DURATION_LIKE = re.compile(r"(?:\d+(?:\.\d+)?[A-Za-z]+)+\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_Num = Callable[["ExprState"], float | None]
_Cond = Callable[["ExprState"], bool | None]


class ExprError(ValueError):
    """Why an expression was refused, with the 1-based `column` of the offending token."""

    def __init__(self, message: str, column: int):
        super().__init__(f"column {column}: {message}")
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: Literal["num", "dur", "name", "kw", "str", "op", "end"]
    text: str
    col: int
    value: float = 0.0  # a number, or a duration in ms


def _word(word: str, col: int) -> _Tok:
    if _NUMBER.match(word):
        if sum(c.isdigit() for c in word) > MAX_DIGITS:
            raise ExprError(f"number {word} has more than {MAX_DIGITS} digits", col)
        return _Tok("num", word, col, float(word))
    if not _DURATION_LIKE.match(word):
        raise ExprError(f"'{word}' is neither a number (12, 0.5) nor a duration (30s, 20d)", col)
    try:
        ms = parse_duration(word).total_seconds() * 1000
    except ValueError as e:
        raise ExprError(str(e), col) from None
    return _Tok("dur", word, col, ms)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch, col = text[i], i + 1
        if ch.isspace():
            i += 1
        elif ch in _DIGITS or (ch == "." and text[i + 1 : i + 2] in _DIGITS):
            m = _WORD.match(text, i)
            assert m is not None
            toks.append(_word(m.group(), col))
            i = m.end()
        elif ch.isascii() and (ch.isalpha() or ch == "_"):
            m = _NAME.match(text, i)
            assert m is not None
            kind: Literal["name", "kw"] = "kw" if m.group() in _KEYWORDS else "name"
            toks.append(_Tok(kind, m.group(), col))
            i = m.end()
        elif ch in "\"'":
            j = text.find(ch, i + 1)
            if j < 0:
                raise ExprError("unterminated quoted text", col)
            if j - i - 1 > 32:
                raise ExprError("quoted text longer than 32 characters", col)
            toks.append(_Tok("str", text[i + 1 : j], col))
            i = j + 1
        elif ch == ".":
            prev, after = (toks[-1] if toks else None), _NAME.match(text, i + 1)
            if prev and prev.kind == "name" and _SYMBOL.match(prev.text) and after:
                raise ExprError(
                    f'dotted symbols must be quoted: write "{prev.text}.{after.group()}"', col
                )
            raise ExprError("attribute access ('.') is not allowed", col)
        else:
            two = text[i : i + 2]
            op = two if two in _OPS or two in _REFUSED else ch
            if op in _REFUSED:
                raise ExprError(_REFUSED[op], col)
            if op not in _OPS:
                raise ExprError(f"unexpected character {ch!r}", col)
            toks.append(_Tok("op", op, col))
            i += len(op)
    toks.append(_Tok("end", "", n + 1))
    return toks


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


class _Buffer:
    """Trailing (t, x) samples over `span` ms, coalesced per span/1000 bucket, with running sums.

    Sums are of x - k (k a recent mean) to keep cancellation small, and are recomputed exactly
    every few thousand updates and whenever the variance looks like zero.
    """

    __slots__ = ("_k", "_ops", "_s1", "_s2", "bucket", "keep_before", "span", "t", "x")

    def __init__(self, span_ms: int, keep_before: bool = False):
        self.span, self.bucket, self.keep_before = span_ms, max(1, span_ms // BUCKETS), keep_before
        self.t: deque[int] = deque()
        self.x: deque[float] = deque()
        self._k = self._s1 = self._s2 = 0.0
        self._ops = 0

    def _add(self, v: float, sign: float) -> None:
        d = v - self._k
        self._s1 += sign * d
        self._s2 += sign * d * d

    def _resum(self) -> None:
        self._k = math.fsum(self.x) / len(self.x)
        self._s1 = math.fsum(v - self._k for v in self.x)
        self._s2 = math.fsum((v - self._k) ** 2 for v in self.x)
        self._ops = 0

    def push(self, now: int, v: float) -> int:
        t, x = self.t, self.x
        if t and now < t[-1]:
            now = t[-1]  # the clock never moves back
        if t and now // self.bucket == t[-1] // self.bucket:
            t.pop()
            self._add(x.pop(), -1.0)
        if not t:
            self._k, self._s1, self._s2 = v, 0.0, 0.0
        t.append(now)
        x.append(v)
        self._add(v, 1.0)
        cutoff = now - self.span
        if self.keep_before:  # keep the last sample at or before the cutoff
            while len(t) > 1 and t[1] <= cutoff:
                t.popleft()
                self._add(x.popleft(), -1.0)
        else:
            while t[0] <= cutoff:  # never empties: the newest sample is at `now`
                t.popleft()
                self._add(x.popleft(), -1.0)
        self._ops += 1
        if self._ops > 4 * BUCKETS:
            self._resum()
        return now

    def mean(self) -> float:
        return self._k + self._s1 / len(self.x)

    def stdev(self) -> float:
        n = len(self.x)
        var = (self._s2 - self._s1 * self._s1 / n) / (n - 1)
        if var <= 1e-18 * (self.mean() ** 2 + 1e-300):  # zero within rounding: look closer
            if min(self.x) == max(self.x):
                return 0.0
            self._resum()
            var = (self._s2 - self._s1 * self._s1 / n) / (n - 1)
        return math.sqrt(max(var, 0.0))

    def reference(self, now: int) -> float | None:
        """The value a window ago (same gap rule as `pct_change`), None if history is short."""
        cutoff = now - self.span
        if self.t[0] > cutoff:
            return None  # the history does not reach back a whole window yet
        return self.x[1] if self.t[0] < cutoff - self.span else self.x[0]

    def pct_change(self, now: int, v: float) -> float | None:
        ref = self.reference(now)
        return None if ref is None else _fin(_div((v - ref) * 100, abs(ref)))

    def change(self, now: int, v: float) -> float | None:
        ref = self.reference(now)
        return None if ref is None else _fin(v - ref)


class _Extreme:
    """The running high or low of a series since an anchor day's New York midnight."""

    __slots__ = ("day", "pick", "start_ms", "value")

    def __init__(self, pick: Callable[[float, float], float], day: AnchorDay):
        self.pick, self.day = pick, day
        self.start_ms = 0
        self.value: float | None = None

    def push(self, now: int, v: float, year_start: dt.date) -> float | None:
        day = year_start if self.day == "ytd" else self.day
        start = int(dt.datetime.combine(day, dt.time(), NEW_YORK).timestamp() * 1000)
        if start != self.start_ms:  # a new year (ytd) or the first sample
            self.start_ms, self.value = start, None
        if now < start:
            return None  # before the anchor: nothing to compare yet
        self.value = v if self.value is None else self.pick(self.value, v)
        return self.value


class _Ema:
    """Time-weighted EMA, Σ wᵢxᵢ / Σ wᵢ with wᵢ = exp(-age / tau), kept as two running sums."""

    __slots__ = ("_prev", "_s", "_t", "_w", "bucket", "n", "tau")

    def __init__(self, span_ms: int):
        self.tau, self.bucket = span_ms / 2, max(1, span_ms // BUCKETS)
        self._s = self._w = 0.0
        self._t: int | None = None
        self._prev: tuple[float, float, int | None] = (0.0, 0.0, None)
        self.n = 0

    def push(self, now: int, v: float) -> float:
        if self._t is not None and now < self._t:
            now = self._t
        if self._t is not None and now // self.bucket == self._t // self.bucket:
            s, w, t0 = self._prev  # same bucket: replace the last sample
        else:
            s, w, t0 = self._prev = (self._s, self._w, self._t)
            self.n += 1
        d = 0.0 if t0 is None else math.exp(-(now - t0) / self.tau)
        self._s, self._w, self._t = s * d + v, w * d + 1.0, now
        return self._s / self._w


@dataclass(slots=True)
class _Node:
    kind: Literal["num", "bool", "sym", "dur", "str"]
    col: int
    text: str
    num: _Num | None = None
    cond: _Cond | None = None
    const: float | None = None  # a bare number literal
    ms: int = 0


def _describe(n: _Node) -> str:
    return {
        "num": "a number", "bool": "a condition",
        "sym": f"the symbol {n.text} (write price({n.text}) for its price)",
        "dur": f"the duration {n.text} (a duration is only a window, e.g. sma(x, {n.text}))",
        "str": f'the quoted text "{n.text}" (quotes are only for symbols and dates)',
    }[n.kind]  # fmt: skip


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


@dataclass
class _Parser:
    text: str
    toks: list[_Tok] = field(default_factory=list)
    i: int = 0
    nodes: int = 0
    depth: int = 0
    symbols: set[str] = field(default_factory=set)
    anchors: dict[str, set[AnchorDay]] = field(default_factory=dict)
    windows: list[tuple[str, int]] = field(default_factory=list)  # (function, span ms)
    extremes: list[tuple[str, AnchorDay]] = field(default_factory=list)  # (function, day)
    keys: list[str] = field(default_factory=list)

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, kind: str, *texts: str) -> bool:
        t = self.toks[self.i]
        return t.kind == kind and t.text in texts

    def count(self, col: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExprError(f"expression has more than {MAX_NODES} parts; simplify it", col)

    def enter(self, col: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression is nested deeper than {MAX_DEPTH} levels", col)

    def as_num(self, n: _Node, what: str) -> _Num:
        if n.num is None:
            raise ExprError(f"{what} needs a number, got {_describe(n)}", n.col)
        return n.num

    def as_cond(self, n: _Node, what: str) -> _Cond:
        if n.cond is None:
            raise ExprError(
                f"{what} needs a condition (e.g. price(X) > 5), got {_describe(n)}", n.col
            )
        return n.cond

    def parse(self) -> _Node:
        self.toks = _tokenize(self.text)
        if self.peek().kind == "end":
            raise ExprError("empty expression", 1)
        node = self.or_()
        t = self.peek()
        if t.kind != "end":
            if t.kind == "name" and t.text.lower() in _KEYWORDS:
                raise ExprError(f"write '{t.text.lower()}' in lower case", t.col)
            if t.text == ")":
                raise ExprError("unmatched ')'", t.col)
            raise ExprError(f"unexpected '{t.text}'; expected an operator or the end", t.col)
        return node

    def or_(self, op: str = "or") -> _Node:
        first = self.and_() if op == "or" else self.not_()
        items = [first]
        while self.at("kw", op):
            self.count(self.take().col)
            items.append(self.and_() if op == "or" else self.not_())
        if len(items) == 1:
            return first
        fns = [self.as_cond(n, f"'{op}'") for n in items]
        return _Node("bool", first.col, op, cond=_kleene(op, fns))

    def and_(self) -> _Node:
        return self.or_("and")

    def not_(self) -> _Node:
        if not self.at("kw", "not"):
            return self.compare()
        t = self.take()
        self.count(t.col)
        self.enter(t.col)
        x = self.as_cond(self.not_(), "'not'")
        self.depth -= 1
        return _Node("bool", t.col, "not", cond=lambda s: None if (v := x(s)) is None else not v)

    def compare(self) -> _Node:
        first = self.sum_()
        operands, ops = [first], []
        while self.at("op", *_CMP):
            t = self.take()
            self.count(t.col)
            ops.append(t.text)
            operands.append(self.sum_())
        if not ops:
            return first
        fns = [self.as_num(n, f"'{ops[max(k - 1, 0)]}'") for k, n in enumerate(operands)]
        keys = []
        for _ in ops:
            k = len(self.keys) // 2
            pair = ("value", "threshold") if k == 0 else (f"value{k + 1}", f"threshold{k + 1}")
            self.keys.extend(pair)
            keys.append(pair)
        return _Node("bool", first.col, "compare", cond=_chain(fns, ops, keys))

    def sum_(self, ops: tuple[str, str] = ("+", "-")) -> _Node:
        left = self.sum_(("*", "/")) if ops == ("+", "-") else self.unary()
        while self.at("op", *ops):
            t = self.take()
            self.count(t.col)
            right = self.sum_(("*", "/")) if ops == ("+", "-") else self.unary()
            a, b = self.as_num(left, f"'{t.text}'"), self.as_num(right, f"'{t.text}'")
            left = _Node("num", left.col, t.text, num=_binop(_ARITH[t.text], a, b))
        return left

    def unary(self) -> _Node:
        if not self.at("op", "-", "+"):
            return self.atom()
        t = self.take()
        self.count(t.col)
        self.enter(t.col)
        x = self.as_num(self.unary(), f"unary '{t.text}'")
        self.depth -= 1
        if t.text == "+":
            return _Node("num", t.col, "+", num=x)
        return _Node("num", t.col, "-", num=lambda s: None if (v := x(s)) is None else -v)

    def atom(self) -> _Node:
        t = self.take()
        if t.kind == "end":
            raise ExprError("unexpected end; expected a number, symbol or function call", t.col)
        self.count(t.col)
        if t.kind == "num":
            v = t.value
            return _Node("num", t.col, t.text, num=lambda s: v, const=v)
        if t.kind in ("dur", "str"):
            return _Node("dur" if t.kind == "dur" else "str", t.col, t.text, ms=int(t.value))
        if t.text == "(":
            self.enter(t.col)
            node = self.or_()
            self.depth -= 1
            if not self.at("op", ")"):
                raise ExprError(f"missing ')' for the '(' at column {t.col}", self.peek().col)
            self.take()
            return node
        if t.kind == "name" and self.at("op", "("):
            return self.call(t)
        if t.kind == "name" and _SYMBOL.match(t.text):
            return _Node("sym", t.col, t.text)
        if t.text in FUNCTIONS:
            raise ExprError(f"'{t.text}' is a function; call it: {FUNCTIONS[t.text]}", t.col)
        if t.kind == "name":
            raise ExprError(
                f"unknown name '{t.text}': symbols are upper-case (XMAG) or quoted "
                '("BRK.B"), functions are called with ()',
                t.col,
            )
        raise ExprError(f"unexpected '{t.text}'; expected a number, symbol or function call", t.col)

    def call(self, name: _Tok) -> _Node:
        f = name.text
        if f not in FUNCTIONS:
            near = difflib.get_close_matches(f, FUNCTIONS, n=1)
            hint = (
                f"did you mean '{near[0]}'?" if near else "known: " + ", ".join(sorted(FUNCTIONS))
            )
            raise ExprError(f"unknown function '{f}'; {hint}", name.col)
        self.enter(self.take().col)
        args: list[_Node] = []
        if not self.at("op", ")"):
            args.append(self.or_())
            while self.at("op", ","):
                self.take()
                args.append(self.or_())
        if not self.at("op", ")"):
            raise ExprError(f"expected ',' or ')' in {f}(...)", self.peek().col)
        self.take()
        self.depth -= 1
        return _Node("num", name.col, f, num=self.build(f, name.col, args))

    def arity(self, f: str, col: int, n: int, lo: int, hi: int) -> None:
        if not lo <= n <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            noun = "argument" if hi == 1 else "arguments"
            raise ExprError(f"{f}() takes {want} {noun}, got {n}: {FUNCTIONS[f]}", col)

    def sym(self, n: _Node, f: str, k: int) -> str:
        quoted = n.kind == "str" and _QUOTED_SYMBOL.match(n.text) and not _DATE.match(n.text)
        if n.kind == "sym" or quoted:
            self.symbols.add(n.text)
            return n.text
        raise ExprError(f"{f}() needs a symbol as argument {k}, got {_describe(n)}", n.col)

    def anchor(self, sym: str, day: AnchorDay) -> None:
        self.anchors.setdefault(sym, set()).add(day)

    def build(self, f: str, col: int, args: list[_Node]) -> _Num:
        n = len(args)
        if f in _QUOTE_FUNCS or f == "ytd_return":
            self.arity(f, col, n, 1, 1)
            sym = self.sym(args[0], f, 1)
            if f in _QUOTE_FUNCS:
                side = _QUOTE_FUNCS[f]
                return lambda s: (
                    None if (q := s._market.quotes.get(sym)) is None else _fin(q.read(side))
                )
            self.anchor(sym, "ytd")
            return lambda s: _lift(_ret, _price(s, sym), s._market.anchors.get(sym, s._year_start))
        if f == "return_since":
            self.arity(f, col, n, 2, 2)
            sym, d = self.sym(args[0], f, 1), args[1]
            if d.kind != "str" or not _DATE.match(d.text):
                raise ExprError(f'{f}() needs a date "YYYY-MM-DD" as argument 2', d.col)
            try:
                day = dt.date.fromisoformat(d.text)
            except ValueError:
                raise ExprError(f'"{d.text}" is not a valid date', d.col) from None
            self.anchor(sym, day)
            return lambda s: _lift(_ret, _price(s, sym), s._market.anchors.get(sym, day))
        if f in ("spread", "ratio"):
            self.arity(f, col, n, 2, 2)
            a, b = self.sym(args[0], f, 1), self.sym(args[1], f, 2)
            fn = operator.sub if f == "spread" else _div
            return lambda s: _lift(fn, _price(s, a), _price(s, b))
        if f == "abs":
            self.arity(f, col, n, 1, 1)
            x = self.as_num(args[0], "abs()")
            return lambda s: None if (v := x(s)) is None else abs(v)
        if f in ("high_since", "low_since"):
            self.arity(f, col, n, 2, 2)
            x, d = self.as_num(args[0], f"{f}()"), args[1]
            since: AnchorDay
            if d.kind == "str" and d.text == "ytd":
                since = "ytd"
            elif d.kind == "str" and _DATE.match(d.text):
                try:
                    since = dt.date.fromisoformat(d.text)
                except ValueError:
                    raise ExprError(f'"{d.text}" is not a valid date', d.col) from None
            else:
                raise ExprError(f'{f}() needs "ytd" or a date "YYYY-MM-DD" as argument 2', d.col)
            self.extremes.append((f, since))
            return _since(x, len(self.extremes) - 1)
        if f in ("min", "max") and not (n > 1 and args[1].kind == "dur"):
            self.arity(f, col, n, 2, 8)
            fns = [self.as_num(a, f"{f}()") for a in args]
            return _pure_extreme(min if f == "min" else max, fns)
        self.arity(f, col, n, 2, 2 if f in ("pct_change", "change") else 3)
        x = self.as_num(args[0], f"{f}()")
        w = args[1]
        if w.kind != "dur":
            raise ExprError(
                f"{f}() needs a window such as 20d or 30m as argument 2, got {_describe(w)}", w.col
            )
        if not 0 < w.ms <= MAX_WINDOW_MS:
            raise ExprError(f"window {w.text} must be longer than 0 and at most 3650d", w.col)
        min_n, lo = MIN_SAMPLES, 2 if f in ("stdev", "zscore") else 1
        if n == 3:
            c = args[2].const
            if c is None or c != int(c) or not lo <= c <= BUCKETS:
                raise ExprError(
                    f"min_samples must be a whole number from {lo} to {BUCKETS}", args[2].col
                )
            min_n = int(c)
        slot = sum(1 for g, _ in self.windows if (g == "ema") == (f == "ema"))
        self.windows.append((f, w.ms))
        return _windowed(f, x, slot, min_n)


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
