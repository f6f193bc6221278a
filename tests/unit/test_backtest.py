"""`tickwatch backtest`: history through the daemon's driver and delivery decisions.

The command on the bundled sample, the reading of history files (in chunks, in time order,
through the daemon's edge), and every way a file can be unusable: each is a clear error that
names the file and the row, or a count that says what was skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from daemon.backtest import data as data_mod
from daemon.backtest.data import DataError, open_history
from daemon.backtest.run import BacktestError, run_backtest
from daemon.cli import main
from daemon.config import load_config
from daemon.rules.driver import Driver, simulate
from daemon.sources.replay import load_timeline

ROOT = Path(__file__).resolve().parents[2]
RULES = """\
rules:
  - name: nvda-high
    when: {threshold: {symbols: NVDA, above: 101, clear: 100.5}}
    channels: [desk]
  - name: msft-low
    when: {threshold: {symbols: MSFT, below: 99}}
    channels: [desk, phone]
"""
ALERTS = """\
channels:
  desk: {type: console}
  phone: {type: console}
include: [rules/*.yaml]
"""


def setup(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    (tmp_path / "alerts.yaml").write_text(ALERTS)
    return tmp_path / "alerts.yaml"


def bars(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    df = pd.DataFrame(rows, columns=["ts", "symbol", "close"])
    for col in ("open", "high", "low"):
        df[col] = df["close"]
    if path.suffix == ".parquet":
        df["ts"] = pd.to_datetime(df["ts"], utc=True)
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    return path


def minutes(sym: str, start: str, prices: list[float]) -> list[tuple[str, str, float]]:
    t0 = pd.Timestamp(start)
    return [((t0 + pd.Timedelta(minutes=i)).isoformat(), sym, p) for i, p in enumerate(prices)]


def test_the_sample_backtests_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """No arguments but --from and --out: the config's replay files, every rule, a table and
    the files; the alerts are the driver's on the replay source's own reading of the files."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    rc = main(["backtest", "--from", "2026-03-16", "--out", str(out), "--no-charts"])
    text = capsys.readouterr().out
    assert rc == 0, text
    cfg = load_config(ROOT / "alerts.yaml")
    for lr in cfg.rules:
        assert lr.rule.name[:20] in text
    assert "3 row(s) refused" in text and "too far in the future" in text
    written = json.loads((out / "alerts.json").read_text())
    records = written["alerts"] if isinstance(written, dict) else written
    # the same transitions as simulate() over the replay source's timeline of the same files
    tl = load_timeline(ROOT / "data/sample/ticks.csv.gz", ROOT / "data/sample/news.csv", "sample")
    start = int(pd.Timestamp("2026-03-16", tz="America/New_York").timestamp() * 1000)
    events = []
    for ev in tl.events:
        if ev is None or ev.ts_ms > 4_000_000_000_000:  # refused at the edge (bad, future)
            continue
        if getattr(ev, "price", 1.0) <= 0 or getattr(ev, "symbol", "NVDA") not in cfg.universe:
            continue
        if ev.ts_ms < start:
            if hasattr(ev, "price"):
                from dataclasses import replace

                events.append(replace(ev, history=True))
            continue
        events.append(ev)
    expected = simulate(Driver(cfg.compile(), reminders_after_ms=start), events,
                        start_ms=start, until_ms=None)  # fmt: skip
    got = sorted((r["rule"], r["key"], r["state"]) for r in records)
    assert got == sorted((a.rule, a.key, a.state) for a in expected)
    assert len(got) >= 5


def test_messages_per_channel_follow_the_route_tree(tmp_path: Path) -> None:
    cfg = load_config(setup(tmp_path))
    f = bars(tmp_path / "b.csv", minutes("NVDA", "2026-03-16T13:30:00Z", [100, 102, 100, 102])
             + minutes("MSFT", "2026-03-16T13:30:00Z", [100, 98, 100, 100]))  # fmt: skip
    h = open_history([f], symbols=cfg.universe)
    r = run_backtest(cfg, h)
    stats = {s.rule: s for s in r.stats()}
    assert (stats["nvda-high"].fires, stats["nvda-high"].clears) == (2, 1)  # still firing
    assert stats["nvda-high"].messages == {"desk": 3}
    assert stats["msft-low"].messages == {"desk": 2, "phone": 2}
    assert r.ticks == 8 and not r.ignored


def test_files_are_merged_in_time_order_and_unknown_symbols_counted(tmp_path: Path) -> None:
    cfg = load_config(setup(tmp_path))
    a = bars(tmp_path / "a.parquet", minutes("NVDA", "2026-03-16T13:30:00Z", [100, 102]))
    b = bars(tmp_path / "b.csv", minutes("MSFT", "2026-03-16T13:30:30Z", [100, 98])
             + minutes("ZZZZ", "2026-03-16T13:31:00Z", [1.0]))  # fmt: skip
    h = open_history([b, a], symbols=cfg.universe)
    evs = list(h)
    assert [e.ts_ms for e in evs] == sorted(e.ts_ms for e in evs)
    assert {e.symbol for e in evs} == {"NVDA", "MSFT"}  # type: ignore[union-attr]
    assert h.ignored == {"ZZZZ": 1}


def test_rows_that_cannot_be_read_are_named_by_file_and_line(tmp_path: Path) -> None:
    cfg = load_config(setup(tmp_path))
    f = tmp_path / "b.csv"
    f.write_text("ts,symbol,open,high,low,close\n2026-03-16T13:30:00Z,NVDA,1,1,1,100\n"
                 "yesterday,NVDA,1,1,1,101\n2026-03-16T13:32:00Z,NVDA,1,1,1,abc\n")  # fmt: skip
    h = open_history([f], symbols=cfg.universe)
    assert len(list(h)) == 1
    assert h.refused_count == 2
    assert f"{f}:line 3: cannot read its time 'yesterday'" in h.refused[0]
    assert f"{f}:line 4: close 'abc' is not a positive number" in h.refused[1]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("ts,symbol,close_price\n2026-03-16T13:30:00Z,NVDA,1\n", "no price, close or title column"),
        ("symbol,close\nNVDA,1\n", "without ts"),
        ("ts,close\n2026-03-16T13:30:00Z,1\n", "without symbol"),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused_with_the_layout(
    tmp_path: Path, content: str, needle: str
) -> None:
    f = tmp_path / "x.csv"
    f.write_text(content)
    with pytest.raises(DataError, match=needle) as e:
        open_history([f])
    assert str(f) in str(e.value) and "1-minute bars" in str(e.value)


def test_a_file_out_of_time_order_across_chunks_says_sort_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_mod, "CHUNK_ROWS", 2)
    cfg = load_config(setup(tmp_path))
    f = bars(tmp_path / "b.csv", minutes("NVDA", "2026-03-16T13:35:00Z", [100, 101])
             + minutes("NVDA", "2026-03-16T13:30:00Z", [100, 101]))  # fmt: skip
    with pytest.raises(DataError, match=r"not in time order .* sort the file by ts"):
        list(open_history([f], symbols=cfg.universe))


def test_an_empty_range_and_an_unknown_rule_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = setup(tmp_path)
    f = bars(tmp_path / "b.csv", minutes("NVDA", "2026-03-16T13:30:00Z", [100, 102]))
    rc = main(["backtest", "--config", str(path), "--data", str(f), "--from", "2026-05-01",
               "--out", str(tmp_path / "o"), "--no-charts"])  # fmt: skip
    assert rc == 2 and "no data in the range" in capsys.readouterr().err
    cfg = load_config(path)
    with pytest.raises(BacktestError, match="did you mean 'nvda-high'"):
        run_backtest(cfg, open_history([f], symbols=cfg.universe), rules=["nvda-hihg"])


def test_compare_shows_what_an_edit_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = setup(tmp_path)
    edited = tmp_path / "edited.yaml"
    edited.write_text(RULES.replace("above: 101", "above: 101.5"))
    f = bars(tmp_path / "b.csv", minutes("NVDA", "2026-03-16T13:30:00Z", [100, 101.2, 100, 102]))
    rc = main(["backtest", "--config", str(path), "--data", str(f), "--rules", str(edited),
               "--compare", str(tmp_path / "rules"), "--out", str(tmp_path / "o"),
               "--no-charts"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0, text
    # 101.2 fired before the edit, not after; 102 fires in both
    assert "0 added, 2 removed, 0 moved, 1 unchanged" in text


def test_a_rule_of_several_conditions_is_charted_by_its_first(tmp_path: Path) -> None:
    """`all: [pct_move, earnings]`: the line is the move (the composite's value), named so,
    with a note that the rule also needs the earnings window, since the line alone may cross
    the level while the rule stays quiet."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text("""\
rules:
  - name: move-near-report
    when:
      all:
        - pct_move: {symbols: NVDA, window: 30m, either: 3.0}
        - earnings: {symbols: NVDA, before: 1d, after: 1d}
    channels: [desk]
  - name: nvda-high
    when: {threshold: {symbols: NVDA, above: 101}}
    channels: [desk]
""")
    (tmp_path / "alerts.yaml").write_text(ALERTS)
    cfg = load_config(tmp_path / "alerts.yaml")
    f = bars(
        tmp_path / "b.csv", minutes("NVDA", "2026-03-16T13:30:00Z", [100.0 + i for i in range(40)])
    )
    r = run_backtest(cfg, open_history([f], symbols=cfg.universe))
    by_rule = {s.rule: s for s in r.series}
    move = by_rule["move-near-report"]
    assert move.label == "pct_move NVDA" and move.ts_ms
    assert (
        move.note == "the line is pct_move; the rule fires only when all of pct_move, earnings hold"
    )
    assert by_rule["nvda-high"].note == ""  # one condition: nothing to explain
