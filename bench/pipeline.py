"""Benchmark: sample replay → Redis → rules → outbox, against raw pipelined XADD in the same run.

Machines here are shared and noisy, so absolute rates mean little; the figure to read is the
ratio of the full pipeline to the raw redis-py pipelined XADD rate measured moments before on
the same embedded Redis server. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import fig, write_json  # noqa: E402
from daemon.config import load_config  # noqa: E402
from daemon.events import Headline, Tick  # noqa: E402
from daemon.rules.evaluate import Engine  # noqa: E402
from daemon.rules.runner import Evaluator  # noqa: E402
from daemon.sources.base import SourceContext  # noqa: E402
from daemon.sources.normalize import EdgeFilter  # noqa: E402
from daemon.sources.replay import ReplayConfig, ReplaySource, load_timeline  # noqa: E402
from daemon.store.connect import connect  # noqa: E402
from daemon.store.embedded import EmbeddedRedis  # noqa: E402
from daemon.store.keys import Keys  # noqa: E402
from daemon.store.state import StateStore  # noqa: E402
from daemon.store.streams import StreamStore  # noqa: E402

BATCH = 500


async def raw_xadd(redis: Redis, ticks: list[Tick], keys: Keys) -> float:
    """Baseline: plain pipelined XADD of the same entries, no checks, no rules."""
    t0 = time.perf_counter()
    for i in range(0, len(ticks), BATCH):
        pipe = redis.pipeline(transaction=False)
        for t in ticks[i : i + BATCH]:
            pipe.xadd(keys.ticks, t.to_fields())  # type: ignore[arg-type]
        await pipe.execute()
    return len(ticks) / (time.perf_counter() - t0)


async def full_pipeline(redis: Redis, keys: Keys, n_ticks: int) -> tuple[float, int]:
    """Replay source and evaluator running concurrently, until every tick is evaluated."""
    cfg = load_config(ROOT / "alerts.yaml", env={})
    plan = cfg.compile()
    store = StreamStore(redis, keys)
    ctx = SourceContext(store, EdgeFilter(cfg.universe), ROOT)
    source = ReplaySource(
        ReplayConfig(type="replay", name="bench", ticks=Path("data/sample/ticks.csv.gz"),
                     news=Path("data/sample/news.csv"), batch=BATCH),
        ctx,
    )  # fmt: skip
    evaluator = Evaluator(StreamStore(redis, keys), StateStore(redis, keys), plan, batch=1000)
    await evaluator.restore()
    t0 = time.perf_counter()
    ev_task = asyncio.create_task(evaluator.run())
    await source.run()
    while evaluator.stats.ticks < n_ticks:
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - t0
    ev_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ev_task
    return n_ticks / elapsed, await redis.xlen(keys.outbox)


def engine_only(ticks: list[Tick], news: list[Headline]) -> float:
    cfg = load_config(ROOT / "alerts.yaml", env={})
    engine = Engine(cfg.compile())
    t0 = time.perf_counter()
    for t in ticks:
        engine.on_tick(t)
    return len(ticks) / (time.perf_counter() - t0)


async def main(rounds: int, json_path: str | None = None) -> None:
    tl = load_timeline(ROOT / "data/sample/ticks.csv.gz", ROOT / "data/sample/news.csv", "b")
    universe = load_config(ROOT / "alerts.yaml", env={}).universe
    edge = EdgeFilter(universe)
    now = int(time.time() * 1000)
    ticks = [e for e in tl.events if isinstance(e, Tick) and edge.tick_reason(e, now) is None]
    news = [e for e in tl.events if isinstance(e, Headline)]
    with tempfile.TemporaryDirectory() as d, EmbeddedRedis(d, persist=False) as server:
        plain = Redis.from_url(server.url, decode_responses=True)  # redis-py as shipped
        ours = connect(server.url)  # what the daemon uses (hiredis command packing)
        raw, raw_fast, full, alerts = [], [], [], 0
        for r in range(rounds):
            await plain.flushdb()
            raw.append(await raw_xadd(plain, ticks, Keys(f"raw{r}")))
            raw_fast.append(await raw_xadd(ours, ticks, Keys(f"rawf{r}")))
            await plain.flushdb()
            rate, alerts = await full_pipeline(ours, Keys(f"full{r}"), len(ticks))
            full.append(rate)
        await plain.aclose()
        await ours.aclose()
    eng = statistics.median(engine_only(ticks, news) for _ in range(rounds))
    raw_m, fast_m, full_m = (statistics.median(x) for x in (raw, raw_fast, full))
    print(f"sample: {len(ticks):,} ticks, {len(news)} headlines, {alerts} alerts per run, "
          f"{rounds} rounds (medians)")  # fmt: skip
    rows = [
        ("raw redis-py pipelined XADD (baseline)", raw_m),
        ("raw pipelined XADD, hiredis packing", fast_m),
        ("replay -> Redis -> rules -> outbox", full_m),
        ("rules engine alone (no I/O)", eng),
    ]
    for name, rate in rows:
        print(f"  {name:<42} {rate:>10,.0f} ticks/s   {rate / raw_m:5.2f}x")
    if json_path:
        base = "raw redis-py pipelined XADD"
        figures = [fig(n, r, "ticks/s", baseline=base, baseline_value=raw_m) for n, r in rows[1:]]
        write_json(json_path, "pipeline", "sample replay → Redis → rules → outbox", figures)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also write the headline figures here")
    a = ap.parse_args()
    asyncio.run(main(a.rounds, a.json))
