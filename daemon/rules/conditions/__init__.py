"""Condition evaluators: from the market view to a value, and whether it fires or clears.

Each class compiles one schema condition for one instance (one symbol of a group, or one
pair) and is pure: `measure(market, now_ms)` reads, never writes. Values the message template
can use come back with the reading, so the alert text shows exactly the numbers that fired it.

By family: `base` (the `Reading`, `LevelCheck`), `price` (threshold, spread, pct move,
crosses, band), `series` (expressions, a series crossing a level), `clock` (stale, earnings
window), `volume` (volume spike), `combine` (all/any/not, breadth, no-data guard), `headlines`
(headline matching), and `measure` (the `Measure` union of them).
"""

from __future__ import annotations

from daemon.rules.conditions.base import LevelCheck, Reading
from daemon.rules.conditions.clock import EarningsWindow, Stale
from daemon.rules.conditions.combine import Breadth, Composite, NoDataGuard
from daemon.rules.conditions.headlines import HeadlineMatcher, HeadlineRegex
from daemon.rules.conditions.measure import Measure
from daemon.rules.conditions.price import Band, Crosses, PctMove, Spread, Threshold
from daemon.rules.conditions.series import ExprMeasure, ExprSeries, SeriesCross
from daemon.rules.conditions.volume import VolumeSpike

__all__ = [
    "Band",
    "Breadth",
    "Composite",
    "Crosses",
    "EarningsWindow",
    "ExprMeasure",
    "ExprSeries",
    "HeadlineMatcher",
    "HeadlineRegex",
    "LevelCheck",
    "Measure",
    "NoDataGuard",
    "PctMove",
    "Reading",
    "SeriesCross",
    "Spread",
    "Stale",
    "Threshold",
    "VolumeSpike",
]
