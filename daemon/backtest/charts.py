"""One PNG chart per rule: what it judged, where its levels were, when it fired.

The chart answers "why did it fire there?" at a glance: the series the rule judged (each
instance of the rule, e.g. one line per symbol, at most `MAX_LINES` of them — the ones with the
most alerts first, the rest counted in the title), the fire level (solid) and the clear level
(dashed), the firing spans shaded (a firing to its resolve, or to the end of the data when it
never resolved), ▲ at each firing and ▼ at each resolve.

Choices, and why:

- Every rule gets a chart, so the report and the file list are complete and predictable. A rule
  with no judged points (a headline rule, or a symbol missing from the data) gets a chart that
  says "no data judged", with its alerts, if any, as markers along the time axis.
- The x axis is New York time (how the desk reads times). Gaps in the data longer than
  `GAP_MS` (nights, weekends, holidays, for session-only bars) are cut out of the axis and
  marked with a thin vertical rule, so weeks of 1-minute bars use the width for the sessions
  rather than for empty nights.
- A series longer than `MAX_POINTS` is reduced to the minimum and the maximum of each of
  `BUCKETS` equal buckets (the points themselves, in time order): a spike that fired the rule
  survives, and drawing stays fast.
- Figures are made with `matplotlib.figure.Figure` on the Agg canvas (`FigureCanvasAgg`), never
  `pyplot`: no display and no backend switch (importing this module leaves the process's
  matplotlib backend alone), no global figure state, nothing to close. Fixed size
  (`WIDTH_PX` x `HEIGHT_PX` at `DPI`) and no `bbox_inches="tight"`, so every PNG has the same
  dimensions and the report lays out evenly.
- A chart costs matplotlib 0.1-0.2 s whatever its data (tick and text layout), so 50 rules
  would take 5-10 s in one process; from `PARALLEL_FROM` charts on, worker processes draw a
  share (`render_charts`).
- File names are a lowercase slug of the rule name (`chart_names`), made unique
  case-insensitively (`-2`, `-3`, ...), so two rules never overwrite each other's chart on any
  file system.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from numpy.typing import NDArray

from daemon.alerts import NEW_YORK, AlertEvent
from daemon.backtest.model import BacktestResult, RuleStats, Series
from daemon.backtest.table import human_duration, plural, rule_names, stats_by_rule

__all__ = [
    "DPI",
    "HEIGHT_PX",
    "MAX_LINES",
    "MAX_POINTS",
    "PARALLEL_FROM",
    "WIDTH_PX",
    "chart_names",
    "downsample",
    "render_charts",
]

log = logging.getLogger(__name__)

WIDTH_PX, HEIGHT_PX, DPI = 1200, 500, 100
#: Instances drawn per chart; more lines than this are a tangle, not a chart.
MAX_LINES = 8
#: From this many charts on, `render_charts` draws them in worker processes.
PARALLEL_FROM = 12
#: Above this many points a series is reduced to `BUCKETS` min/max pairs.
MAX_POINTS = 5_000
BUCKETS = 2_000
#: A pause in the data longer than this is cut out of the time axis (a night, a weekend).
GAP_MS = 2 * 3_600_000
#: What a cut-out gap keeps of the axis, so the sessions on either side stay apart.
GAP_KEEP_MS = 20 * 60_000

FIRE_COLOUR = "#d62728"
RESOLVE_COLOUR = "#2ca02c"
LEVEL_COLOUR = "#444444"

Floats = NDArray[np.float64]


def _slug(rule: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", rule.lower()).strip("-")[:80].strip("-")
    return s or "rule"


def chart_names(rules: Iterable[str]) -> dict[str, str]:
    """Rule -> its chart's file name (`big-move-nvda.png`), unique ignoring case."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for rule in rules:
        if rule in out:
            continue
        base = _slug(rule)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        out[rule] = f"{name}.png"
    return out


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


# --- one chart ------------------------------------------------------------------------------


