"""Inhibition: a firing alert mutes lesser alerts about the same thing.

Alertmanager's `inhibit_rules`: while an alert matching `source` fires, alerts matching `target`
that carry the same values for every label in `equal` are not sent (a critical "NVDA down 8%"
mutes the warning "NVDA down 3%"). An alert never inhibits itself. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.notify.route_tree import Matcher, parse_matcher

__all__ = ["InhibitRule", "Inhibitor"]


class InhibitRule(BaseModel):
    """One entry of `inhibit_rules:` in alerts.yaml."""

    model_config = ConfigDict(extra="forbid")

    source: list[str] = Field(min_length=1, description="Matchers of the muting alert")
    target: list[str] = Field(min_length=1, description="Matchers of the muted alerts")
    equal: list[str] = Field(
        default_factory=list, description="Labels that must be equal on both, e.g. [symbol]"
    )

    @field_validator("source", "target")
    @classmethod
    def _matchers(cls, v: list[str]) -> list[str]:
        for text in v:
            parse_matcher(text)
        return v


@dataclass(frozen=True, slots=True)
class _Compiled:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


class Inhibitor:
    def __init__(self, rules: list[InhibitRule]):
        self.rules = [
            _Compiled(
                tuple(parse_matcher(m) for m in r.source),
                tuple(parse_matcher(m) for m in r.target),
                tuple(r.equal),
            )
            for r in rules
        ]

    def muted_by(
        self, key: str, labels: Mapping[str, str], firing: Mapping[str, Mapping[str, str]]
    ) -> str | None:
        """The key of a firing alert that mutes this one, or None."""
        for rule in self.rules:
            if not all(m.matches(labels) for m in rule.target):
                continue
            for src_key, src in firing.items():
                if src_key == key:
                    continue
                if all(m.matches(src) for m in rule.source) and all(
                    src.get(e, "") == labels.get(e, "") for e in rule.equal
                ):
                    return src_key
        return None
