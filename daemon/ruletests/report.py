"""A test's outcome as text: `PASS`, or `FAIL` and its diff in New York time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from daemon.alerts import NEW_YORK, AlertEvent
from daemon.durations import format_duration
from daemon.ruletests.diff import CaseResult, Expected
from daemon.ruletests.schema import DEFAULT_TOL

__all__ = ["render_result"]


def _when(ts_ms: int, start_ms: int) -> str:
    local = dt.datetime.fromtimestamp(ts_ms / 1000, NEW_YORK)
    delta = ts_ms - start_ms
    offset = format_duration(dt.timedelta(milliseconds=abs(delta)))
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({'-' if delta < 0 else '+'}{offset})"


def _labels(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f"{k}={labels[k]}" for k in sorted(labels)) + "}" if labels else ""


def _num(v: float) -> str:
    return f"{v:.10g}"


def _describe_expected(e: Expected, start_ms: int, file: str) -> str:
    text = f"{_when(e.ts_ms, start_ms)}  {e.state:<8}  {e.rule}{_labels(e.labels)}"
    if e.value is not None:
        text += f"  value={_num(e.value)}" + (f"±{_num(e.tol)}" if e.tol != DEFAULT_TOL else "")
    if e.channels is not None:
        text += f"  channels={','.join(e.channels)}"
    if e.summary is not None:
        text += f"  summary={e.summary!r}"
    return f"{text}  [{file}:{e.line}]"


def _describe_got(a: AlertEvent, start_ms: int, *, channels: bool, summary: bool) -> str:
    text = f"{_when(a.ts_ms, start_ms)}  {a.state:<8}  {a.rule}{_labels(a.labels)}"
    text += f"  value={_num(a.value)}" if a.value is not None else "  value=none"
    if channels:
        text += f"  channels={','.join(a.channels)}"
    if summary:
        text += f"  summary={a.summary!r}"
    return text


def render_result(r: CaseResult, *, context: int = 3) -> list[str]:
    """`PASS file: name`, or `FAIL file:line: name` and the diff, as lines of text."""
    if r.passed:
        return [f"PASS {r.file}: {r.name}"]
    show_ch = any(e.channels is not None for e in r.expected)
    show_sum = any(e.summary is not None for e in r.expected)
    start = dt.datetime.fromtimestamp(r.start_ms / 1000, NEW_YORK)
    lines = [
        f"FAIL {r.file}:{r.line}: {r.name}",
        f"    - expected, + got; New York time (offset from start {start:%Y-%m-%d %H:%M:%S %Z})",
    ]
    near = {
        k
        for i, d in enumerate(r.diff)
        if d.mark != " "
        for k in range(max(0, i - context), min(len(r.diff), i + context + 1))
    }
    skipped = 0
    for i, d in enumerate(r.diff):
        if i not in near:
            skipped += 1
            continue
        if skipped:
            lines.append(f"      ... {skipped} more as expected")
            skipped = 0
        if d.mark == "-" and d.expected is not None:
            lines.append(f"    - {_describe_expected(d.expected, r.start_ms, r.file)}")
        elif d.got is not None:
            text = _describe_got(d.got, r.start_ms, channels=show_ch, summary=show_sum)
            lines.append(f"    {d.mark} {text}")
    if skipped:
        lines.append(f"      ... {skipped} more as expected")
    if not r.expected:
        lines.append("      (the test expects nothing: expect: [])")
    return lines
