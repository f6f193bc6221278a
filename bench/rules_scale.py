"""Benchmark: the pure rules engine at scale (no Redis, one core), and how its cost scales.

The requirement: with 1,000 rules over 500 symbols, the engine sustains at least 100,000
ticks/s on one core, and the per-tick cost depends on the rules that reference the tick's
symbol, not on the total rule count. It is timed as the daemon runs it: `Driver.feed` on
batches of 1,000 ticks (the evaluator's batch), which groups the ticks of one event time into
one step and judges each rule reading them once, legs aligned (`--via engine`: one
`Engine.on_tick` per tick, each tick its own step, as before steps existed).

Everything is generated from a seed: a config directory (alerts.yaml listing the symbols, a
console channel, rule files with a realistic mix of thresholds with `clear`/`for`, percent
moves over 5m-1h windows, difference/ratio spreads, crossings, bands and `all:` combinations),
loaded with `load_config` and compiled exactly as the daemon does. Ticks are random walks,
one per symbol per second in shuffled order, built before the timed loop; the market is first
warmed with two hours of history so windows are in their steady state (full, trimming).

Tables: the requirement (1,000 rules x 500 symbols); (a) total rules x100 with the rules on
the ticked symbols unchanged (flat is the claim); (a') the same rule sets with ticks on all
their symbols (shows what more symbols' state does to the CPU caches); (b) total rules fixed,
rules per ticked symbol x16 (cost grows about linearly).

Rates are 1 / CPU time of this thread per tick ("one core"; wall clock is also shown for
the requirement). Machines here are shared and noisy, so each figure also comes as a ratio to
baselines timed on the same ticks in the same round (a bare loop doing one dict lookup and one
float compare per tick, and `Market.record` alone), and the cases of a table are timed
interleaved, round by round. Compare figures within one run.

    .venv/bin/python bench/rules_scale.py                    # everything (about 3 minutes)
    .venv/bin/python bench/rules_scale.py --no-scaling --profile   # requirement + cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import math
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import fig, write_json  # noqa: E402
from daemon.config import load_config  # noqa: E402
from daemon.events import Tick  # noqa: E402
from daemon.rules.compile import Plan  # noqa: E402
from daemon.rules.driver import Driver  # noqa: E402
from daemon.rules.evaluate import Engine  # noqa: E402
from daemon.rules.market import Market  # noqa: E402

SEED = 20260316
T0_MS = 1_773_667_800_000  # 2026-03-16 13:30 UTC (09:30 New York)
SEC = 1000
VOL = 0.0004  # per-second log-return sd: ~0.7% over 5 minutes, ~2.4% over an hour
WARM_TICKS = 500_000
RULES_PER_FILE = 400  # rule files stay far below the loader's 2 MB / 200k-node limits
#: kind → weight: mostly thresholds and moves, as traders write them
MIX = {"threshold": 30, "pct_move": 25, "spread": 15, "crosses": 15, "all": 10, "band": 5}
WINDOWS = ["5m", "10m", "15m", "30m", "1h"]


# --- generated configuration ------------------------------------------------------------------


def symbol_names(start: int, n: int, width: int = 3) -> list[str]:
    return [f"S{i:0{width}d}" for i in range(start, start + n)]


def start_prices(symbols: list[str], seed: int) -> dict[str, float]:
    """Deterministic per symbol, so a symbol's rules and ticks agree whichever config it is in."""
    return {s: round(math.exp(random.Random(f"{seed}:{s}").uniform(2.5, 6.5)), 2) for s in symbols}


def _r(x: float) -> float:
    return round(x, 4)


def _pct_move(rng: random.Random, sym: str, *, scale: float = 1.0) -> dict[str, Any]:
    window = rng.choice(WINDOWS)
    minutes = {"5m": 5, "10m": 10, "15m": 15, "30m": 30, "1h": 60}[window]
    typical = VOL * math.sqrt(minutes * 60) * 100  # one sd of the move, in %
    mag = _r(typical * rng.uniform(1.5, 3.0) * scale)
    direction = rng.choice(["up", "down", "either", "either"])
    return {"symbols": sym, "window": window, direction: mag, "clear": _r(mag / 2)}


