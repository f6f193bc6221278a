"""`Measure`: the union of every compiled condition the engine judges on market data."""

from __future__ import annotations

from daemon.rules.conditions.clock import EarningsWindow, Stale
from daemon.rules.conditions.combine import Breadth, Composite, NoDataGuard
from daemon.rules.conditions.price import Band, Crosses, PctMove, Spread, Threshold
from daemon.rules.conditions.series import ExprMeasure, SeriesCross
from daemon.rules.conditions.volume import VolumeSpike

__all__ = ["Measure"]


Measure = (
    Threshold | Spread | PctMove | Crosses | SeriesCross | Band | Composite | ExprMeasure
    | EarningsWindow | Stale | Breadth | VolumeSpike | NoDataGuard
)  # fmt: skip
