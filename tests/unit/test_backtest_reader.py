"""The backtest's history reader: chunks checked as arrays, files merged a run at a time.

The merge keeps the order an event-at-a-time merge gives (time, then ticks before headlines,
then file), a refused row is still named by file and line in any chunk, the edge's array
check says what `tick_reason` says row for row, and ticks built a field at a time are the
ticks `Tick(...)` builds.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daemon.backtest import data as data_mod
from daemon.backtest.data import open_history
from daemon.events import Headline, Tick
from daemon.sources.normalize import REASONS, EdgeFilter
from daemon.sources.tables import make_ticks, tick_columns, ticks_from_frame

UNIVERSE = frozenset({"AAPL", "MSFT", "NVDA"})
T0 = pd.Timestamp("2026-03-16T13:30:00Z")
MIN = 60_000


def bars(path: Path, rows: list[tuple[pd.Timestamp, str, float]]) -> Path:
    """A 1-minute bars file (CSV or Parquet by suffix); each tick is at the bar's end."""
    df = pd.DataFrame(rows, columns=["ts", "symbol", "close"])
    for col in ("open", "high", "low"):
        df[col] = df["close"]
    if path.suffix == ".parquet":
        df.to_parquet(path)
    else:
        df["ts"] = [t.isoformat() for t in df["ts"]]
        df.to_csv(path, index=False)
    return path


def news(path: Path, rows: list[tuple[pd.Timestamp, str]]) -> Path:
    pd.DataFrame({"ts": [t.isoformat() for t, _ in rows], "title": [t for _, t in rows],
                  "id": [f"n{i}" for i in range(len(rows))]}).to_csv(path, index=False)  # fmt: skip
    return path


def minute(i: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=i)


def ms(t: pd.Timestamp) -> int:
    return int(t.timestamp() * 1000)


def label(ev: Tick | Headline) -> tuple[int, str]:
    return (ev.ts_ms, ev.symbol if isinstance(ev, Tick) else ev.title)


# -- the merge ------------------------------------------------------------------------------


def test_at_the_same_instant_ticks_come_before_headlines_whatever_the_file_order(
    tmp_path: Path,
) -> None:
    # a bar starting 13:30 is a tick at 13:31: the headlines at 13:31 come after it
    h = news(tmp_path / "n.csv", [(minute(1), "first"), (minute(1), "second"), (minute(2), "x")])
    b = bars(tmp_path / "b.parquet", [(minute(0), "AAPL", 1.0), (minute(1), "AAPL", 2.0)])
    for files in ([h, b], [b, h]):
        got = [label(e) for e in open_history(files, symbols=UNIVERSE)]
        assert got == [(ms(minute(1)), "AAPL"), (ms(minute(1)), "first"),
                       (ms(minute(1)), "second"), (ms(minute(2)), "AAPL"),
                       (ms(minute(2)), "x")]  # fmt: skip


def test_two_price_files_interleave_by_time_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_mod, "CHUNK_ROWS", 3)  # runs end at chunk edges too
    a = bars(tmp_path / "a.parquet", [(minute(i), "AAPL", 1.0 + i) for i in range(0, 20, 2)])
    b = bars(tmp_path / "b.csv", [(minute(i), "MSFT", 1.0 + i) for i in range(0, 20)])
    hist = open_history([b, a], symbols=UNIVERSE)
    got = [label(e) for e in hist]
    # at each even minute both files have a bar: b (file 0) first
    expected = sorted(
        [(ms(minute(i + 1)), 0, "MSFT") for i in range(20)]
        + [(ms(minute(i + 1)), 1, "AAPL") for i in range(0, 20, 2)]
    )
    assert got == [(t, s) for t, _, s in expected]
    assert (hist.ticks, hist.judged, hist.rows_read) == (30, 30, 30)
    assert (hist.first_ms, hist.last_ms) == (ms(minute(1)), ms(minute(20)))


def test_a_file_far_ahead_waits_for_the_other_to_catch_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_mod, "CHUNK_ROWS", 4)
    late = bars(tmp_path / "late.parquet", [(minute(1000 + i), "NVDA", 5.0) for i in range(6)])
    early = bars(tmp_path / "early.csv", [(minute(i), "AAPL", 1.0) for i in range(9)])
    h = news(tmp_path / "n.csv", [(minute(3), "early news"), (minute(2000), "late news")])
    got = [label(e) for e in open_history([late, h, early], symbols=UNIVERSE)]
    assert got == sorted(got)
    assert [s for _, s in got] == ["AAPL"] * 3 + ["early news"] + ["AAPL"] * 6 + ["NVDA"] * 6 + [
        "late news"
    ]


