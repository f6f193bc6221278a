"""The backtest's outputs — table, alerts.csv/json, charts, report.html — on a result built by
hand, so each is checked against numbers this file can derive from its own input.

The result has four rules: one that flaps (and has a reminder), one whose name is HTML and that
is still firing at the end (two instances), one that never fired, and a headline rule with a
one-shot alert and no series. Messages go to two channels, one of them a group message that
carries two rules; three transitions are held back (quiet hours, a silence, not told).
"""

from __future__ import annotations

import base64
import csv
import json
import re
import struct
from collections import Counter
from dataclasses import replace
from datetime import datetime
from itertools import takewhile
from pathlib import Path

import pytest
from markupsafe import escape
from rich.console import Console

from daemon.alerts import AlertEvent
from daemon.backtest import charts
from daemon.backtest.charts import (
    HEIGHT_PX,
    MAX_POINTS,
    WIDTH_PX,
    chart_names,
    downsample,
    render_charts,
)
from daemon.backtest.files import FIELDS, write_alerts_csv, write_alerts_json
from daemon.backtest.html import write_report
from daemon.backtest.model import BacktestResult, Message, Series, Suppressed
from daemon.backtest.table import held_summary, human_duration, render_table

MIN = 60_000
HOUR = 60 * MIN
# Monday 2026-03-16 09:30 EDT .. Friday 2026-03-20 16:00 EDT
START = int(datetime.fromisoformat("2026-03-16T13:30:00+00:00").timestamp() * 1000)
END = int(datetime.fromisoformat("2026-03-20T20:00:00+00:00").timestamp() * 1000)

FLAPPY = "nvda-above-900"
HTMLY = "<b>x&y</b>"
SILENT = "msft-below-100"
NEWS = "nvda-headlines"


def _alert(
    rule: str,
    labels: dict[str, str],
    state: str,
    seq: int,
    ts: int,
    value: float | None,
    threshold: float | None = 900.0,
    **kw: object,
) -> AlertEvent:
    key = rule + ("{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}")
    fields: dict[str, object] = {
        "rule": rule,
        "key": key,
        "state": state,
        "seq": seq,
        "ts_ms": ts,
        "severity": "warning",
        "summary": f"{rule} {state} at {value}",
        "channels": ("slack_desk", "sms_oncall"),
        "labels": labels,
        "value": value,
        "threshold": threshold,
        "comparison": "above",
    }
    return AlertEvent(**{**fields, **kw})  # type: ignore[arg-type]


def _minutes(start: int, n: int, f: object) -> tuple[list[int], list[float]]:
    """n one-minute points of each session day (09:30-16:00 New York), values from f(i)."""
    ts: list[int] = []
    for day in range(5):
        base = start + day * 24 * HOUR
        ts.extend(base + i * MIN for i in range(min(n, 390)))
    return ts, [f(i) for i in range(len(ts))]  # type: ignore[operator]


