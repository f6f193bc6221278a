"""A chart's time axis (New York time, long pauses cut out, round ticks) and `downsample`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from daemon.alerts import NEW_YORK

#: Above this many points a series is reduced to `BUCKETS` min/max pairs.
MAX_POINTS = 5_000
BUCKETS = 2_000
#: A pause in the data longer than this is cut out of the time axis (a night, a weekend).
GAP_MS = 2 * 3_600_000
#: What a cut-out gap keeps of the axis, so the sessions on either side stay apart.
GAP_KEEP_MS = 20 * 60_000


Floats = NDArray[np.float64]


def downsample(
    ts_ms: Sequence[int] | Floats, values: Sequence[float] | Floats, max_points: int = MAX_POINTS
) -> tuple[Floats, Floats]:
    """At most `2 * BUCKETS` of the points when there are more than `max_points`: each equal
    bucket's minimum and maximum, in time order. The points kept are real points, so a spike
    is drawn where and as high as it was. Points that are not finite are dropped."""
    t = np.asarray(ts_ms, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(t) != len(v):
        t, v = t[: min(len(t), len(v))], v[: min(len(t), len(v))]
    finite = np.isfinite(t) & np.isfinite(v)
    if not finite.all():  # a NaN or inf judged is no point to draw (and breaks min/max)
        t, v = t[finite], v[finite]
    n = len(v)
    if n <= max_points:
        return t, v
    buckets = min(BUCKETS, max_points // 2)
    size = -(-n // buckets)  # ceil
    padded = np.pad(v, (0, size * buckets - n), mode="edge").reshape(buckets, size)
    base = np.arange(buckets) * size
    lo = np.minimum(base + np.argmin(padded, axis=1), n - 1)
    hi = np.minimum(base + np.argmax(padded, axis=1), n - 1)
    keep = np.unique(np.concatenate([lo, hi]))  # sorted: time order
    return t[keep], v[keep]


# --- the time axis: New York time with long pauses cut out ---------------------------------


@dataclass
class _TimeAxis:
    """A piecewise-linear map from epoch ms to x, squeezing each pause longer than `GAP_MS`
    to `GAP_KEEP_MS`. x is in "kept" milliseconds from the start."""

    src: Floats  # epoch ms of the breakpoints
    dst: Floats  # x at the breakpoints
    cuts: Floats  # x of each cut-out gap (where to draw the thin rule)
    gaps: Floats  # (start, end) epoch ms of each cut-out gap, shape (n, 2)

    @classmethod
    def build(
        cls,
        start_ms: float,
        end_ms: float,
        times: Iterable[Floats],
        keep: Iterable[tuple[int, int]] = (),
    ) -> _TimeAxis:
        """The axis for the points at `times`, never cutting inside a `keep` span that has
        none of those points: a firing while nothing was judged (a feed gone silent, a
        headline rule) is drawn at its real length, not squeezed into a cut. A firing with
        points in it keeps its nights cut like any other (a level held for days)."""
        data = [t for t in times if len(t)]
        if data:
            points = np.unique(np.concatenate(data))
            fill = []
            for k0, k1 in keep:
                # points strictly inside (its own transitions at the ends do not count)
                inside = np.searchsorted(points, k1, "left") - np.searchsorted(points, k0, "right")
                if inside <= 0 and k1 > k0:  # nothing judged inside: hold it open
                    fill.append(np.arange(k0, k1 + 1, GAP_MS / 2, dtype=np.float64)[:20_000])
                    fill.append(np.asarray([k0, k1], dtype=np.float64))
            data += fill
        if not data:  # nothing drawn: plain linear time, nothing to cut
            width = max(end_ms - start_ms, 60_000.0)
            return cls(np.asarray([start_ms, start_ms + width]), np.asarray([0.0, width]),
                       np.asarray([]), np.empty((0, 2)))  # fmt: skip
        all_t = np.unique(np.concatenate([np.asarray([start_ms, end_ms]), *data]))
        all_t = all_t[(all_t >= start_ms) & (all_t <= end_ms)]
        gaps = np.flatnonzero(np.diff(all_t) > GAP_MS)
        src = [float(all_t[0])]
        dst = [0.0]
        cuts = []
        pauses = []
        for i in gaps:
            a, b = float(all_t[i]), float(all_t[i + 1])
            pauses.append((a, b))
            src.append(a)
            dst.append(dst[-1] + (a - src[-2]))
            src.append(b)
            dst.append(dst[-1] + GAP_KEEP_MS)
            cuts.append(dst[-1] - GAP_KEEP_MS / 2)
        last = float(all_t[-1])
        if last > src[-1]:
            src.append(last)
            dst.append(dst[-1] + (last - src[-2]))
        if len(src) == 1:  # a zero-length range: give it a minute so the axis has width
            src.append(src[0] + 60_000)
            dst.append(60_000.0)
        return cls(
            np.asarray(src), np.asarray(dst), np.asarray(cuts), np.asarray(pauses).reshape(-1, 2)
        )

    def x(self, ms: Sequence[int] | Sequence[float] | Floats) -> Floats:
        return np.interp(np.asarray(ms, dtype=np.float64), self.src, self.dst)

    def ms(self, x: float) -> float:
        return float(np.interp(x, self.dst, self.src))

    @property
    def width(self) -> float:
        return float(self.dst[-1])

    def ticks(self, max_ticks: int = 10) -> tuple[list[float], list[str]]:
        """Tick positions and labels at round New York times (hours, midnights, Mondays, the
        1st of a month): the finest step that gives at most `max_ticks` labels a readable
        distance apart. Round times inside a cut-out pause are dropped, except that a
        midnight moves to where its day's data starts (a session's open), so day ticks sit
        on trading days."""
        start, end = float(self.src[0]), float(self.src[-1])
        min_sep = self.width / (max_ticks + 1)  # a label is ~60 px: keep them ~80 apart
        for step in _STEPS:
            if (end - start) / _step_ms(step) > 50 * max_ticks:
                continue  # far too many: skip before making them (a year in 5 minutes)
            if isinstance(step, int) and end - start > 4 * 86_400_000:
                continue  # over weeks, hours are noise (they pass the spacing in cut nights)
            times = self._snap(_round_times(start, end, step), daily=not isinstance(step, int))
            xs: list[float] = []
            kept: list[float] = []
            for t, x in zip(times, self.x(times).tolist(), strict=True):
                if not xs or x - xs[-1] >= min_sep:
                    xs.append(x)
                    kept.append(t)
            if len(xs) <= max_ticks:
                return xs, _labels(kept, step)
        return [0.0, self.width], _labels([start, end], _STEPS[-1])

    def _snap(self, times: list[float], *, daily: bool) -> list[float]:
        if not len(self.gaps):
            return times
        out = []
        i = np.searchsorted(self.gaps[:, 0], times, side="right") - 1
        for t, g in zip(times, i.tolist(), strict=True):
            if g < 0 or not self.gaps[g, 0] < t < self.gaps[g, 1]:
                out.append(t)  # in the data, not in a pause
            elif daily and _ny_date(self.gaps[g, 1]) == _ny_date(t):
                out.append(float(self.gaps[g, 1]))
        return sorted(set(out))


def _ny_date(ms: float) -> date:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(NEW_YORK).date()


#: Tick steps, finest first: minutes, or "1d", "7d", "1mo" in New York wall time.
_STEPS: tuple[int | str, ...] = (
    *(m * 60_000 for m in (5, 10, 15, 30, 60, 120, 180, 360, 720)),
    "1d",
    "2d",
    "7d",
    "1mo",
    "3mo",
    "12mo",
)


def _step_ms(step: int | str) -> float:
    """About how long a step is, to skip the hopeless ones before making their ticks."""
    if isinstance(step, int):
        return float(step)
    if step.endswith("mo"):
        return int(step[:-2]) * 30 * 86_400_000.0
    return int(step[:-1]) * 86_400_000.0


def _round_times(start: float, end: float, step: int | str) -> list[float]:
    """Epoch ms of the round New York times in [start, end] for one step."""
    if isinstance(step, int):
        local = datetime.fromtimestamp(start / 1000, tz=UTC).astimezone(NEW_YORK)
        offset_ms = (local.utcoffset() or timedelta()).total_seconds() * 1000
        first_ms = ((start + offset_ms) // step + 1) * step - offset_ms
        return [float(t) for t in np.arange(first_ms, end + 1, step)]
    first = day = _ny_date(start)
    last = _ny_date(end)
    out = []
    while day <= last:
        if step == "1d":
            ok = True
        elif step == "2d":
            ok = (day - first).days % 2 == 0  # every other day from the first
        elif step == "7d":
            ok = day.weekday() == 0  # Mondays
        else:  # "<n>mo": the 1st of every n-th month
            ok = day.day == 1 and (day.month - 1) % int(step[:-2]) == 0
        if ok:
            t = datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).timestamp() * 1000
            if t < start < t + 86_400_000:
                t = start  # the first day's tick where the data starts (a Monday's open)
            if start <= t <= end:
                out.append(t)
        day += timedelta(days=1)
    return out


def _labels(times: list[float], step: int | str) -> list[str]:
    """`09:30` within a day (with the date at each day's first tick), `Tue Mar 17` for days,
    `Mar 2026` for months."""
    out = []
    prev_day = None
    for t in times:
        when = datetime.fromtimestamp(t / 1000, tz=UTC).astimezone(NEW_YORK)
        if isinstance(step, int):
            label = when.strftime("%H:%M")
            if when.date() != prev_day:
                label += when.strftime("\n%a %b %d")
            prev_day = when.date()
        elif step.endswith("mo"):
            label = when.strftime("%b %Y")
        else:
            label = when.strftime("%a %b %d")
        out.append(label)
    return out
