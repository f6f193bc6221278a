"""What every condition shares: the `Reading` it gives, `LevelCheck` hysteresis, `_Slow`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from daemon.rules.market import Market

__all__ = ["LevelCheck", "Reading"]


@dataclass(slots=True)
class Reading:
    value: float
    active: bool
    cleared: bool
    values: dict[str, float | str]
    #: An edge (a crossing): `active` means "happened on this tick"; there is no pending/resolve.
    event: bool = False
    threshold: float | None = None
    comparison: str = ""


@dataclass(frozen=True, slots=True)
class LevelCheck:
    """`above`/`below` a level with an optional separate `clear` level (hysteresis)."""

    comparison: str
    level: float
    clear: float | None
    #: What resolving means, naming the level that was passed: "back above 9" (made once:
    #: every reading carries it).
    back_text: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.clear is not None:
            side = "below" if self.comparison == "above" else "above"
            text = f"back {side} {self.clear:g}"
        else:
            side = "at or below" if self.comparison == "above" else "at or above"
            text = f"back {side} {self.level:g}"
        object.__setattr__(self, "back_text", text)

    def judge(self, value: float) -> tuple[bool, bool]:
        if self.comparison == "above":
            active = value > self.level
            cleared = value < self.clear if self.clear is not None else not active
        else:
            active = value < self.level
            cleared = value > self.clear if self.clear is not None else not active
        return active, cleared


class _Slow:
    """`verdict` for measures without a fast path: the full reading, kept for `explain`."""

    event: ClassVar[bool] = False
    _last: Reading | None = None

    def measure(self, m: Market, now_ms: int) -> Reading | None:
        raise NotImplementedError

    def verdict(self, m: Market, now_ms: int) -> tuple[bool, bool] | None:
        r = self._last = self.measure(m, now_ms)
        return None if r is None else (r.active, r.cleared)

    def explain(self, m: Market, now_ms: int) -> Reading | None:
        return self._last