def make_result() -> BacktestResult:
    nvda = {"symbol": "NVDA"}
    aapl, msft = {"symbol": "AAPL"}, {"symbol": "MSFT"}
    # the flappy rule: fires, resolves, fires again 5 minutes later (a flap), reminder, resolves
    f1 = _alert(FLAPPY, nvda, "firing", 1, START + 1 * HOUR, 901.5)
    r1 = _alert(FLAPPY, nvda, "resolved", 1, START + 3 * HOUR, 894.0)
    f2 = _alert(FLAPPY, nvda, "firing", 2, START + 3 * HOUR + 5 * MIN, 902.25)
    rem = _alert(FLAPPY, nvda, "firing", 2, START + 4 * HOUR, 903.0, repeat=1)
    r2 = _alert(FLAPPY, nvda, "resolved", 2, START + 24 * HOUR + 20 * MIN, 893.0)
    # the HTML-named rule: AAPL fires and never resolves; MSFT fires and resolves
    a1 = _alert(HTMLY, aapl, "firing", 1, START + 2 * HOUR, 251.0, 250.0)
    m1 = _alert(HTMLY, msft, "firing", 1, START + 2 * HOUR + MIN, 401.0, 400.0)
    m2 = _alert(HTMLY, msft, "resolved", 1, START + 2 * HOUR + 40 * MIN, 398.0, 400.0)
    # a headline: one-shot, no resolve, no series
    h1 = _alert(
        NEWS,
        nvda,
        "firing",
        1,
        START + 26 * HOUR,
        None,
        None,
        resolves=False,
        comparison="headline",
        # third-party text: markup for the report, a formula for a spreadsheet
        summary='=HYPERLINK("x") NVDA: "Chips & <script>alert(1)</script>" (Reuters)',
    )
    alerts = sorted([f1, r1, f2, rem, r2, a1, m1, m2, h1], key=lambda a: a.ts_ms)
    messages = [
        Message("slack_desk", f1.ts_ms, "alert", (f1.id,), (FLAPPY,)),
        Message("sms_oncall", f1.ts_ms, "alert", (f1.id,), (FLAPPY,)),
        Message("slack_desk", r1.ts_ms, "alert", (r1.id,), (FLAPPY,)),
        Message("slack_desk", f2.ts_ms, "alert", (f2.id,), (FLAPPY,)),
        # one group message carrying both rules
        Message("slack_desk", m1.ts_ms + MIN, "group", (a1.id, m1.id, rem.id), (HTMLY, FLAPPY)),
        Message("sms_oncall", a1.ts_ms, "alert", (a1.id,), (HTMLY,)),
        Message("slack_desk", m2.ts_ms, "alert", (m2.id,), (HTMLY,)),
        Message("slack_desk", r2.ts_ms, "alert", (r2.id,), (FLAPPY,)),
        Message("slack_desk", h1.ts_ms, "alert", (h1.id,), (NEWS,)),
    ]
    suppressed = [
        Suppressed("sms_oncall", f2.id, FLAPPY, "quiet", "quiet hours 12:00-13:00"),
        Suppressed("sms_oncall", r2.id, FLAPPY, "not_told", "its firing was not told here"),
        Suppressed("sms_oncall", m1.id, HTMLY, "silenced", "silence by ops: MSFT maintenance"),
    ]
    t, v = _minutes(START, 390, lambda i: 895 + 8 * ((i % 390) / 390))
    nvda_series = Series(FLAPPY, f1.key, "NVDA price", t, v, 900.0, 895.0, "above")
    t, v = _minutes(START, 390, lambda i: 249 + (i % 97) / 40)
    aapl_series = Series(HTMLY, a1.key, "AAPL price", t, v, 250.0, None, "above")
    t, v = _minutes(START, 390, lambda i: 399 + (i % 53) / 20)
    msft_series = Series(HTMLY, m1.key, "MSFT price", t, v, 400.0, None, "above")
    # long enough to be downsampled when drawn
    t = [START + i * 20_000 for i in range(3 * MAX_POINTS)]
    v = [120 - (i % 1000) / 100 for i in range(len(t))]
    silent_series = Series(SILENT, SILENT + "{symbol=MSFT}", "MSFT price", t, v, 100.0, 101.0)
    return BacktestResult(
        start_ms=START,
        end_ms=END,
        rules=[FLAPPY, HTMLY, SILENT, NEWS],
        alerts=alerts,
        messages=messages,
        suppressed=suppressed,
        series=[nvda_series, aapl_series, msft_series, silent_series],
        ticks=123_456,
        headlines=42,
        ignored=Counter({"ZZZZ": 1_500, "QQQ": 7}),
        inputs=["data/bars.parquet", "data/news.csv"],
    )


@pytest.fixture
def result() -> BacktestResult:
    return make_result()


# --- the model's numbers, derived from the input above -------------------------------------


def test_stats_agree_with_the_input(result: BacktestResult) -> None:
    """The table shows `stats()`; first check `stats()` says what this file built."""
    st = {s.rule: s for s in result.stats()}
    assert (st[FLAPPY].fires, st[FLAPPY].clears, st[FLAPPY].flaps) == (2, 2, 1)
    assert st[FLAPPY].firing_ms == 2 * HOUR + (24 * HOUR + 20 * MIN - 3 * HOUR - 5 * MIN)
    aapl_open = END - (START + 2 * HOUR)  # still firing at the end
    assert st[HTMLY].firing_ms == aapl_open + 39 * MIN
    assert st[HTMLY].longest_ms == aapl_open
    assert (st[SILENT].fires, st[SILENT].clears, st[SILENT].firing_ms) == (0, 0, 0)


# --- table ----------------------------------------------------------------------------------


def _table_text(result: BacktestResult) -> str:
    console = Console(width=100, record=True, color_system=None, force_terminal=False)
    render_table(result, console)
    return console.export_text()


def test_human_duration() -> None:
    assert human_duration(3 * HOUR + 20 * MIN + 5_000) == "3h 20m"
    assert human_duration(2 * HOUR) == "2h"
    assert human_duration(26 * HOUR + 3 * MIN) == "1d 2h"
    assert human_duration(45_000) == "45s"
    assert human_duration(0) == "0m"


