"""The volume condition: `VolumeSpike`, a slot's volume against its usual."""

from __future__ import annotations

from typing import ClassVar

from daemon.rules.conditions.base import Reading, _Slow
from daemon.rules.market import Market
from daemon.rules.schema import VolumeSpikeCond

__all__ = ["VolumeSpike"]


class VolumeSpike(_Slow):
    """This slot's volume today against the same slot's mean on earlier days."""

    kind: ClassVar[str] = "volume_spike"

    def __init__(self, cond: VolumeSpikeCond, symbol: str):
        self.symbol = symbol
        self.symbols = (symbol,)
        self.slot_ms = int(cond.slot.total_seconds() * 1000)
        self.days = cond.days
        self.ratio = cond.ratio
        self.min_days = cond.min_days
        self.labels = {"symbol": symbol}

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        profile = m.volumes.get(self.symbol)
        if profile is None:
            return None
        now, usual, n = profile.now_and_usual(now_ms)
        if usual is None or n < self.min_days or usual <= 0:
            return None
        x = now / usual
        values: dict[str, float | str] = {"symbol": self.symbol, "volume": now, "usual": usual}
        return Reading(x, x >= self.ratio, x < self.ratio, values, False, self.ratio, ">=")