def _text(s: str, limit: int = 60) -> str:
    """User text made safe for matplotlib: `$` would start mathtext; long names cut."""
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def _with_breaks(x: Floats, y: Floats, ts: Floats) -> tuple[Floats, Floats]:
    """NaN between points more than `GAP_MS` apart, so a line is not drawn across a night."""
    gaps = np.flatnonzero(np.diff(ts) > GAP_MS) + 1
    if len(gaps) == 0:
        return x, y
    return np.insert(x, gaps, np.nan), np.insert(y, gaps, np.nan)


def _spans(alerts: Sequence[AlertEvent], end_ms: int) -> list[tuple[int, int]]:
    """(start, end) of each firing episode: a firing to its resolve, or to `end_ms`."""
    out = []
    since: dict[str, int] = {}
    for a in alerts:
        if a.repeat or not a.resolves:
            continue
        if a.state == "firing":
            since.setdefault(a.key, a.ts_ms)
        elif a.key in since:
            out.append((since.pop(a.key), a.ts_ms))
    out.extend((start, end_ms) for start in since.values())
    return out


def _title(rule: str, st: RuleStats, extra: str) -> str:
    head = _text(rule, 90) + (
        f" — {plural(st.fires, 'fire')}, {plural(st.clears, 'clear')}, "
        f"{human_duration(st.firing_ms)} firing, {plural(st.flaps, 'flap')}, "
        f"{st.per_week:.1f} alerts/week"
    )
    return head + (f"\n{extra}" if extra else "")


def _is_relative(drawn: Sequence[Series], arrays: dict[str, tuple[Floats, Floats]]) -> bool:
    """Draw the lines as % from their own fire level? Only when the instances have different
    fire levels and sit so far apart (AAPL at 250, MSFT at 400) that on one raw axis each
    would be a flat line: then "how close to firing" is what compares."""
    if len(drawn) < 2 or len({s.threshold for s in drawn}) == 1:
        return False
    if any(s.threshold is None or s.threshold == 0 for s in drawn):
        return False
    ranges, lows, highs = [], [], []
    for s in drawn:
        v = arrays[s.key][1]
        levels = [x for x in (s.threshold, s.clear) if x is not None]
        lo, hi = min(float(np.nanmin(v)), *levels), max(float(np.nanmax(v)), *levels)
        ranges.append(hi - lo)
        lows.append(lo)
        highs.append(hi)
    return max(highs) - min(lows) > 4 * max(float(np.median(ranges)), 1e-12)


@dataclass
class _Scale:
    """Values to plotted y: as they are, or % from the instance's fire level."""

    relative: bool
    thresholds: dict[str, float | None]

    def y(self, key: str, v: Floats | float) -> Floats:
        out = np.asarray(v, dtype=np.float64)
        thr = self.thresholds.get(key)
        if not self.relative or thr is None or thr == 0:
            return out
        return (out - thr) / abs(thr) * 100.0

    def level(self, key: str, v: float | None) -> float | None:
        return None if v is None else float(self.y(key, v))


def _draw_lines(
    ax: Axes, drawn: Sequence[Series], arrays: dict[str, tuple[Floats, Floats]], axis: _TimeAxis,
    scale: _Scale, colours: dict[str, str],
) -> list[Artist]:  # fmt: skip
    labels = [s.label or s.key for s in drawn]
    if len(set(labels)) < len(labels):
        labels = [s.key for s in drawn]
    handles: list[Artist] = []
    for s, label in zip(drawn, labels, strict=True):
        t, v = arrays[s.key]
        x, y = _with_breaks(axis.x(t), scale.y(s.key, v), t)
        if scale.relative and s.threshold is not None:
            label = f"{_text(label, 30)} (fires at {s.threshold:g})"
        (line,) = ax.plot(x, y, color=colours[s.key], linewidth=1.1, label=_text(label, 44))
        handles.append(line)
    return handles


