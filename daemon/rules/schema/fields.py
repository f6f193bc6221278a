"""Shared field types and base models of the rule schema: symbols, levels, two-leg spreads."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,79}$"
Symbols = Annotated[
    str | list[str],
    Field(description="A symbol (NVDA), a group name (mag7), or a list of either"),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class _Level(_Model):
    """`above` or `below` a level; `clear` is the level that resolves it (hysteresis)."""

    above: float | None = None
    below: float | None = None
    clear: float | None = Field(
        None, description="Resolve only once the value is back past this level (hysteresis)"
    )

    @model_validator(mode="after")
    def _one_side(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError(
                    f"clear {self.clear} must be at or below the 'above' level {self.above}"
                )
            if self.below is not None and self.clear < self.below:
                raise ValueError(
                    f"clear {self.clear} must be at or above the 'below' level {self.below}"
                )
        return self

    @property
    def comparison(self) -> Literal["above", "below"]:
        return "above" if self.above is not None else "below"

    @property
    def level(self) -> float:
        value = self.above if self.above is not None else self.below
        assert value is not None
        return value


class _Legs(_Model):
    """Two symbols' prices as one series: a difference, a ratio, or a return since a date."""

    a: str
    b: str
    as_: Literal["difference", "ratio", "return"] = Field("difference", alias="as")
    since: Literal["ytd"] | dt.date | None = Field(
        None, description="Anchor for `as: return`: 'ytd' or a date (YYYY-MM-DD)"
    )

    @model_validator(mode="after")
    def _anchor(self) -> Self:
        if self.as_ == "return" and self.since is None:
            raise ValueError("'as: return' needs 'since': write since: ytd or since: 2026-01-02")
        if self.as_ != "return" and self.since is not None:
            raise ValueError(f"'since' only applies to 'as: return' (this spread is {self.as_})")
        if self.a == self.b:
            raise ValueError(f"a and b are both {self.a}; a spread needs two symbols")
        return self

    def anchor_date(self, today: dt.date) -> dt.date | None:
        """First day of the return period (Jan 1 of `today`'s year for ytd)."""
        if self.since == "ytd":
            return dt.date(today.year, 1, 1)
        return self.since if isinstance(self.since, dt.date) else None
