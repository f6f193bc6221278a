"""Benchmark: `tickwatch backtest` on a year of 1-minute bars, against vectorized pandas.

One year of regular-session minute bars for the shipped config's 9 symbols (about 880,000
bars, a random walk with a few jumps, written once as Parquet) goes through the shipped rules
the way `tickwatch backtest` runs them: the chunked reader, the daemon's edge, the driver on
simulated time, the delivery decisions. It runs in a child process so its peak RSS is its own.
The baseline, in the same run: pandas reading the same file and computing the same two
price rules vectorized (each mag7 name's 30-minute move beyond ±3%, the XMAG-MAGS YTD return
spread below 8), which is what a quant would write by hand, with none of the lifecycle.

Goals (issue 13): at most 10 s on one core, RSS under 500 MB.

    .venv/bin/python bench/backtest.py [--days 252] [--json bench/results/backtest.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import fig, write_json  # noqa: E402

TARGET_S = 10.0
TARGET_RSS_MB = 500
SYMBOLS = ["XMAG", "MAGS", "AAPL", "MSFT", "GOOGL", "AMZN", "META", "NVDA", "TSLA"]
MAG7 = SYMBOLS[2:]


def make_year(path: Path, days: int, seed: int = 7) -> int:
    """Minute bars for `days` NYSE sessions of 2025 (bars stamped at their start)."""
    from daemon.rules.sessions import nyse

    cal = nyse()
    sessions = []
    day = dt.date(2025, 1, 2)
    while len(sessions) < days:
        hours = cal.regular_hours(day)
        if hours is not None:
            sessions.append(hours[0])
        day += dt.timedelta(days=1)
    rng = np.random.default_rng(seed)
    minute = np.arange(390) * 60_000
    ts = (np.array(sessions)[:, None] + minute[None, :]).ravel()
    frames = []
    start = {"XMAG": 25.0, "MAGS": 60.0}
    for sym in SYMBOLS:
        steps = rng.normal(0, 0.0008, len(ts))
        jumps = rng.random(len(ts)) < 0.0004  # a few sharp moves a month
        steps[jumps] += rng.choice([-0.04, 0.04], jumps.sum())
        price = start.get(sym, 200.0) * np.exp(np.cumsum(steps))
        frames.append(pd.DataFrame({"ts": ts, "symbol": sym, "close": price}))
    df = pd.concat(frames).sort_values(["ts", "symbol"], kind="stable")
    df["ts"] = pd.to_datetime(df["ts"], unit="ms", utc=True)
    for col in ("open", "high", "low"):
        df[col] = df["close"]
    df["volume"] = 1000.0
    # the 2024 closes, for the YTD anchors: one bar on Dec 31 2024, 15:59 New York
    anchor = pd.DataFrame({"ts": pd.Timestamp("2024-12-31T20:59:00Z"), "symbol": SYMBOLS,
                           "close": [start.get(s, 200.0) for s in SYMBOLS]})  # fmt: skip
    for col in ("open", "high", "low"):
        anchor[col] = anchor["close"]
    anchor["volume"] = 1000.0
    out = pd.concat([anchor, df], ignore_index=True)
    out.to_parquet(path, index=False)
    return len(out)


def pandas_baseline(path: Path) -> tuple[float, int]:
    """The same two price rules, vectorized: seconds, and how many crossings it found."""
    t0 = time.perf_counter()
    df = pd.read_parquet(path, columns=["ts", "symbol", "close"])
    wide = df.pivot_table(index="ts", columns="symbol", values="close")
    found = 0
    moved = wide[MAG7].pct_change(30, fill_method=None) * 100  # 30 bars of 1 minute
    beyond = moved.abs() >= 3.0
    found += int((beyond & ~beyond.shift(1, fill_value=False)).sum().sum())
    year_start = wide.iloc[0]
    ytd = (wide / year_start - 1) * 100
    spread = ytd["XMAG"] - ytd["MAGS"]
    below = spread < 8.0
    found += int((below & ~below.shift(1, fill_value=False)).sum())
    return time.perf_counter() - t0, found


CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from daemon.backtest.data import open_history
from daemon.backtest.run import run_backtest
from daemon.config import load_config
cfg = load_config({config!r}, env={{}})
t0, c0 = time.perf_counter(), time.process_time()
h = open_history([Path({path!r})], symbols=cfg.universe,
                 start_ms={start_ms})
r = run_backtest(cfg, h)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"wall": wall, "cpu": cpu, "rss_mb": rss, "ticks": r.ticks,
                   "alerts": len(r.alerts), "messages": len(r.messages)}}))
"""


def run_child(path: Path) -> dict[str, float]:
    start = int(pd.Timestamp("2025-01-02", tz="America/New_York").timestamp() * 1000)
    code = CHILD.format(root=str(ROOT), config=str(ROOT / "alerts.yaml"), path=str(path),
                        start_ms=start)  # fmt: skip
    # one core, as the goal says: the child is pinned to CPU 0 where the OS allows it
    pin = ["taskset", "-c", "0"] if _has("taskset") else []
    out = subprocess.run([*pin, sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _has(cmd: str) -> bool:
    from shutil import which

    return which(cmd) is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=252)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tw-backtest-") as d:
        path = Path(d) / "year.parquet"
        bars = make_year(path, args.days)
        print(f"backtest bench: {bars:,} one-minute bars ({args.days} sessions x 9 symbols), "
              f"the shipped rules")  # fmt: skip
        runs = [run_child(path) for _ in range(args.rounds)]
        base = [pandas_baseline(path) for _ in range(3)]
    best = min(runs, key=lambda r: r["wall"])
    pd_s = min(b[0] for b in base)
    rate = bars / best["wall"]
    print(f"  tickwatch backtest   {best['wall']:6.2f} s wall, {best['cpu']:6.2f} s CPU, "
          f"{rate:,.0f} bars/s, peak RSS {best['rss_mb']:.0f} MB; "
          f"{best['alerts']:.0f} alerts, {best['messages']:.0f} messages")  # fmt: skip
    print(f"  pandas, vectorized   {pd_s:6.2f} s ({base[0][1]} crossings of the two price rules;"
          " no lifecycle, routing or edge)")  # fmt: skip
    ok_time, ok_rss = best["wall"] <= TARGET_S, best["rss_mb"] < TARGET_RSS_MB
    print(f"  -> {best['wall'] / pd_s:.1f}x the pandas time; {best['wall']:.1f} s vs "
          f"{TARGET_S:g} s: {'PASS' if ok_time else 'FAIL'}; RSS {best['rss_mb']:.0f} MB vs "
          f"{TARGET_RSS_MB} MB: {'PASS' if ok_rss else 'FAIL'}")  # fmt: skip
    if args.json:
        wall = fig("backtest of a year of bars, wall", best["wall"], "s",
                   baseline="pandas, vectorized", baseline_value=pd_s,
                   goal=f"<= {TARGET_S:g} s", ok=ok_time)  # fmt: skip
        rss = fig("backtest peak RSS", best["rss_mb"], "MB", goal=f"< {TARGET_RSS_MB} MB",
                  ok=ok_rss)  # fmt: skip
        write_json(args.json, "backtest", "a year of 1-minute bars, the shipped rules", [wall, rss])


if __name__ == "__main__":
    main()