def test_a_range_marks_warm_up_ticks_and_stops_at_its_end(tmp_path: Path) -> None:
    b = bars(tmp_path / "b.csv", [(minute(i), "AAPL", 1.0 + i) for i in range(10)])
    h = news(tmp_path / "n.csv", [(minute(i), f"n{i}") for i in range(10)])
    hist = open_history([b, h], symbols=UNIVERSE, start_ms=ms(minute(3)), end_ms=ms(minute(6)))
    evs = list(hist)
    assert [(label(e), getattr(e, "history", None)) for e in evs] == [
        ((ms(minute(1)), "AAPL"), True),
        ((ms(minute(2)), "AAPL"), True),
        ((ms(minute(3)), "AAPL"), False),
        ((ms(minute(3)), "n3"), None),  # headlines before the range are left out
        ((ms(minute(4)), "AAPL"), False),
        ((ms(minute(4)), "n4"), None),
        ((ms(minute(5)), "AAPL"), False),
        ((ms(minute(5)), "n5"), None),
    ]
    assert (hist.ticks, hist.judged, hist.headlines) == (5, 3, 3)
    assert (hist.first_ms, hist.last_ms) == (ms(minute(3)), ms(minute(5)))


# -- refusals in chunks ---------------------------------------------------------------------


def test_refusals_in_later_chunks_name_their_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_mod, "CHUNK_ROWS", 3)
    f = tmp_path / "t.csv"
    rows = [f"{minute(i).isoformat()},AAPL,{10 + i},9,11" for i in range(12)]
    rows[1] = "yesterday,AAPL,10,9,11"  # line 3, chunk 1
    rows[4] = f"{minute(4).isoformat()},AAPL,-2,9,11"  # line 6, chunk 2
    rows[7] = f"{minute(7).isoformat()},,10,9,11"  # line 9, chunk 3
    rows[8] = f"{minute(8).isoformat()},AAPL,10,12,11"  # line 10: crossed, the edge's
    rows[10] = f"{minute(10).isoformat()},XOM,10,9,11"  # line 12: ignored, not refused
    f.write_text("ts,symbol,price,bid,ask\n" + "\n".join(rows) + "\n")
    hist = open_history([f], symbols=UNIVERSE)
    assert len(list(hist)) == 7
    assert hist.refused == [
        f"{f}:line 3: cannot read its time 'yesterday' (ts: ISO 8601, e.g. 2026-03-16T13:31:00Z)",
        f"{f}:line 6: price '-2' is not a positive number",
        f"{f}:line 9: no symbol",
        f"{f}:line 10: {REASONS['bad_quote']}",
    ]
    assert hist.refused_count == 4 and hist.ignored == Counter({"XOM": 1})


def test_parquet_refusals_name_the_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_mod, "CHUNK_ROWS", 2)
    rows = [(minute(i), "AAPL", 1.0 + i) for i in range(6)]
    rows[3] = (minute(3), "AAPL", float("nan"))
    rows[4] = (minute(4), "AAPL", 0.0)
    f = bars(tmp_path / "b.parquet", rows)
    hist = open_history([f], symbols=UNIVERSE)
    assert len(list(hist)) == 4
    assert hist.refused == [
        f"{f}:row 4: close 'nan' is not a positive number",
        f"{f}:row 5: close '0.0' is not a positive number",
    ]


