"""What a trader may write in a rule file, as pydantic models (re-exported from the modules below).

The models only check shape and local consistency (one comparison, a `clear` level on the right
side of the threshold). Cross-file facts, such as whether a symbol or channel exists, are
checked by `daemon.config`, which knows the whole configuration.

The package: `fields` (shared field types and base models), `conditions` (one model per
condition kind), `when` (`When`: one condition by name, the TradingView aliases, all/any/not),
`rule` (`Rule`, `RuleFile`). Every name is importable from here as it always was.
"""

from __future__ import annotations

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
    Reminder,
    SentimentFilter,
    SpreadCond,
    StaleCond,
    ThresholdCond,
    VolumeSpikeCond,
)
from daemon.rules.schema.conditions import SentimentLabel as SentimentLabel
from daemon.rules.schema.conditions import SeriesSpread as SeriesSpread
from daemon.rules.schema.fields import NAME_PATTERN as NAME_PATTERN
from daemon.rules.schema.fields import Symbols as Symbols
from daemon.rules.schema.rule import Escalate, FlapPolicy, Rule, RuleFile
from daemon.rules.schema.rule import NoDataAction as NoDataAction
from daemon.rules.schema.when import ALIASES as ALIASES
from daemon.rules.schema.when import CONDITION_KINDS, When

__all__ = [
    "CONDITION_KINDS",
    "BandCond",
    "BreadthCond",
    "Condition",
    "CrossesCond",
    "EarningsCond",
    "EarningsReminderCond",
    "Escalate",
    "ExprCond",
    "FlapPolicy",
    "HeadlineCond",
    "PctMoveCond",
    "Reminder",
    "Rule",
    "RuleFile",
    "SentimentFilter",
    "SpreadCond",
    "StaleCond",
    "ThresholdCond",
    "VolumeSpikeCond",
    "When",
]
