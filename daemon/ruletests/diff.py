"""Expected against told transitions: matching, the aligned diff and a test's result (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from daemon.alerts import AlertEvent
from daemon.ruletests.schema import DEFAULT_TOL

__all__ = ["CaseResult", "DiffLine", "Expected", "compare", "matches"]


@dataclass(frozen=True, slots=True)
class Expected:
    """One expected transition, its time resolved to epoch ms, and where it was written."""

    ts_ms: int
    rule: str
    state: str
    labels: dict[str, str]
    value: float | None = None
    tol: float = DEFAULT_TOL
    summary: str | None = None
    channels: tuple[str, ...] | None = None
    line: int = 0


def matches(e: Expected, a: AlertEvent) -> bool:
    """Whether the transition `a` is the expected `e` (labels: subset; value: within tol)."""
    if (e.ts_ms, e.rule, e.state) != (a.ts_ms, a.rule, a.state):
        return False
    if any(a.labels.get(k) != v for k, v in e.labels.items()):
        return False
    if e.value is not None and (a.value is None or not abs(a.value - e.value) <= e.tol):
        return False
    if e.summary is not None and e.summary != a.summary:
        return False
    return e.channels is None or sorted(e.channels) == sorted(a.channels)


@dataclass(frozen=True, slots=True)
class DiffLine:
    """One line of a test's diff: `' '` as expected, `'-'` expected only, `'+'` got only."""

    mark: Literal[" ", "-", "+"]
    expected: Expected | None
    got: AlertEvent | None


def _align_same_instant(expected: list[Expected], got: list[AlertEvent]) -> list[AlertEvent]:
    """`got` with transitions of one instant reordered to follow the expectations' order.

    Several alerts changing at one instant come out in plan order, which a test author should
    not have to know; only the order of instants is significant.
    """
    out: list[AlertEvent] = []
    i = 0
    while i < len(got):
        j = i
        while j < len(got) and got[j].ts_ms == got[i].ts_ms:
            j += 1
        group = got[i:j]
        placed: list[AlertEvent] = []
        for e in expected:
            if e.ts_ms != got[i].ts_ms:
                continue
            for k, a in enumerate(group):
                if matches(e, a):
                    placed.append(group.pop(k))
                    break
        out += placed + group
        i = j
    return out


def compare(expected: Sequence[Expected], got: Sequence[AlertEvent]) -> list[DiffLine]:
    """Align expected and actual transitions (longest common subsequence under `matches`).

    The test passes when every line is `' '`. Unmatched lines between two matches are merged
    by time, expected before got at one instant, so a near miss shows as a `-`/`+` pair.
    """
    exp = list(expected)
    act = _align_same_instant(exp, list(got))
    n, m = len(exp), len(act)
    if n * m > 4_000_000:  # far beyond any hand-written test; pair by position, stay linear
        pairs = [(i, i) for i in range(min(n, m)) if matches(exp[i], act[i])]
    else:
        lcs = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(n - 1, -1, -1):
            for j in range(m - 1, -1, -1):
                if matches(exp[i], act[j]):
                    lcs[i][j] = lcs[i + 1][j + 1] + 1
                else:
                    lcs[i][j] = max(lcs[i + 1][j], lcs[i][j + 1])
        pairs = []
        i = j = 0
        while i < n and j < m:
            if matches(exp[i], act[j]) and lcs[i][j] == lcs[i + 1][j + 1] + 1:
                pairs.append((i, j))
                i, j = i + 1, j + 1
            elif lcs[i + 1][j] >= lcs[i][j + 1]:
                i += 1
            else:
                j += 1
    out: list[DiffLine] = []
    i = j = 0
    for pi, pj in [*pairs, (n, m)]:
        run: list[tuple[int, int, DiffLine]] = [
            (exp[k].ts_ms, 0, DiffLine("-", exp[k], None)) for k in range(i, pi)
        ]
        run += [(act[k].ts_ms, 1, DiffLine("+", None, act[k])) for k in range(j, pj)]
        out += [d for _, _, d in sorted(run, key=lambda r: (r[0], r[1]))]
        if pi < n and pj < m:
            out.append(DiffLine(" ", exp[pi], act[pj]))
        i, j = pi + 1, pj + 1
    return out


@dataclass(slots=True)
class CaseResult:
    file: str
    name: str
    line: int
    start_ms: int
    diff: list[DiffLine]
    expected: list[Expected]

    @property
    def passed(self) -> bool:
        return all(d.mark == " " for d in self.diff)