def _threshold(rng: random.Random, sym: str, p0: float) -> dict[str, Any]:
    off = rng.uniform(0.003, 0.03)
    if rng.random() < 0.5:
        level = p0 * (1 + off)
        return {"symbols": sym, "above": _r(level), "clear": _r(level * 0.998)}
    level = p0 * (1 - off)
    return {"symbols": sym, "below": _r(level), "clear": _r(level * 1.002)}


def make_rule(
    rng: random.Random, kind: str, syms: list[str], p0: dict[str, float], name: str
) -> dict[str, Any]:
    """One rule of `kind` on `syms` (two symbols for a spread, else one)."""
    s = syms[0]
    rule: dict[str, Any] = {"name": name, "channels": ["console"]}
    if kind == "threshold":
        rule["when"] = {"threshold": _threshold(rng, s, p0[s])}
        rule["for"] = rng.choice(["0s", "30s", "1m", "5m"])
        rule["cooldown"] = "15m"
    elif kind == "pct_move":
        rule["when"] = {"pct_move": _pct_move(rng, s)}
        rule["cooldown"] = "30m"
    elif kind == "spread":
        a, b = syms
        mode = rng.choice(["difference", "ratio"])
        base = p0[a] - p0[b] if mode == "difference" else p0[a] / p0[b]
        width = abs(base) * rng.uniform(0.01, 0.04) + (0.01 if mode == "ratio" else 0.5)
        cond: dict[str, Any] = {"a": a, "b": b, "as": mode}
        if rng.random() < 0.5:
            cond.update(above=_r(base + width), clear=_r(base + width * 0.8))
        else:
            cond.update(below=_r(base - width), clear=_r(base - width * 0.8))
        rule["when"] = {"spread": cond}
        rule["for"] = rng.choice(["1m", "5m", "15m"])
        rule["cooldown"] = "1h"
        rule["labels"] = {"desk": "pairs"}
    elif kind == "crosses":
        level = p0[s] * (1 + rng.uniform(-0.02, 0.02))
        direction = rng.choice(["up", "down", "any"])
        rule["when"] = {"crosses": {"symbols": s, "level": _r(level), "direction": direction}}
        rule["cooldown"] = "10m"
    elif kind == "band":
        mid = p0[s] * (1 + rng.uniform(-0.01, 0.01))
        half = p0[s] * rng.uniform(0.01, 0.03)
        on = rng.choice(["outside", "enters", "exits"])
        rule["when"] = {
            "band": {"symbols": s, "lower": _r(mid - half), "upper": _r(mid + half), "on": on}
        }
        rule["cooldown"] = "15m"
    elif kind == "all":  # a sharp move while the price is beyond a level
        rule["when"] = {
            "all": [
                {"pct_move": _pct_move(rng, s, scale=0.7)},
                {"threshold": _threshold(rng, s, p0[s])},
            ]
        }
        rule["for"] = rng.choice(["0s", "1m"])
        rule["cooldown"] = "30m"
        rule["severity"] = "critical"
    else:
        raise ValueError(kind)
    return rule


def make_rules(
    symbols: list[str],
    n_rules: int,
    seed: int,
    prefix: str = "r",
    refs_per_symbol: int | None = None,
) -> list[dict[str, Any]]:
    """`n_rules` rules whose symbol references are spread evenly over `symbols`.

    Every symbol is referenced by the same number of rules (give or take one), or by exactly
    `refs_per_symbol` when given (then only as many of `symbols` are used as that needs).
    """
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=n_rules)
    refs = n_rules + kinds.count("spread")
    if refs_per_symbol is not None:
        n_syms = math.ceil(refs / refs_per_symbol)
        if n_syms > len(symbols):
            raise ValueError(f"{refs_per_symbol}/symbol needs {n_syms} symbols")
        pool = [s for s in symbols[:n_syms] for _ in range(refs_per_symbol)]
    else:
        pool = [symbols[i % len(symbols)] for i in range(max(refs, len(symbols)))]
    rng.shuffle(pool)
    p0 = start_prices(symbols, SEED)
    rules = []
    for i, kind in enumerate(kinds):
        syms = [pool.pop()]
        if kind == "spread":
            j = next((j for j in range(len(pool) - 1, -1, -1) if pool[j] != syms[0]), None)
            if j is None:  # only copies of one symbol left: make it a threshold
                kind = "threshold"
            else:
                syms.append(pool.pop(j))
        rules.append(make_rule(rng, kind, syms, p0, f"{prefix}{i:05d}-{kind.replace('_', '-')}"))
    return rules


