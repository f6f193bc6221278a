"""The parts of one chart: lines, fire and clear levels, firing spans, markers, alert names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from daemon.alerts import AlertEvent
from daemon.backtest.chart_axis import GAP_MS, Floats, _TimeAxis
from daemon.backtest.model import RuleStats, Series
from daemon.backtest.table import human_duration, plural

FIRE_COLOUR = "#d62728"
RESOLVE_COLOUR = "#2ca02c"
LEVEL_COLOUR = "#444444"


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
