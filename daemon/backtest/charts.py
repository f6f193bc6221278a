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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from daemon.alerts import AlertEvent
from daemon.backtest.chart_axis import GAP_MS, MAX_POINTS, Floats, _TimeAxis, downsample
from daemon.backtest.chart_draw import (
    _draw_levels,
    _draw_lines,
    _draw_markers,
    _draw_spans,
    _is_relative,
    _name_alerts,
    _Scale,
    _spans,
    _text,
    _title,
)
from daemon.backtest.model import BacktestResult, RuleStats, Series
from daemon.backtest.table import plural, rule_names, stats_by_rule

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