def _draw_levels(
    ax: Axes, drawn: Sequence[Series], scale: _Scale, colours: dict[str, str]
) -> list[Artist]:
    """Fire level solid, clear level dashed: neutral lines when the lines share at most three
    levels (the common case; always so for the fire level in % from it), else one per line
    in the line's colour."""
    handles: list[Artist] = []
    styles: tuple[tuple[str, Literal["-", "--"]], ...] = (("fire", "-"), ("clear", "--"))
    for which, style in styles:
        ys: dict[str, float] = {}
        for s in drawn:
            y = scale.level(s.key, s.threshold if which == "fire" else s.clear)
            if y is not None:
                ys[s.key] = round(y, 9)  # % of the same level can differ in the last bit
        if not ys:
            continue
        values = sorted(set(ys.values()), reverse=True)
        if len(values) <= 3:  # a few levels (one, or ±3 for a move either way): neutral
            for y in values:
                ax.axhline(y, color=LEVEL_COLOUR, linewidth=1.2, linestyle=style, alpha=0.9)
            if scale.relative:
                shown = " / ".join(f"{y:+.2g}%" if y else "0%" for y in values)
            else:
                shown = " / ".join(f"{y:g}" for y in values)
            what = f"{which} level{'s' if len(values) > 1 else ''} {shown}"
        else:
            for k, y in ys.items():
                ax.axhline(y, color=colours[k], linewidth=1.2, linestyle=style, alpha=0.8)
            what = f"{which} level (each line's colour)"
        handles.append(Line2D([], [], color=LEVEL_COLOUR, linestyle=style, label=what))
    return handles


def _draw_spans(
    ax: Axes, spans: dict[str, list[tuple[int, int]]], axis: _TimeAxis, colours: dict[str, str]
) -> list[Artist]:
    """One instance: its firing spans shaded full height. Several: each gets a lane along the
    bottom in its colour (full-height shades of several colours stack into mud, and one
    instance firing all week would hide the others)."""
    if not any(spans.values()):
        return []
    lanes = len(spans) > 1
    lane_h = 0.035
    verts: list[list[tuple[float, float]]] = []
    faces: list[str] = []
    for i, (key, episodes) in enumerate(spans.items()):
        y0, y1 = (i * lane_h, (i + 1) * lane_h - 0.006) if lanes else (0.0, 1.0)
        for a0, a1 in episodes:
            x0, x1 = (float(x) for x in axis.x([a0, a1]))
            x1 = max(x1, x0 + axis.width / 1500)  # a short episode still shows
            verts.append([(x0, y0), (x0, y1), (x1, y1), (x1, y0)])
            faces.append(colours.get(key, FIRE_COLOUR) if lanes else FIRE_COLOUR)
    alpha = 0.75 if lanes else 0.13
    ax.add_collection(
        PolyCollection(
            verts,
            facecolors=faces,
            alpha=alpha,
            edgecolors="none",
            transform=ax.get_xaxis_transform(),
            zorder=0 if not lanes else 3,
        )
    )
    if lanes:  # make room below the lowest line for the lanes
        lo, hi = ax.get_ylim()
        frac = lane_h * len(spans) + 0.01
        ax.set_ylim(lo - (hi - lo) * frac / (1 - frac), hi)
        label = "firing (lane in the line's colour)"
        return [Patch(facecolor="#999999", alpha=alpha, label=label)]
    return [Patch(facecolor=FIRE_COLOUR, alpha=alpha, label="firing")]