def test_table_has_every_rule_with_its_numbers(result: BacktestResult) -> None:
    text = _table_text(result)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    for st in result.stats():
        # a row, and its continuation lines (a wrapped held column) up to the next rule
        i = next(i for i, line in enumerate(lines) if line.startswith(st.rule))
        block = [lines[i][len(st.rule) :]]
        block += takewhile(lambda line: line.startswith(" "), lines[i + 1 :])
        cells = " ".join(block).split()
        expected = [
            str(st.fires),
            str(st.clears),
            *human_duration(st.firing_ms).split(),
            *human_duration(st.longest_ms).split(),
            str(st.flaps),
            f"{st.per_week:.1f}",
            str(st.messages.get("slack_desk", 0)),
            str(st.messages.get("sms_oncall", 0)),
        ]
        assert cells[: len(expected)] == expected, lines[i]
        assert " ".join(cells[len(expected) :]) == held_summary(st.suppressed)
    assert held_summary(next(s for s in result.stats() if s.rule == FLAPPY).suppressed) == (
        "not told 1, quiet 1"
    )
    # the header: range in New York time, what was read, what was ignored, inputs
    assert "2026-03-16 09:30 EDT" in text and "2026-03-20 16:00 EDT" in text
    assert "123,456 ticks" in text and "42 headlines" in text
    assert "2 symbols" in text and "ZZZZ 1,500" in text
    assert "data/bars.parquet" in text


# --- alerts.csv / alerts.json ---------------------------------------------------------------


def _expected_channels(result: BacktestResult, alert_id: str) -> set[str]:
    return {m.channel for m in result.messages if alert_id in m.alert_ids}


def test_csv_round_trip(result: BacktestResult, tmp_path: Path) -> None:
    path = write_alerts_csv(result, tmp_path / "alerts.csv")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == FIELDS
        rows = list(reader)
    assert len(rows) == len(result.alerts)
    for a, row in zip(result.alerts, rows, strict=True):
        assert (row["id"], row["rule"], row["key"], row["state"]) == (a.id, a.rule, a.key, a.state)
        assert int(row["ts_ms"]) == a.ts_ms
        assert datetime.fromisoformat(row["time"]).timestamp() * 1000 == a.ts_ms
        assert row["time"].endswith("Z")
        assert (float(row["value"]) if row["value"] else None) == a.value
        assert (float(row["threshold"]) if row["threshold"] else None) == a.threshold
        assert dict(kv.split("=", 1) for kv in row["labels"].split(";")) == a.labels
        assert int(row["repeat"]) == a.repeat
        assert (row["severity"], row["comparison"]) == (a.severity, a.comparison)
        got = set(row["channels"].split(";")) - {""}
        assert got == _expected_channels(result, a.id)
        held = {f"{s.channel}:{s.outcome}" for s in result.suppressed if s.alert_id == a.id}
        assert set(row["held"].split(";")) - {""} == held
        assert row["summary"] == ("'" if a.summary.startswith("=") else "") + a.summary


def test_json_round_trip(result: BacktestResult, tmp_path: Path) -> None:
    path = write_alerts_json(result, tmp_path / "alerts.json")
    records = json.loads(path.read_text(encoding="utf-8"))
    assert len(records) == len(result.alerts)
    for a, rec in zip(result.alerts, records, strict=True):
        assert list(rec) == list(FIELDS)
        assert rec["labels"] == a.labels
        assert (rec["rule"], rec["state"], rec["ts_ms"]) == (a.rule, a.state, a.ts_ms)
        assert (rec["value"], rec["threshold"], rec["repeat"]) == (a.value, a.threshold, a.repeat)
        assert datetime.fromisoformat(rec["time"]).timestamp() * 1000 == a.ts_ms
        assert set(rec["channels"]) == _expected_channels(result, a.id)
        assert rec["held"] == [
            {"channel": s.channel, "outcome": s.outcome, "why": s.why}
            for s in result.suppressed
            if s.alert_id == a.id
        ]
    # the group message reached slack_desk for the reminder; the flap was held on sms
    by_id = {r["id"]: r for r in records}
    f2 = next(a for a in result.alerts if a.rule == FLAPPY and a.seq == 2 and not a.repeat)
    assert by_id[f2.id]["channels"] == ["slack_desk"]
    assert by_id[f2.id]["held"][0]["outcome"] == "quiet"


# --- charts ---------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


