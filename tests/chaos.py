"""The chaos table: each chaos scenario records one row, and the run ends with the table.

A row is what a desk cares about after an incident: how many alerts should have gone out, how
many did, how many were lost, how many came twice, and whether the daemon stayed up. Recording
a row also checks it: nothing lost, no duplicate beyond what the scenario allows (at-least-once
delivery may repeat the one send in flight at a kill), the daemon up. `make chaos` runs the
scenarios marked `chaos`; CI runs them with the rest of the suite.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import pytest

__all__ = ["ROWS", "ChaosRow", "ChaosTable", "render"]

ROWS = pytest.StashKey[list["ChaosRow"]]()


@dataclass(frozen=True, slots=True)
class ChaosRow:
    scenario: str
    expected: int
    delivered: int
    lost: int
    duplicated: int
    up: bool
    note: str = ""


class ChaosTable:
    """Handed to a scenario by the `chaos` fixture; rows go to the session's table."""

    def __init__(self, rows: list[ChaosRow]):
        self.rows = rows

    def record(
        self,
        scenario: str,
        expected: Iterable[Hashable],
        delivered: Iterable[Hashable],
        *,
        up: bool,
        allowed_duplicates: int = 0,
        note: str = "",
    ) -> ChaosRow:
        want = set(expected)
        got = Counter(delivered)
        lost = len(want - set(got))
        duplicated = sum(n - 1 for n in got.values() if n > 1)
        row = ChaosRow(scenario, len(want), len(set(got) & want), lost, duplicated, up, note)
        self.rows.append(row)
        assert lost == 0, (
            f"{scenario}: {lost} alert(s) lost: {sorted(map(str, want - set(got)))[:10]}"
        )
        assert duplicated <= allowed_duplicates, f"{scenario}: {duplicated} duplicate(s)"
        assert up, f"{scenario}: the daemon did not stay up"
        return row


def render(rows: list[ChaosRow]) -> list[str]:
    head = f"{'scenario':<68}{'expected':>9}{'delivered':>10}{'lost':>6}{'dup':>5}  {'up':<4}"
    lines = ["chaos: what each scenario should have told, and what it did", head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.scenario:<68}{r.expected:>9}{r.delivered:>10}{r.lost:>6}{r.duplicated:>5}  "
            f"{'yes' if r.up else 'NO':<4}" + (f"  {r.note}" if r.note else "")
        )
    return lines
