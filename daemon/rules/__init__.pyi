"""The names of `daemon.rules` the other stages use, imported lazily on first use.

For type checkers; at run time `__init__.py` reads this file (lazy_loader.attach_stub)."""

from .compile import Instance as Instance
from .compile import Plan as Plan
from .compile import compile_rules as compile_rules
from .conditions import Composite as Composite
from .conditions import EarningsWindow as EarningsWindow
from .conditions import NoDataGuard as NoDataGuard
from .driver import Driver as Driver
from .driver import simulate as simulate
from .expr import ExprError as ExprError
from .expr import compile_expr as compile_expr
from .groups import expand as expand
from .market import anchor_start_ms as anchor_start_ms
from .message import DEFAULT_MESSAGES as DEFAULT_MESSAGES
from .message import DEFAULT_RESOLVED as DEFAULT_RESOLVED
from .message import check_template as check_template
from .message import placeholders as placeholders
from .message import render as render
from .runner import Evaluator as Evaluator
from .schema import BandCond as BandCond
from .schema import CrossesCond as CrossesCond
from .schema import EarningsCond as EarningsCond
from .schema import Escalate as Escalate
from .schema import PctMoveCond as PctMoveCond
from .schema import Rule as Rule
from .schema import RuleFile as RuleFile
from .schema import SpreadCond as SpreadCond
from .schema import ThresholdCond as ThresholdCond
from .sessions import Sessions as Sessions
from .sessions import nyse as nyse
from .snapshot import RuleView as RuleView
from .snapshot import snapshot as snapshot
from .version import rule_version as rule_version

__all__ = [
    "DEFAULT_MESSAGES",
    "DEFAULT_RESOLVED",
    "BandCond",
    "Composite",
    "CrossesCond",
    "Driver",
    "EarningsCond",
    "EarningsWindow",
    "Escalate",
    "Evaluator",
    "ExprError",
    "Instance",
    "NoDataGuard",
    "PctMoveCond",
    "Plan",
    "Rule",
    "RuleFile",
    "RuleView",
    "Sessions",
    "SpreadCond",
    "ThresholdCond",
    "anchor_start_ms",
    "check_template",
    "compile_expr",
    "compile_rules",
    "expand",
    "nyse",
    "placeholders",
    "render",
    "rule_version",
    "simulate",
    "snapshot",
]