def _draw_markers(
    ax: Axes, alerts: Sequence[AlertEvent], axis: _TimeAxis, scale: _Scale,
    arrays: dict[str, tuple[Floats, Floats]],
) -> list[Artist]:  # fmt: skip
    """▲ at each firing, ▼ at each resolve, △ at each reminder; at the alert's value (or the
    series there), or, with no series at all, along the bottom of the axes."""
    rug = not arrays
    transform = ax.get_xaxis_transform() if rug else ax.transData
    kinds = (
        ("firing", "^", FIRE_COLOUR, 70, "fired ▲"),
        ("resolved", "v", RESOLVE_COLOUR, 70, "resolved ▼"),
        ("reminder", "^", "none", 35, "reminder △"),
    )
    handles: list[Artist] = []
    for kind, marker, face, size, label in kinds:
        picked = [
            a
            for a in alerts
            if (kind == "reminder" and a.repeat) or (not a.repeat and a.state == kind)
        ]
        if not picked:
            continue
        xs = axis.x([a.ts_ms for a in picked])
        if rug:
            ys = np.full(len(picked), 0.08 if kind == "firing" else 0.04)
        else:
            ys = np.asarray([_marker_y(a, scale, arrays) for a in picked])
        handles.append(
            ax.scatter(
                xs,
                ys,
                marker=marker,
                s=size,
                facecolors=face,
                edgecolors=FIRE_COLOUR if face == "none" else "black",
                linewidths=1.0 if face == "none" else 0.6,
                zorder=5,
                label=label,
                transform=transform,
                clip_on=False,
            )
        )
    return handles


def _marker_y(a: AlertEvent, scale: _Scale, arrays: dict[str, tuple[Floats, Floats]]) -> float:
    """Where an alert's marker sits: at its value, else on its line at that time."""
    if a.value is not None and np.isfinite(a.value):
        return float(scale.y(a.key, a.value))
    if a.key in arrays and len(arrays[a.key][0]):
        t, v = arrays[a.key]
        return float(scale.y(a.key, float(np.interp(a.ts_ms, t, v))))
    return float("nan")


#: Alerts named on a chart with no series (a headline rule); the rest are only marked.
MAX_NAMED = 12


def _name_alerts(ax: Axes, alerts: Sequence[AlertEvent], axis: _TimeAxis) -> None:
    """Each firing of a rule with no series, named (symbol and title) above its marker, the
    labels stepped up the axes so that alerts close in time stay readable."""
    fired = [a for a in alerts if a.state == "firing"][:MAX_NAMED]
    if not fired:
        return
    xs = axis.x([a.ts_ms for a in fired])
    transform = ax.get_xaxis_transform()
    for i, (a, x) in enumerate(zip(fired, xs, strict=True)):
        y = 0.16 + 0.065 * (i % 11)
        sym = a.labels.get("symbol") or str(a.values.get("symbol", ""))
        title = str(a.values.get("title", "")) or a.summary
        text = _text(f"{sym}: {title}" if sym else title, 60)
        ax.vlines([x], 0.1, y, transform=transform, colors="#999999", linewidths=0.6)
        left = x < axis.width * 0.6  # labels read away from the right edge
        ax.text(x, y, f" {text}" if left else f"{text} ", transform=transform, fontsize=7,
                va="center", ha="left" if left else "right", clip_on=True)  # fmt: skip


@dataclass
class _Job:
    """One chart's inputs: all of it plain data, so it pickles to a worker process."""

    rule: str
    series: list[Series]
    alerts: list[AlertEvent]
    stats: RuleStats
    start_ms: int
    end_ms: int
    path: Path


