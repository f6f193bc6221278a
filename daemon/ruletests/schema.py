"""The shape of a rule-test file (pydantic models): suite, cases, headlines, expectations."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from daemon.durations import Duration
from daemon.ruletests.notation import _series, parse_at, parse_start

__all__ = [
    "DEFAULT_TOL",
    "Approx",
    "CaseSpec",
    "EarningsSpec",
    "ExpectSpec",
    "HeadlineSpec",
    "SuiteSpec",
]

DEFAULT_TOL = 1e-6


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_list(value: Any) -> Any:
    """`symbols: MSFT` means `[MSFT]`: one name is the common case, so let it be written so."""
    return [value] if isinstance(value, str) else value


At = Annotated[dt.timedelta | dt.datetime, BeforeValidator(parse_at)]
Series = Annotated[list[float | None], BeforeValidator(_series)]


class Approx(_Model):
    """An expected value and how far the real one may be from it."""

    approx: float = Field(allow_inf_nan=False)
    tol: float = Field(DEFAULT_TOL, ge=0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: Any) -> Any:
        if isinstance(data, bool | str):
            raise ValueError(
                f"{data!r} is not a value; write value: 7.8 or value: {{approx: 7.8, tol: 0.05}}"
            )
        return {"approx": data} if isinstance(data, int | float) else data


class HeadlineSpec(_Model):
    """A headline to feed, with the fields rules read (keywords, symbols, sentiment, source)."""

    at: At
    title: str = Field(min_length=1)
    summary: str = ""
    symbols: Annotated[list[str], BeforeValidator(_one_or_list)] = Field(default_factory=list)
    source: str = "test"
    url: str = ""
    sentiment: float | None = Field(None, ge=-1, le=1)
    ticker_sentiment: dict[str, Annotated[float, Field(ge=-1, le=1)]] = Field(default_factory=dict)
    id: str | None = None


class ExpectSpec(_Model):
    """One expected transition; omitted fields are not compared (labels: a subset)."""

    at: At
    rule: str
    state: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    value: Approx | None = None
    summary: str | None = None
    channels: Annotated[list[str], BeforeValidator(_one_or_list)] | None = None


class EarningsSpec(_Model):
    """A report for this test's calendar (instead of the config's `calendar.earnings` file)."""

    symbol: str
    date: dt.date
    when: Literal["bmo", "amc", "unknown"] = "amc"


class CaseSpec(_Model):
    """One test. `expect` is required (`[]` for silence) so a quiet test is said on purpose."""

    name: str = Field(min_length=1)
    start: Annotated[dt.datetime, BeforeValidator(parse_start)]
    interval: Duration = Field(default=dt.timedelta(minutes=1))
    anchors: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    input_series: dict[str, Series] = Field(default_factory=dict)
    headlines: list[HeadlineSpec] = Field(default_factory=list)
    earnings: list[EarningsSpec] | None = None
    until: At | None = Field(None, description="End of the test (default: its last event)")
    expect: list[ExpectSpec]

    @model_validator(mode="after")
    def _positive_interval(self) -> Self:
        if self.interval.total_seconds() <= 0:
            raise ValueError("interval must be longer than 0s, e.g. 1m")
        return self


class SuiteSpec(_Model):
    """A test file. `config` is required: rules are only meaningful with their groups."""

    config: str
    rule_files: list[str] | None = None
    tests: list[CaseSpec]

    @field_validator("tests")
    @classmethod
    def _some(cls, tests: list[CaseSpec]) -> list[CaseSpec]:
        if not tests:
            raise ValueError("no tests: add at least one (name, start, input_series, expect)")
        return tests