def write_config(d: Path, symbols: list[str], rules: list[dict[str, Any]]) -> Path:
    (d / "rules").mkdir(parents=True, exist_ok=True)
    alerts = {
        "symbols": symbols,
        "channels": {"console": {"type": "console"}},
        "include": ["rules/*.yaml"],
    }
    (d / "alerts.yaml").write_text(yaml.safe_dump(alerts, sort_keys=False))
    for f, i in enumerate(range(0, len(rules), RULES_PER_FILE)):
        body = yaml.safe_dump({"rules": rules[i : i + RULES_PER_FILE]}, sort_keys=False)
        (d / "rules" / f"bench{f:03d}.yaml").write_text(body)
    return d / "alerts.yaml"


def build_plan(symbols: list[str], rules: list[dict[str, Any]]) -> Plan:
    with tempfile.TemporaryDirectory(prefix="tw-bench-") as d:
        cfg = load_config(write_config(Path(d), symbols, rules), env={})
    assert len(cfg.rules) == len(rules)
    return cfg.compile()


# --- ticks --------------------------------------------------------------------------------------


class Walk:
    """Random-walk prices for `symbols`, one tick per symbol per step, in shuffled order."""

    def __init__(self, symbols: list[str], seed: int, t0_ms: int = T0_MS):
        self.symbols = list(symbols)
        self.prices = start_prices(symbols, SEED)
        self.rng = random.Random(seed)
        self.now_ms = t0_ms

    def steps(self, n_steps: int, step_ms: int = SEC) -> Iterator[Tick]:
        rng, prices, syms = self.rng, self.prices, self.symbols
        gauss, sd = rng.gauss, VOL * math.sqrt(step_ms / SEC)
        for _ in range(n_steps):
            rng.shuffle(syms)
            ts = self.now_ms
            for s in syms:
                p = prices[s] = prices[s] * math.exp(gauss(0.0, sd))
                yield Tick(s, ts, round(p, 4), 100.0, kind="trade", source="bench")
            self.now_ms += step_ms

    def ticks(self, n: int) -> list[Tick]:
        """The next `n` ticks at one-second spacing per symbol (whole steps, so about n)."""
        return list(self.steps(max(1, round(n / len(self.symbols)))))