def _draw_rule(job: _Job) -> Figure:
    rule, series, alerts, st = job.rule, job.series, job.alerts, job.stats
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    # fixed margins (a layout engine is slow and moves the axes from chart to chart); room on
    # the right for the legend
    ax = fig.add_axes((0.06, 0.14, 0.73, 0.74))
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)

    per_key: dict[str, list[AlertEvent]] = {}
    for a in alerts:
        per_key.setdefault(a.key, []).append(a)
    with_data = sorted(
        (s for s in series if s.ts_ms), key=lambda s: (-len(per_key.get(s.key, ())), s.key)
    )
    drawn: list[Series] = []
    arrays: dict[str, tuple[Floats, Floats]] = {}
    for s in with_data:
        if len(drawn) == MAX_LINES:
            break
        t, v = downsample(s.ts_ms, s.values)
        if len(t) and s.key not in arrays:
            drawn.append(s)
            arrays[s.key] = (t, v)
    rest = [s for s in with_data if s.key not in arrays]  # beyond MAX_LINES, or all NaN
    # the alerts drawn: those of the lines drawn, or all of them when there is no line
    keys = [s.key for s in drawn] if drawn else sorted(per_key)
    shown = [a for a in alerts if a.key in set(keys)]
    spans = {k: _spans(per_key.get(k, []), job.end_ms) for k in keys}
    # with no line the axis is plain time; with lines, the alerts' times count as data too
    times = [arrays[s.key][0] for s in drawn]
    if drawn:
        times.append(np.asarray([a.ts_ms for a in shown], dtype=np.float64))
    keep = [span for episodes in spans.values() for span in episodes]
    axis = _TimeAxis.build(job.start_ms, job.end_ms, times, keep=keep)
    scale = _Scale(_is_relative(drawn, arrays), {s.key: s.threshold for s in drawn})
    colours = {s.key: f"C{i % 10}" for i, s in enumerate(drawn)}

    handles = _draw_lines(ax, drawn, arrays, axis, scale, colours)
    handles += _draw_levels(ax, drawn, scale, colours)
    handles += _draw_markers(ax, shown, axis, scale, arrays)
    if not drawn:  # no lines to tell apart: one full-height shade
        spans = {"": [span for episodes in spans.values() for span in episodes]}
    handles += _draw_spans(ax, spans, axis, colours)

    notes = [n for n in dict.fromkeys(s.note for s in series) if n]
    if rest:
        n_alerts = sum(len(per_key.get(s.key, ())) for s in rest)
        notes.append(
            f"{len(drawn)} of {len(with_data)} instances drawn (most alerts first); "
            f"the other {len(rest)} had {plural(n_alerts, 'alert')}"
        )
    extra = "; ".join(notes)
    if not drawn:
        # a headline rule judges stories, not a series: each alert is named where it fell
        empty = "no data judged" if not shown else "no series: each ▲ is an alert"
        ax.text(0.5, 0.55, empty, transform=ax.transAxes, ha="center",
                va="center", fontsize=16, color="#888888")  # fmt: skip
        ax.set_yticks([])
        _name_alerts(ax, shown, axis)
    # a fixed title position: the automatic one measures every tick label (a tenth of the time)
    ax.set_title(_title(rule, st, extra), loc="left", fontsize=11, y=1.0, pad=6)

    # time axis: ticks in kept time, labelled in New York time; a dotted rule at each cut
    ax.set_xlim(0, axis.width)
    tick_x, tick_labels = axis.ticks()
    ax.set_xticks(tick_x, tick_labels)
    ax.tick_params(axis="both", labelsize=8)
    if len(axis.cuts):  # one collection, not an artist per night
        ax.vlines(axis.cuts, 0, 1, transform=ax.get_xaxis_transform(), colors="#bbbbbb",
                  linewidths=0.6, linestyles=":", zorder=0)  # fmt: skip
    cut = f" (pauses over {GAP_MS // 3_600_000}h cut out: dotted)" if len(axis.cuts) else ""
    ax.set_xlabel(f"New York time{cut}", fontsize=9)
    if scale.relative:
        ax.set_ylabel("% from the line's fire level", fontsize=9)
    elif len(drawn) == 1:
        ax.set_ylabel(_text(drawn[0].label or drawn[0].key, 40), fontsize=9)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                  frameon=False, borderaxespad=0.0)  # fmt: skip
    return fig


def _render(job: _Job) -> Path:
    """Draw and write one chart (in this process or a worker)."""
    fig = _draw_rule(job)
    # zlib level 1: a sixth of the default level's time, for a file about 10% larger
    fig.savefig(job.path, dpi=DPI, format="png", metadata={"Software": None},
                pil_kwargs={"compress_level": 1})  # fmt: skip
    return job.path


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: What a worker process costs to start (imports), in charts: the parent takes that many more.
_START_COST = 5


