"""Benchmark: what holding the primary lease costs the evaluator's commit, the price of failover.

The primary's commits run under WATCH of its lease (`daemon.store.leases.Lease.fenced`): WATCH,
GET and MULTI/EXEC instead of one MULTI/EXEC. This times the evaluator's commit of a realistic
batch (50 changed states, the checkpoint, 2 alerts, the XACK of 1,000 entries) both ways, on the
same embedded Redis in the same run, interleaved round by round so drift hits both alike. The
baseline is the unfenced commit (one instance alone on its Redis needs no fence, but gets one).

    .venv/bin/python bench/lease.py [--rounds 7] [--commits 400] [--json bench/results/lease.json]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import fig, write_json  # noqa: E402
from daemon.alerts import AlertEvent  # noqa: E402
from daemon.store import EmbeddedRedis, Keys, Lease, StateStore, connect  # noqa: E402


def alert(i: int) -> AlertEvent:
    return AlertEvent(rule="r", key=f"r{{n={i}}}", state="firing", seq=1, ts_ms=1_775_000_000_000,
                      severity="warning", summary=f"alert {i}", channels=("desk",),
                      labels={"n": str(i)})  # fmt: skip


async def main(rounds: int, commits: int, json_path: Path | None) -> None:
    with tempfile.TemporaryDirectory() as d:
        server = EmbeddedRedis(Path(d), persist=False)
        server.start()
        redis = connect(server.url)
        try:
            keys = Keys("bench")
            ids = [f"{1_775_000_000_000 + i}-0" for i in range(1000)]
            states = {f"r{{n={i}}}": '{"state":"firing","seq":1}' for i in range(50)}
            checkpoint = {"t": "1775000000000", "clock": "1775000000000"}
            batch = [alert(i) for i in range(2)]
            plain = StateStore(redis, keys, maxlen=10_000)
            fenced = StateStore(redis, keys, maxlen=10_000)
            fenced.lease = Lease(redis, keys.lease("primary"), "bench", 60_000)
            assert await fenced.lease.take()

            async def timed(store: StateStore) -> float:
                t0 = time.perf_counter()
                for _ in range(commits):
                    await store.commit(states=states, checkpoint=checkpoint, alerts=batch,
                                       acks={keys.ticks: ids})  # fmt: skip
                return (time.perf_counter() - t0) / commits * 1e6

            await timed(plain)  # warm both paths (scripts, connections)
            await timed(fenced)
            us_plain, us_fenced = [], []
            for _ in range(rounds):
                us_plain.append(await timed(plain))
                us_fenced.append(await timed(fenced))
        finally:
            await redis.aclose()
            server.stop()
    p, f = statistics.median(us_plain), statistics.median(us_fenced)
    print(f"evaluator commit (50 states, checkpoint, 2 alerts, XACK of 1,000), {rounds} rounds of "
          f"{commits}:")  # fmt: skip
    print(f"  one MULTI/EXEC (baseline)        median {p:7.1f} µs")
    print(f"  under the lease (WATCH, GET)     median {f:7.1f} µs   {f / p:.2f}x")
    print(f"  per 1,000-tick batch: +{f - p:.0f} µs, {(f - p) / 1000:.3f} µs per tick")
    if json_path is not None:
        figures = [
            fig("evaluator commit under the primary lease", f, "µs",
                baseline="the same commit unfenced", baseline_value=p),
            fig("lease cost per tick (1,000-tick batches)", (f - p) / 1000, "µs"),
        ]  # fmt: skip
        write_json(json_path, "lease", "the primary lease's cost on a commit", figures)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--commits", type=int, default=400)
    ap.add_argument("--json", type=Path, default=None, help="write headline figures here")
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.commits, args.json))
