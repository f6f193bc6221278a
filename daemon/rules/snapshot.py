"""What every rule reads now: each alert's state and its value against its threshold.

For the API (`/api/alerts`, `/api/rules`) and the status page: a pure view of an engine, built
from each instance's `explain` (the reading it was last judged on, or one computed the same way
without side effects), its lifecycle state, and the last transition it made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.alerts import AlertEvent
from daemon.rules.evaluate import Engine

__all__ = ["RuleView", "snapshot"]


@dataclass(frozen=True, slots=True)
class RuleView:
    """One alert (a rule on a symbol, or a pair) as a trader looks at it."""

    rule: str
    key: str
    labels: dict[str, str]
    severity: str
    #: inactive, pending, firing or resolved.
    state: str
    since_ms: int
    value: float | None
    threshold: float | None
    comparison: str
    channels: tuple[str, ...]
    #: The last transition's summary and number, when it made one.
    summary: str = ""
    number: int = 0
    values: dict[str, float | str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "key": self.key, "labels": self.labels,
            "severity": self.severity, "state": self.state, "since_ms": self.since_ms,
            "value": self.value, "threshold": self.threshold, "comparison": self.comparison,
            "channels": list(self.channels), "summary": self.summary, "number": self.number,
        }  # fmt: skip


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def snapshot(engine: Engine, now_ms: int, last: Mapping[str, AlertEvent]) -> list[RuleView]:
    """Every instance of the engine's plan, by rule then key. `last` is the latest transition
    per alert key (what the evaluator emitted), for the summary and number."""
    seen: set[str] = set()
    out = []
    for inst in [*engine.plan.instances, *engine.plan.bar_instances]:
        if inst.key in seen:
            continue
        seen.add(inst.key)
        st = engine.states.get(inst.key)
        try:
            r = inst.cond.explain(engine.market, now_ms)
        except Exception:  # a rule that cannot be judged now shows no value, not an error page
            r = None
        prev = last.get(inst.key)
        out.append(
            RuleView(
                inst.rule, inst.key, dict(inst.labels), inst.severity,
                st.state if st else "inactive", st.since_ms if st else 0,
                _finite(r.value) if r else (prev.value if prev else None),
                r.threshold if r else (prev.threshold if prev else None),
                r.comparison if r else (prev.comparison if prev else ""),
                inst.channels, prev.summary if prev else "", prev.number if prev else 0,
            )
        )  # fmt: skip
    return sorted(out, key=lambda v: (v.rule, v.key))
