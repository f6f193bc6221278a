"""`When`: exactly one condition by its kind, the TradingView aliases, and all/any/not."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from daemon.rules.schema.conditions import (
    BandCond,
    BreadthCond,
    Condition,
    CrossesCond,
    EarningsCond,
    EarningsReminderCond,
    ExprCond,
    HeadlineCond,
    PctMoveCond,
    SpreadCond,
    StaleCond,
    ThresholdCond,
    VolumeSpikeCond,
)
from daemon.rules.schema.fields import _Model

CONDITION_KINDS = (
    "threshold", "spread", "pct_move", "headline", "crosses", "band", "expr", "earnings",
    "earnings_reminder", "stale", "breadth", "volume_spike", "all", "any", "not",
)  # fmt: skip
#: The words traders know from TradingView, accepted as condition names.
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "crossing": ("crosses", {"direction": "any"}),
    "crossing_up": ("crosses", {"direction": "up"}),
    "crossing_down": ("crosses", {"direction": "down"}),
    "entering_channel": ("band", {"on": "enters"}),
    "exiting_channel": ("band", {"on": "exits"}),
    "inside_channel": ("band", {"on": "inside"}),
    "outside_channel": ("band", {"on": "outside"}),
    "moving_up_pct": ("pct_move", {}),
    "moving_down_pct": ("pct_move", {}),
}


def _alias_properties(schema: dict[str, Any]) -> None:
    """Let editors accept the TradingView words too (validated in full by the daemon)."""
    props = schema.setdefault("properties", {})
    for alias, (kind, implied) in ALIASES.items():
        given = ", ".join(f"{k}: {v}" for k, v in implied.items())
        props[alias] = {
            "type": "object",
            "description": f"Same as `{kind}`"
            + (f" with {given}" if given else "")
            + (" (write by: N for the percent)" if alias.startswith("moving_") else ""),
        }


class When(_Model):
    """Exactly one condition, named by its kind; `all`/`any`/`not` combine conditions."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, json_schema_extra=_alias_properties
    )

    threshold: ThresholdCond | None = None
    spread: SpreadCond | None = None
    pct_move: PctMoveCond | None = None
    headline: HeadlineCond | None = None
    crosses: CrossesCond | None = None
    band: BandCond | None = None
    expr: str | None = Field(None, max_length=1000, description="A safe expression")
    earnings: EarningsCond | None = None
    earnings_reminder: EarningsReminderCond | None = None
    stale: StaleCond | None = None
    breadth: BreadthCond | None = None
    volume_spike: VolumeSpikeCond | None = None
    all: list[When] | None = Field(None, min_length=1, description="Every condition holds")
    any: list[When] | None = Field(None, min_length=1, description="At least one holds")
    not_: When | None = Field(None, alias="not", description="The condition does not hold")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for alias, (kind, implied) in ALIASES.items():
            if alias in data and isinstance(data[alias], dict):
                body = dict(data.pop(alias))
                if alias.startswith("moving_") and "by" in body:
                    body["up" if alias == "moving_up_pct" else "down"] = body.pop("by")
                data[kind] = {**body, **implied}
        kinds = [k for k in data if k in CONDITION_KINDS]
        if len(kinds) > 1:
            raise ValueError(
                f"one condition per `when`, found {', '.join(kinds)}; "
                "combine them with all: [...] or any: [...]"
            )
        if not data:
            raise ValueError(f"name a condition: one of {', '.join(CONDITION_KINDS)}")
        return data

    @functools.cached_property
    def kind(self) -> str:
        """Which condition this is (computed once: compiling 1,000 rules asks ~8,000 times)."""
        k = next(
            k for k in CONDITION_KINDS if getattr(self, "not_" if k == "not" else k) is not None
        )
        return k

    @property
    def children(self) -> list[When]:
        if self.all is not None:
            return self.all
        if self.any is not None:
            return self.any
        return [self.not_] if self.not_ is not None else []

    @property
    def condition(self) -> Condition:
        if self.expr is not None:
            return ExprCond(expr=self.expr)
        cond: Condition = getattr(self, self.kind)
        return cond

    def walk(self) -> list[When]:
        """This condition and every condition nested in it."""
        return [w for _, w in self.walk_paths(())]

    def walk_paths(self, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], When]]:
        """(path in the file, condition) for this and every nested condition."""
        out: list[tuple[tuple[str | int, ...], When]] = [(path, self)]
        kind = self.kind
        if kind in ("all", "any"):
            for i, child in enumerate(self.children):
                out.extend(child.walk_paths((*path, kind, i)))
        elif kind == "not" and self.not_ is not None:
            out.extend(self.not_.walk_paths((*path, "not")))
        elif kind == "breadth" and self.breadth is not None:
            out.extend(self.breadth.of.walk_paths((*path, "breadth", "of")))
        return out

    @property
    def is_event(self) -> bool:
        """Fires on a single tick (a crossing, a headline), with no pending or resolve."""
        if self.kind in ("all", "any"):
            return any(c.is_event for c in self.children)
        if self.kind == "not":
            return False
        if self.kind in ("crosses", "headline", "earnings_reminder"):
            return True
        return self.kind == "band" and self.band is not None and self.band.on in ("enters", "exits")


BreadthCond.model_rebuild()  # its `of` is a `When`, defined only now