# --- timing -------------------------------------------------------------------------------------


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(CPU, wall) µs per item for one call of `fn` over `n` items (GC on, as in the daemon).

    CPU time of this thread is what "on one core" means, and it is much less disturbed than
    wall time when other processes compete for the machine's cores. Each call starts with the
    young GC generations empty (a full collection would take longer than the call itself).
    """
    gc.collect(1)
    c0, w0 = time.thread_time(), time.perf_counter()
    fn()
    return (time.thread_time() - c0) / n * 1e6, (time.perf_counter() - w0) / n * 1e6


def bare_loop(ticks: list[Tick], levels: dict[str, float]) -> Callable[[], object]:
    """Baseline: per tick, one dict lookup and one float compare."""

    def run() -> int:
        hits = 0
        get = levels.get
        for t in ticks:
            lvl = get(t.symbol)
            if lvl is not None and t.price > lvl:
                hits += 1
        return hits

    return run


def record_loop(market: Market, ticks: list[Tick]) -> Callable[[], object]:
    """Baseline: `Market.record` alone, the bookkeeping every tick pays before any rule runs."""

    def run() -> None:
        record = market.record
        for t in ticks:
            record(t)

    return run


#: How the engine is driven: "driver" (the daemon's way) or "engine" (one on_tick per tick).
VIA = {"how": "driver"}
BATCH = 1000


def engine_loop(engine: Engine, ticks: list[Tick], alerts: list[float]) -> Callable[[], object]:
    def by_tick() -> None:
        on_tick = engine.on_tick
        n = 0
        for t in ticks:
            out = on_tick(t)
            if out:
                n += len(out)
        alerts.append(n)

    def by_batch() -> None:
        feed = Driver.around(engine, reminders_after_ms=0).feed
        n = 0
        for i in range(0, len(ticks), BATCH):
            n += len(feed(ticks[i : i + BATCH]))
        alerts.append(n)

    return by_batch if VIA["how"] == "driver" else by_tick


@dataclass
class Case:
    """One compiled rule set: its engine, and a shadow market fed the same ticks (baseline)."""

    label: str
    n_rules: int
    ticked: int
    plan: Plan
    engine: Engine
    shadow: Market
    refs: float  # instances indexed under a ticked symbol, mean
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def row(self) -> dict[str, Any]:
        med, s = statistics.median, self.samples
        return {
            "us": med(s["us"]),
            "best": min(s["us"]),
            "wall": med(s["wall"]),
            "rules_us": med(s["rules_us"]),
            "x_bare": med(s["x_bare"]),
            "x_rec": med(s["x_rec"]),
            "evals": med(s["evals"]),
            "alerts": med(s["alerts"]),
        }


@dataclass
class Feed:
    """A tick stream (random walks over `hot`), the cases that all receive it, and how many
    ticks each timed round has."""

    walk: Walk
    cases: list[Case]
    n_ticks: int


def make_case(label: str, symbols: list[str], rules: list[dict[str, Any]], hot: list[str]) -> Case:
    plan = build_plan(symbols, rules)
    refs = statistics.fmean(len(plan.by_symbol.get(s, ())) for s in hot)
    return Case(label, len(rules), len(hot), plan, Engine(plan), plan.new_market(), refs)


def make_feed(
    hot: list[str], cases: list[Case], warmup_s: int, n_ticks: int, seed: int = SEED
) -> Feed:
    """Warm every case with `warmup_s` of history, so that windows are full and trimming; the
    timed ticks that follow are at 1 s spacing. History is at 10 s spacing, coarser when there
    are so many symbols that it would pass WARM_TICKS."""
    step = max(10, math.ceil(warmup_s * len(hot) / WARM_TICKS))
    walk = Walk(hot, seed, T0_MS - warmup_s * SEC)
    for t in walk.steps(warmup_s // step, step * SEC):
        for c in cases:
            c.engine.warm(t)
            c.shadow.record(t)
    return Feed(walk, cases, n_ticks)


def measure(feeds: list[Feed], rounds: int, profile: str | None = None) -> None:
    """Time every case on fresh ticks each round, interleaved (so load changes hit all alike).

    Round 0 warms caches and the allocator and is not counted. With `profile`, one more round
    of the first case runs under cProfile (not counted either), into that file.
    """
    for r in range(rounds + 1):
        for f in feeds if r % 2 else feeds[::-1]:
            ticks = f.walk.ticks(f.n_ticks)
            n = len(ticks)
            levels = {s: p * 1.01 for s, p in f.walk.prices.items()}
            for c in f.cases:
                bare, _ = timed(bare_loop(ticks, levels), n)
                rec, _ = timed(record_loop(c.shadow, ticks), n)
                evals0, alerts = c.engine.evaluations, c.samples["alerts"]
                us, wall = timed(engine_loop(c.engine, ticks, alerts), n)
                if r == 0:
                    alerts.clear()
                    continue
                s = c.samples
                s["us"].append(us)
                s["wall"].append(wall)
                s["rules_us"].append(us - rec)
                s["x_bare"].append(us / bare)
                s["x_rec"].append(us / rec)
                s["evals"].append((c.engine.evaluations - evals0) / n)
    if profile:
        f = feeds[0]
        ticks = f.walk.ticks(f.n_ticks)
        prof = cProfile.Profile()
        prof.runcall(engine_loop(f.cases[0].engine, ticks, []))
        prof.dump_stats(profile)


def print_table(title: str, cases: list[Case]) -> None:
    print(f"\n{title}")
    print(
        f"  {'case':<30}{'rules':>7}{'ticked':>7}{'refs':>6}{'ticks/s':>9}{'best':>9}"
        f"{'us/tick':>8}{'rules us':>9}{'us/inst':>8}{'x bare':>7}{'x rec':>6}{'alerts':>7}"
    )
    for c in cases:
        r = c.row()
        print(
            f"  {c.label:<30}{c.n_rules:>7,}{c.ticked:>7,}{c.refs:>6.2f}{1e6 / r['us']:>9,.0f}"
            f"{1e6 / r['best']:>9,.0f}{r['us']:>8.2f}{r['rules_us']:>9.2f}"
            f"{r['rules_us'] / r['evals']:>8.2f}{r['x_bare']:>7.0f}{r['x_rec']:>6.1f}"
            f"{r['alerts']:>7.0f}"
        )


LEGEND = """\
  ticked: symbols the timed ticks go to (one tick per symbol per second); refs: instances
  indexed under a ticked symbol, mean (each is evaluated on every tick of its symbol).
  ticks/s: 1 / CPU time per tick, median of rounds (best: the fastest round). rules us: engine
  minus Market.record alone, per tick; us/inst: that per instance evaluated. x bare, x rec:
  engine time over a bare loop (one dict lookup + one float compare per tick) and over
  Market.record alone, on the same ticks in the same round (median of the per-round ratios).
  alerts: alert events told per round."""


# --- the runs -----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rules", type=int, default=1000, help="rules in the main run")
    ap.add_argument("--symbols", type=int, default=500, help="symbols in the main run")
    ap.add_argument("--ticks", type=int, default=100_000, help="ticks per timed round")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (medians are reported)")
    ap.add_argument("--warmup", type=int, default=7200, help="seconds of history warmed first")
    ap.add_argument("--target", type=float, default=100_000, help="required ticks/s")
    ap.add_argument("--no-scaling", action="store_true", help="only the main run")
    ap.add_argument(
        "--via",
        choices=("driver", "engine"),
        default="driver",
        help="driver: Driver.feed on batches of 1,000 (the daemon); engine: Engine.on_tick",
    )
    ap.add_argument(
        "--profile",
        metavar="FILE",
        nargs="?",
        const="rules_scale.prof",
        help="also cProfile the main run's last round into FILE; print the top",
    )
    ap.add_argument("--json", metavar="FILE", help="also write the headline figures here")
    args = ap.parse_args()
    VIA["how"] = args.via
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{args.ticks:,} ticks per round, {args.rounds} rounds, {args.warmup // 60} min of "
        f"history warmed first; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {load}"
    )

    # 1. The requirement: N rules over M symbols, ticks on every symbol.
    syms = symbol_names(0, args.symbols)
    main = make_case(
        f"{args.rules:,} rules x {args.symbols} symbols",
        syms,
        make_rules(syms, args.rules, SEED),
        syms,
    )
    measure([make_feed(syms, [main], args.warmup, args.ticks)], args.rounds, args.profile)
    how = "Driver.feed, batches of 1,000" if args.via == "driver" else "Engine.on_tick"
    print_table(f"requirement: {how} in-process, one core, Redis excluded", [main])
    print(LEGEND)
    r = main.row()
    rate = 1e6 / r["us"]
    verdict = "PASS" if rate >= args.target else "FAIL"
    print(
        f"  -> {rate:,.0f} ticks/s (median; wall clock {1e6 / r['wall']:,.0f}) vs "
        f"{args.target:,.0f} required: {verdict} ({rate / args.target:.2f}x)"
    )
    if args.profile:
        print(f"\ncProfile of the last round (written to {args.profile}), by own time:")
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(12)
    figures = [
        fig(f"engine, {args.rules:,} rules x {args.symbols} symbols, one core", rate, "ticks/s",
            baseline="bare loop (dict lookup + compare)", baseline_value=rate * r["x_bare"],
            goal=f">= {args.target:,.0f} ticks/s", ok=rate >= args.target),
        fig("same, against Market.record alone", rate, "ticks/s",
            baseline="Market.record alone", baseline_value=rate * r["x_rec"]),
    ]  # fmt: skip

    def write() -> None:
        if args.json:
            write_json(args.json, "rules_scale", "rules engine at scale, Redis excluded", figures)

    if args.no_scaling:
        return write()

    # 2a. Total rules x100, the rules on the ticked symbols unchanged. Rules come in blocks of
    # 50 symbols, each block generated from its own seed; every case gets the same ticks, on
    # block 0 only, so all that differs is how many rules there are on other symbols.
    block_syms = 50
    block_rules = max(1, round(block_syms * args.rules / args.symbols))
    cases, rules, syms, sizes = [], [], [], []
    for n_blocks in (1, 10, 100):
        for b in range(len(syms) // block_syms, n_blocks):
            bsyms = symbol_names(b * block_syms, block_syms, 4)
            syms += bsyms
            rules += make_rules(bsyms, block_rules, SEED + b, prefix=f"b{b:03d}-")
        label = f"{len(rules):,} rules, ticks on {block_syms}"
        sizes.append(len(syms))
        cases.append(make_case(label, list(syms), list(rules), syms[:block_syms]))
    measure([make_feed(syms[:block_syms], cases, args.warmup, args.ticks)], args.rounds)
    print_table(
        "scaling (a): total rules x100, same rules on the ticked symbols (flat is the claim)", cases
    )
    lo, hi = cases[0].row(), cases[-1].row()
    print(
        f"  -> {cases[-1].n_rules:,} vs {cases[0].n_rules:,} rules: {hi['us'] / lo['us']:.2f}x "
        f"the time per tick ({hi['x_bare'] / lo['x_bare']:.2f}x relative to the bare loop)"
    )
    figures.append(
        fig(f"time per tick, {cases[-1].n_rules:,} rules (same rules on the ticked symbols)",
            hi["us"], "us", baseline=f"{cases[0].n_rules:,} rules", baseline_value=lo["us"],
            goal="flat (about 1x)")
    )  # fmt: skip

    # 2a'. The same three rule sets, now with ticks on all their symbols (x100 as well): the
    # rules per tick are the same, but more symbols' state competes for the CPU caches.
    feeds = []
    for c, size in zip(cases, sizes, strict=True):
        hot = syms[:size]
        label = f"{c.n_rules:,} rules, ticks on {len(hot):,}"
        refs = statistics.fmean(len(c.plan.by_symbol.get(s, ())) for s in hot)
        case = Case(label, c.n_rules, len(hot), c.plan, Engine(c.plan), c.plan.new_market(), refs)
        feeds.append(make_feed(hot, [case], args.warmup, args.ticks))
    measure(feeds, args.rounds)
    cases = [f.cases[0] for f in feeds]
    print_table("scaling (a'): the same rule sets, ticks on every symbol (caches)", cases)
    lo, hi = cases[0].row(), cases[-1].row()
    print(
        f"  -> {cases[-1].ticked:,} vs {cases[0].ticked:,} ticked symbols: "
        f"{hi['us'] / lo['us']:.2f}x the time per tick"
    )

    # 2b. Total rules fixed, rules per ticked symbol x16: the cost should grow about linearly.
    pool = symbol_names(0, 2 * args.rules, 4)
    feeds = []
    for k in (1, 4, 16):
        rules = make_rules(pool, args.rules, SEED, refs_per_symbol=k)
        used = sorted({s for r in rules for s in _rule_symbols(r)})
        case = make_case(f"{args.rules:,} rules, {k} per symbol", used, rules, used)
        # as many instance evaluations per round in each case: ticks / k
        feeds.append(make_feed(used, [case], args.warmup, args.ticks // k))
    cases = [f.cases[0] for f in feeds]
    measure(feeds, args.rounds)
    print_table(
        "scaling (b): total rules fixed, rules per ticked symbol x16 (linear is expected)", cases
    )
    (c1, r1), (c4, r4), (c16, r16) = ((c, c.row()) for c in cases)
    slope = (r16["rules_us"] - r1["rules_us"]) / (c16.refs - c1.refs)
    guess = r1["rules_us"] + slope * (c4.refs - c1.refs)
    print(
        f"  -> {slope:.2f} us per extra instance on the ticked symbol; a straight line through "
        f"{c1.refs:.0f} and {c16.refs:.0f} predicts {guess:.2f} us at {c4.refs:.0f}, measured "
        f"{r4['rules_us']:.2f}"
    )
    figures.append(
        fig(f"rules us/tick at {c4.refs:.0f} rules per symbol", r4["rules_us"], "us",
            baseline="straight line through 1 and 16", baseline_value=guess, goal="linear")
    )  # fmt: skip
    write()


def _rule_symbols(rule: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def walk(w: dict[str, Any]) -> None:
        for kind, body in w.items():
            if kind in ("all", "any"):
                for c in body:
                    walk(c)
            elif kind == "spread":
                out.extend([body["a"], body["b"]])
            else:
                out.append(body["symbols"])

    walk(rule["when"])
    return out


if __name__ == "__main__":
    main()