def test_charts_one_png_per_rule(result: BacktestResult, tmp_path: Path) -> None:
    paths = render_charts(result, tmp_path / "charts")
    names = chart_names(result.rules)
    assert [p.name for p in paths] == [names[r] for r in result.rules]
    assert len(set(paths)) == len(result.rules)
    for p in paths:
        assert _png_size(p) == (WIDTH_PX, HEIGHT_PX)
        assert re.fullmatch(r"[a-z0-9-]+\.png", p.name)


def test_charts_in_worker_processes_are_the_same(
    result: BacktestResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`workers=2` hands half the charts to `python -m daemon.backtest.charts`: same files."""
    here = render_charts(result, tmp_path / "here", workers=1)
    drawn_here: list[str] = []
    render = charts._render

    def counting(job: charts._Job) -> Path:
        drawn_here.append(job.rule)
        return render(job)

    monkeypatch.setattr(charts, "_START_COST", 0)  # split evenly, even for four charts
    monkeypatch.setattr(charts, "_render", counting)
    split = render_charts(result, tmp_path / "split", workers=2)
    assert len(drawn_here) == len(result.rules) // 2  # the rest came from the worker
    assert [p.name for p in split] == [p.name for p in here]
    for a, b in zip(here, split, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def _chart_texts(result: BacktestResult, rule: str) -> list[str]:
    """Every text the rule's chart draws (title, notes, labels), from the figure itself."""
    from daemon.backtest.table import stats_by_rule

    job = charts._Job(rule, [s for s in result.series if s.rule == rule],
                      [a for a in result.alerts if a.rule == rule], stats_by_rule(result)[rule],
                      result.start_ms, result.end_ms, Path("unused.png"))  # fmt: skip
    fig = charts._draw_rule(job)
    return [t for ax in fig.axes for t in [*(x.get_text() for x in ax.texts), ax.get_title("left")]]


def test_a_headline_chart_names_each_alert(result: BacktestResult) -> None:
    """A headline rule has no series: its chart says so and names each story where it fell,
    instead of "no data judged" beside the alerts it told."""
    texts = _chart_texts(result, NEWS)
    assert "no series: each ▲ is an alert" in texts
    assert "no data judged" not in texts
    (named,) = [t for t in texts if "NVDA: " in t]
    assert "HYPERLINK" in named  # the story's text (here its summary), cut to fit


def test_a_chart_of_several_conditions_says_which_line_it_draws(
    result: BacktestResult,
) -> None:
    note = "the line is pct_move; the rule fires only when all of pct_move, earnings hold"
    series = [replace(s, note=note) if s.rule == FLAPPY else s for s in result.series]
    texts = _chart_texts(replace(result, series=series), FLAPPY)
    assert any(note in t for t in texts)
    assert not any(note in t for t in _chart_texts(result, FLAPPY))


def test_chart_names_are_unique_and_safe() -> None:
    names = chart_names(["A b", "a-b", "a_B", "../../etc/passwd", "", "<b>x&y</b>"])
    assert len(set(names.values())) == 6
    assert all("/" not in n and not n.startswith(".") for n in names.values())


def test_downsample_keeps_spikes() -> None:
    n = 50_000
    ts = list(range(n))
    values = [1.0] * n
    values[12_345] = 99.0
    values[40_000] = -50.0
    t, v = downsample(ts, values)
    assert len(v) <= MAX_POINTS
    assert v.max() == 99.0 and v.min() == -50.0
    assert list(t) == sorted(t)
    assert t[list(v).index(99.0)] == 12_345


# --- report.html ----------------------------------------------------------------------------


def test_report_is_self_contained_and_escaped(result: BacktestResult, tmp_path: Path) -> None:
    charts = render_charts(result, tmp_path)
    path = write_report(result, tmp_path, charts)
    assert path == tmp_path / "report.html"
    text = path.read_text(encoding="utf-8")
    for rule in result.rules:
        assert str(escape(rule)) in text
    assert HTMLY not in text  # the raw markup never appears
    assert "&lt;b&gt;x&amp;y&lt;/b&gt;" in text
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == len(charts)
    for p in charts:
        assert base64.b64encode(p.read_bytes()).decode() in uris
    # nothing fetched: no remote src/href, no CSS url(), no scripts
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.I)
    assert "url(" not in text and "@import" not in text
    assert "<script" not in text.lower()
    # the numbers: the channel table and the per-rule alert lists
    assert ">slack_desk<" in text and ">sms_oncall<" in text
    for a in result.alerts:
        assert str(escape(a.summary)) in text
    assert "silence" in text and "quiet" in text