def test_only_the_first_refusals_are_kept_but_all_are_counted(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("ts,symbol,price\n" + "".join(f"bad{i},AAPL,1\n" for i in range(50)))
    hist = open_history([f], symbols=UNIVERSE)
    assert list(hist) == []
    assert hist.refused_count == 50 and len(hist.refused) == 20
    assert hist.refused[-1].startswith(f"{f}:line 21: cannot read its time 'bad19'")


# -- the edge, as arrays --------------------------------------------------------------------

NOW = 1_773_669_600_000
NAN = float("nan")


def test_the_array_check_says_what_tick_reason_says_row_for_row() -> None:
    rows: list[tuple[str, int, float, float | None, float | None]] = [
        ("AAPL", NOW, 10.0, None, None),
        ("AAPL", NOW, NAN, None, None),
        ("AAPL", NOW, math.inf, 1.0, 2.0),
        ("MSFT", NOW, 0.0, None, None),
        ("MSFT", NOW, -3.0, 5.0, 1.0),  # non_positive wins over the crossed quote
        ("XOM", NOW, 10.0, None, None),
        ("", NOW, 10.0, None, None),
        ("NVDA", NOW + 5 * MIN, 10.0, None, None),  # at the tolerance
        ("NVDA", NOW + 5 * MIN + 1, 10.0, None, None),
        ("XOM", NOW + 10 * MIN, 10.0, None, None),  # unknown wins over future
        ("NVDA", NOW + 10 * MIN, 10.0, 9.0, 11.0),
        ("NVDA", NOW + 5 * MIN + 1, 10.0, 12.0, 11.0),  # future wins over the quote
        ("AAPL", NOW, 10.0, 12.0, 11.0),  # crossed
        ("AAPL", NOW, 10.0, 11.0, 11.0),  # locked: fine
        ("AAPL", NOW, 10.0, 0.0, None),
        ("AAPL", NOW, 10.0, None, -1.0),
        ("AAPL", NOW, 10.0, math.inf, None),
        ("AAPL", NOW, 10.0, 9.0, None),
        ("MSFT", NOW, 1e-9, None, 11.0),
    ]
    one, many = EdgeFilter(UNIVERSE), EdgeFilter(UNIVERSE)
    expected = [one.tick_reason(Tick(s, t, p, bid=b, ask=a), NOW) for s, t, p, b, a in rows]
    got = many.tick_reasons(
        np.array([r[0] for r in rows], dtype=object),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows]),
        np.array([NAN if r[3] is None else r[3] for r in rows]),
        np.array([NAN if r[4] is None else r[4] for r in rows]),
        NOW,
    )
    assert got.tolist() == expected
    assert many.rejected == one.rejected
    assert set(one.rejected) == {"nan", "non_positive", "unknown_symbol", "future", "bad_quote"}
    # without quote columns, and on nothing at all
    assert EdgeFilter(UNIVERSE).tick_reasons(
        np.array(["AAPL", "XOM"], dtype=object), np.array([NOW, NOW]), np.array([1.0, 1.0]),
        None, None, NOW,
    ).tolist() == [None, "unknown_symbol"]  # fmt: skip
    empty = np.array([])
    assert len(EdgeFilter(UNIVERSE).tick_reasons(empty, empty, empty, None, None, NOW)) == 0


# -- rows to ticks --------------------------------------------------------------------------


def test_ticks_built_a_field_at_a_time_are_the_constructors_ticks() -> None:
    # make_ticks skips Tick.__init__: sound only while it does nothing but set the fields
    assert not hasattr(Tick, "__post_init__")
    df = pd.DataFrame({
        "ts": ["2026-03-16T13:30:00Z", "junk", "2026-03-16T13:31:00+00:00", "2026-03-16T13:32Z",
               "2026-03-16T13:33:00Z"],
        "symbol": [" AAPL ", "AAPL", None, "MSFT", ""],
        "price": ["10.5", "1", "2", "abc", "3"],
        "size": [1, None, 3, 4, 5],
        "bid": [10.0, NAN, 1.0, NAN, 1.0],
        "ask": [NAN, 11.0, 2.0, 12.0, 2.0],
    })  # fmt: skip
    ts, ticks = ticks_from_frame(df, "file")
    assert ts.tolist()[1] == -1
    assert ticks[1] is None and ticks[2] is None and ticks[4] is None  # no time, no symbol
    a, d = ticks[0], ticks[3]
    assert a == Tick("AAPL", ms(T0), 10.5, 1.0, 10.0, None, "trade", "file", False)
    assert type(a) is Tick and type(a.bid) is float and type(a.ts_ms) is int
    assert d is not None and d.symbol == "MSFT" and math.isnan(d.price) and d.ask == 12.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.price = 1.0  # type: ignore[misc]
    cols = tick_columns(df)
    fields = cols.fields(np.array([3, 0]), "s", [True, False])
    assert make_ticks(fields, 1) == [
        Tick("AAPL", ms(T0), 10.5, 1.0, 10.0, None, "trade", "s", False)
    ]
    del fields["history"]
    with pytest.raises(ValueError, match="Tick's fields"):
        make_ticks(fields)


def test_bars_become_ticks_at_their_end() -> None:
    df = pd.DataFrame({"ts": pd.to_datetime(["2026-03-16T13:30:00Z"]), "symbol": ["NVDA"],
                       "open": [1.0], "high": [1.0], "low": [1.0], "close": [2.0],
                       "volume": [7.0]})  # fmt: skip
    _, [t] = ticks_from_frame(df, "bars")
    assert t == Tick("NVDA", ms(T0) + MIN, 2.0, 7.0, None, None, "bar", "bars")
