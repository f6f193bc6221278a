"""`alerts.csv` and `alerts.json`: every alert transition of a backtest, one record each.

For spreadsheets, notebooks and diffs between two runs. One record per `AlertEvent` in
`result.alerts`, in event-time order (reminders included: `repeat` > 0), with the channels that
would actually have received it — from `result.messages`, so after grouping, inhibition,
silences and quiet hours — and, separately, the channels that held it back and why.

Fields, in this order (the CSV's columns; the JSON objects' keys):

=============  ===============================================================================
id             the transition's stable id, `<key>#<seq>:<state>[.r<n>]` (joins with the daemon)
rule           rule name
key            the alert's identity, rule plus labels: `big-move{symbol=NVDA}`
labels         JSON: an object. CSV: `k=v;k=v`, sorted by key ("" when none)
state          `firing` or `resolved`
time           event time, ISO 8601 UTC with milliseconds and `Z`: `2026-03-16T13:30:00.000Z`
ts_ms          event time, epoch milliseconds
value          what the rule judged at that moment (JSON null / CSV "" when none)
threshold      the level it was judged against (null / "" when none)
comparison     `above`, `below`, `>=`, `headline`, `reminder`, ...
severity       `info`, `warning` or `critical`
repeat         0 for the transition itself, n for the n-th "still firing" reminder
channels       channels whose messages carried it (a single alert, a group or a digest).
               JSON: a list. CSV: `a;b`. In order of the first message that carried it
held           channels that did not get it, with the outcome. JSON: a list of
               `{"channel", "outcome", "why"}`. CSV: `channel:outcome;channel:outcome`
summary        the alert's one-line text. In the CSV, a summary starting with `=`, `+`, `-`,
               `@`, a tab or a carriage return gets a leading `'`: headline summaries are
               third-party text, and a spreadsheet would run `=HYPERLINK(...)` as a formula
=============  ===============================================================================

The JSON file is a single array of these objects (orjson, indented). It is the lossless one:
the CSV joins lists with `;` and labels with `=`, so a label value holding those characters
reads back ambiguously there.
"""

from __future__ import annotations

import csv
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

from daemon.alerts import AlertEvent
from daemon.backtest.model import BacktestResult, Suppressed
from daemon.events import ms_to_dt

__all__ = [
    "FIELDS",
    "alert_channels",
    "alert_held",
    "alert_records",
    "iso_utc",
    "write_alerts_csv",
    "write_alerts_json",
]

FIELDS: tuple[str, ...] = (
    "id",
    "rule",
    "key",
    "labels",
    "state",
    "time",
    "ts_ms",
    "value",
    "threshold",
    "comparison",
    "severity",
    "repeat",
    "channels",
    "held",
    "summary",
)


#: What makes a spreadsheet read a cell as a formula (OWASP "CSV injection").
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def iso_utc(ms: int) -> str:
    """`2026-03-16T13:30:00.000Z`: fixed width, so the column sorts as text too."""
    return ms_to_dt(ms).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_channels(result: BacktestResult) -> dict[str, list[str]]:
    """Alert id -> the channels whose messages carried it, in order of first message, once
    each (a group message and a later digest on the same channel still count it once)."""
    out: dict[str, list[str]] = {}
    for m in result.messages:
        for aid in m.alert_ids:
            seen = out.setdefault(aid, [])
            if m.channel not in seen:
                seen.append(m.channel)
    return out


def alert_held(result: BacktestResult) -> dict[str, list[Suppressed]]:
    """Alert id -> the decisions that held it back on a channel."""
    out: dict[str, list[Suppressed]] = {}
    for s in result.suppressed:
        out.setdefault(s.alert_id, []).append(s)
    return out


def alert_records(result: BacktestResult) -> list[dict[str, Any]]:
    """One plain dict per transition, keys in `FIELDS` order, values as in the JSON file."""
    sent = alert_channels(result)
    held = alert_held(result)
    return [_record(a, sent.get(a.id, []), held.get(a.id, [])) for a in result.alerts]


def _float(v: float | None) -> float | None:
    """A plain float: a runner may hand over numpy scalars, which orjson rejects and whose
    `repr` is `np.float64(...)`."""
    return None if v is None else float(v)


def _record(a: AlertEvent, channels: list[str], held: list[Suppressed]) -> dict[str, Any]:
    return {
        "id": a.id,
        "rule": a.rule,
        "key": a.key,
        "labels": {k: a.labels[k] for k in sorted(a.labels)},
        "state": a.state,
        "time": iso_utc(a.ts_ms),
        "ts_ms": a.ts_ms,
        "value": _float(a.value),
        "threshold": _float(a.threshold),
        "comparison": a.comparison,
        "severity": a.severity,
        "repeat": int(a.repeat),
        "channels": list(channels),
        "held": [{"channel": s.channel, "outcome": s.outcome, "why": s.why} for s in held],
        "summary": a.summary,
    }


def _cell(name: str, v: Any) -> str | int:
    """A JSON value as a CSV cell: lists and the labels object flattened, None empty, floats
    in `repr` form so they read back exactly."""
    if v is None:
        return ""
    if name == "labels":
        return ";".join(f"{k}={val}" for k, val in v.items())
    if name == "channels":
        return ";".join(v)
    if name == "held":
        return ";".join(f"{h['channel']}:{h['outcome']}" for h in v)
    if name == "summary" and str(v).startswith(_FORMULA):
        return "'" + str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return v
    return str(v)


def write_alerts_csv(result: BacktestResult, path: Path | str) -> Path:
    """Write `alerts.csv` (a header row, then one row per transition); returns the path."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for rec in alert_records(result):
            w.writerow([_cell(k, rec[k]) for k in FIELDS])
    return path


def write_alerts_json(result: BacktestResult, path: Path | str) -> Path:
    """Write `alerts.json` (one array of records); returns the path. orjson writes NaN and
    infinities as null, so the file is always valid JSON."""
    path = Path(path)
    data = orjson.dumps(alert_records(result), option=orjson.OPT_INDENT_2)
    path.write_bytes(data + b"\n")
    return path
