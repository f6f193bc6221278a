"""The evaluator's wall clock: read, its steps noticed, and the data's lag behind it kept true."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from daemon.durations import format_duration
from daemon.rules.driver import Driver

__all__ = ["WALL_STEP_MS", "WallClock"]

log = logging.getLogger("tickwatch.evaluator")
#: A wall-clock reading this far from where `time.monotonic` says it should be is a step of
#: the wall clock (NTP, an operator, a VM resumed), not time passing: between two readings the
#: two clocks otherwise differ by NTP's slewing, well under a millisecond a second.
WALL_STEP_MS = 1_000


class WallClock:
    """Base of `daemon.rules.runner.Evaluator`: its reading of the wall clock (`_now`), and
    what a step of it changes. The attributes are set by `Evaluator.__init__`."""

    #: Wall-clock epoch ms; a clock passed in is taken as it is, the system's is watched.
    clock: Callable[[], int]
    driver: Driver
    _watch_steps: bool
    _steady: tuple[int, float] | None  # the last reading: (wall ms, monotonic s)
    #: How far event time was behind the wall clock when ticks last arrived.
    _lag_ms: int

    def _now(self) -> int:
        """`clock()`; with the system's wall clock, a step of it is noticed (`_wall_stepped`)."""
        now = self.clock()
        if self._watch_steps:
            mono = time.monotonic()
            if self._steady is not None:
                wall, at = self._steady
                step = now - wall - int((mono - at) * 1000)
                if abs(step) >= WALL_STEP_MS:
                    self._wall_stepped(now, step)
            self._steady = (now, mono)
        return now

    def _wall_stepped(self, now_ms: int, step_ms: int) -> None:
        """The wall clock jumped by `step_ms`. Event time still judges the rules; what the
        clock decides follows the wall clock as it is now, at once:

        - how far the data is behind it (live feed or replay, `check_clock`) is measured anew,
          not left as it was at the last batch: a step of +1 h on a live feed makes its ticks
          an hour behind, as a replay's are, so the clock does not count that hour as silence
          (a no-data alert for every symbol) before the next batch would have said so;
        - stepped back, staleness, silence and bar closes are judged again from the time it
          shows, not only once it passes the time it showed before (timers stalled for as long
          as the step). Reminders already told stay told; the next ones come when due.
        """
        by = format_duration(dt.timedelta(seconds=round(abs(step_ms) / 1000)))
        log.warning(
            "the wall clock stepped %s by %s; rules keep to event time, timers to the clock",
            "forward" if step_ms > 0 else "back", by,
        )  # fmt: skip
        self._lag_ms += step_ms
        if step_ms < 0:
            self.driver.clock_stepped_back(now_ms)
