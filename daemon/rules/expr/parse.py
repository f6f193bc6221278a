"""The expression parser: tokens to a type-checked tree of closures (`_Parser`).

The grammar, its limits and the error style are in the package docstring (`daemon.rules.expr`).
Compiling type-checks as it parses, so a tree that compiled cannot fail when evaluated.
"""

from __future__ import annotations

import datetime as dt
import difflib
import operator
import re
from dataclasses import dataclass, field
from typing import Literal

from daemon.rules.expr.functions import (
    _ARITH,
    _CMP,
    _QUOTE_FUNCS,
    FUNCTIONS,
    AnchorDay,
    _binop,
    _chain,
    _Cond,
    _div,
    _fin,
    _kleene,
    _lift,
    _Num,
    _price,
    _pure_extreme,
    _ret,
    _since,
    _windowed,
)
from daemon.rules.expr.lex import _KEYWORDS, _SYMBOL, ExprError, _Tok, _tokenize
from daemon.rules.expr.windows import BUCKETS

MAX_NODES = 200
MAX_DEPTH = 32
MIN_SAMPLES = 5
MAX_WINDOW_MS = 3650 * 86_400_000
_QUOTED_SYMBOL = re.compile(r"[A-Za-z0-9^$][A-Za-z0-9.\-^=/:_]{0,19}\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


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
