"""What the benches share for `make bench`'s combined table: each bench's `--json FILE`.

A bench calls `write_json` at the end of its own table with its headline figures, each next to
the baseline it was measured against in the same run (`fig`), and, when it measures latency,
percentile series for the plot (`latency_series`). `bench/report.py` reads the files back and
prints one table, writes `bench/results.json` and plots `bench/latency.png`.

Schema of one file: {"bench", "title", "when" (UTC ISO), "host": {...}, "figures": [...],
"latency": [...]}; a figure is {"name", "value", "unit", "baseline", "baseline_value", "ratio",
"goal", "ok"} (baseline/goal fields null when the figure has none).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["PCTS", "fig", "host_info", "latency_series", "percentiles", "write_json"]

#: Percentiles a latency series is summarised at (the plot's x axis).
PCTS = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9)


def fig(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    goal: str | None = None,
    ok: bool | None = None,
    ratio: float | None = None,
) -> dict[str, Any]:
    """One headline figure; `ratio` defaults to value / baseline_value."""
    if ratio is None and baseline_value:
        ratio = value / baseline_value
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": baseline_value,
        "ratio": ratio,
        "goal": goal,
        "ok": ok,
    }


def percentiles(seconds: list[float], pcts: tuple[float, ...] = PCTS) -> dict[str, float]:
    """Nearest-rank percentiles of latencies in seconds, in ms, keyed "50", "99.9", and "max"."""
    s = sorted(seconds)
    if not s:
        return {}
    out = {f"{p:g}": s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000 for p in pcts}
    out["max"] = s[-1] * 1000
    return out


def latency_series(
    label: str, pcts_ms: dict[str, float], *, n: int | None = None, baseline: bool = False
) -> dict[str, Any]:
    """One curve of the latency plot: percentiles in ms (as `percentiles` returns them)."""
    return {"label": label, "pcts": pcts_ms, "n": n, "baseline": baseline}


def host_info() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def write_json(
    path: str | Path,
    bench: str,
    title: str,
    figures: list[dict[str, Any]],
    *,
    latency: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    doc: dict[str, Any] = {
        "bench": bench,
        "title": title,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": host_info(),
        "figures": figures,
        "latency": latency or [],
    }
    if extra:
        doc.update(extra)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=2) + "\n")
