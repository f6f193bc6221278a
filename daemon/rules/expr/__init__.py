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

The package: `lex` (text to tokens), `parse` (tokens to a type-checked tree of closures),
`functions` (what each operator and function computes), `windows` (the rolling buffers of the
window functions), `compiled` (`Expr`, `ExprState`, `compile_expr`). The names below are
importable from here as they always were.
"""

from __future__ import annotations

from daemon.rules.expr.compiled import MAX_LENGTH, Expr, ExprState, compile_expr
from daemon.rules.expr.functions import FUNCTIONS, AnchorDay
from daemon.rules.expr.lex import MAX_DIGITS as MAX_DIGITS
from daemon.rules.expr.lex import ExprError
from daemon.rules.expr.parse import MAX_DEPTH, MAX_NODES
from daemon.rules.expr.parse import MAX_WINDOW_MS as MAX_WINDOW_MS
from daemon.rules.expr.parse import MIN_SAMPLES as MIN_SAMPLES
from daemon.rules.expr.windows import BUCKETS as BUCKETS

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "MAX_NODES", "AnchorDay", "Expr", "ExprError",
           "ExprState", "compile_expr"]  # fmt: skip