def _shares(jobs: list[_Job], n: int) -> list[list[_Job]]:
    """`n` groups of jobs, the first (the parent's) larger by what starting a worker costs."""
    parent = min(len(jobs), (len(jobs) + (n - 1) * _START_COST) // n)
    rest = jobs[parent:]
    return [jobs[:parent]] + [rest[i :: n - 1] for i in range(n - 1)]


def _render_parallel(jobs: list[_Job], n: int) -> None:
    """Draw `jobs` in this process and `n - 1` worker processes.

    The workers are `python -m daemon.backtest.charts JOBS.pickle`, not `multiprocessing`:
    its `spawn` and `forkserver` re-import the caller's main script in each worker (a script
    without a `__name__` guard, such as `python -m daemon`, would run again), and `fork`
    with the caller's threads alive (a rich progress bar) can deadlock in the child. A worker
    that fails has its charts drawn here, so the charts never depend on the workers."""
    groups = _shares(jobs, n)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # where `daemon` imports from
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["MPLBACKEND"] = "Agg"
    with tempfile.TemporaryDirectory(prefix="tickwatch-charts-") as tmp:
        procs: list[tuple[subprocess.Popen[bytes], list[_Job], Path]] = []
        for i, group in enumerate(groups[1:]):
            if not group:
                continue
            job_file = Path(tmp) / f"jobs-{i}.pickle"
            job_file.write_bytes(pickle.dumps(group, protocol=pickle.HIGHEST_PROTOCOL))
            cmd = [sys.executable, "-m", "daemon.backtest.charts", str(job_file)]
            with (Path(tmp) / f"err-{i}.txt").open("wb") as err:
                proc = subprocess.Popen(
                    cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
                )
            procs.append((proc, group, Path(tmp) / f"err-{i}.txt"))
        try:
            for job in groups[0]:
                _render(job)
        finally:
            for proc, group, err_file in procs:
                if proc.wait() != 0:
                    tail = err_file.read_text(errors="replace").strip().splitlines()[-3:]
                    log.warning(
                        "chart worker exited %s (%s); drawing its %d charts here",
                        proc.returncode,
                        " | ".join(tail) or "no message",
                        len(group),
                    )
                    for job in group:
                        _render(job)


def render_charts(
    result: BacktestResult, out_dir: Path | str, *, workers: int | None = None
) -> list[Path]:
    """Write one `<slug>.png` per rule (every rule, see the module docstring) into `out_dir`
    (created if missing); returns the paths in rule order.

    A chart costs matplotlib 0.1-0.2 s, nearly all of it fixed (tick and text layout, not
    the data), so 50 rules take 7-8 s on one core. From `PARALLEL_FROM` charts on, they are
    drawn by this process and worker processes, `workers` in all (default: the cores
    available, at most 4; see `_render_parallel`). `workers=1` draws them all here."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rules = rule_names(result)
    names = chart_names(rules)
    stats = stats_by_rule(result)
    series: dict[str, list[Series]] = {}
    for s in result.series:
        series.setdefault(s.rule, []).append(s)
    alerts: dict[str, list[AlertEvent]] = {}
    for a in result.alerts:
        alerts.setdefault(a.rule, []).append(a)
    jobs = [
        _Job(
            rule,
            series.get(rule, []),
            alerts.get(rule, []),
            stats[rule],
            result.start_ms,
            result.end_ms,
            out / names[rule],
        )
        for rule in rules
    ]
    n = min(_cores(), 4) if workers is None else workers
    n = min(n, len(jobs) // 2)
    if n <= 1 or (workers is None and len(jobs) < PARALLEL_FROM):
        return [_render(job) for job in jobs]
    _render_parallel(jobs, n)
    return [job.path for job in jobs]


def _worker(argv: list[str]) -> int:
    """A worker of `_render_parallel`: draw the pickled jobs it was handed."""
    jobs: list[_Job] = pickle.loads(Path(argv[0]).read_bytes())
    for job in jobs:
        _render(job)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
