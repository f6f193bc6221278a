"""The rolling buffers behind the expression window functions (sma, ema, stdev, change, ...).

Why not `daemon.rules.market.Window`, the other rolling window here: the two are different data
structures, and sharing one would change behaviour or cost. `market.Window` is one per symbol,
shared by every rule over it: raw ticks (every one kept) in lists so `bisect` can answer "the
price N ago" for any span up to the longest asked for. A `_Buffer` is one per window call per
alert, over whatever series its argument computes (a spread, a return, not only a price): samples
coalesced per span/1000 bucket, so memory is bounded whatever the tick rate, with running sums
for sma/stdev/zscore in O(1) and min/max over exactly (now - W, now]. Using `Window` here would
lose the coalescing and the running sums (O(n) per evaluation); using `_Buffer` for prices
would coalesce ticks and change which price is "30 minutes ago". What they do share is the gap
rule of `reference` (after a gap over 2W, the oldest sample inside the window): kept the same
in both on purpose, written out in each rather than shared through a call on the hot path.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Callable

from daemon.rules.expr.functions import AnchorDay, _div, _fin
from daemon.rules.market import NEW_YORK

BUCKETS = 1000


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
