"""Benchmark: a rule edit, from the file write to the new rules judging ticks, at 1,000 rules.

The daemon runs on its embedded Redis with 1,000 generated rules over 500 symbols (the rules
bench's mix, in files of 400 rules) and its file watcher on. Each round appends a comment-free
edit (a new rule) to one file and times until the evaluator has switched to the new plan
(`Evaluator.plan_applied`): watcher debounce, loading (only the edited file is parsed again),
compiling, and the batch boundary. The baseline, measured in the same run, is loading and
compiling the whole config cold.

    .venv/bin/python bench/reload.py [--rounds 7] [--json bench/results/reload.json]

Where the time goes (measured at 1,000 rules): parsing the edited file of 400 rules (~35 ms:
libyaml, then plain data with line marks), validating the rules in it that changed (the rest
reuse their objects: `RuleFileCache.reusable`), the cross-check of those rules, compiling the
plan (~18 ms), and the switch, which happens while the evaluator waits for ticks (it used to
wait for the blocked read to time out: up to 100 ms at Redis's `hz 10`).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import rules_scale as rs  # noqa: E402

from bench._common import fig, write_json  # noqa: E402
from daemon.app import Daemon, tune_gc_for_the_hot_path  # noqa: E402
from daemon.config import load_config  # noqa: E402

TARGET_MS = 250


async def main(rounds: int, json_path: Path | None = None) -> None:
    syms = rs.symbol_names(0, 500)
    with tempfile.TemporaryDirectory(prefix="tw-reload-") as d:
        path = rs.write_config(Path(d), syms, rs.make_rules(syms, 1000, rs.SEED))
        cold = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            load_config(path, env={}).compile()
            cold.append((time.perf_counter() - t0) * 1000)
        cfg = load_config(path, env={})
        cfg.settings.redis.data_dir = Path(d) / "var"
        daemon = Daemon(cfg, console=io.StringIO(), watch=True)
        await daemon.start()
        tune_gc_for_the_hot_path()  # as `tickwatch run` does once the daemon is up
        applied = []
        try:
            ev = daemon.evaluator
            assert ev is not None
            await asyncio.sleep(1.0)  # the watcher starts watching
            target = sorted((Path(d) / "rules").glob("*.yaml"))[0]
            for i in range(rounds):
                ev.plan_applied.clear()
                text = target.read_text()
                t0 = time.perf_counter()
                target.write_text(
                    text + f"- name: added-{i}\n  when: {{threshold: {{symbols: S000, "
                    f"above: {1000 + i}}}}}\n  channels: [console]\n"
                )
                await asyncio.wait_for(ev.plan_applied.wait(), 10)
                applied.append((time.perf_counter() - t0) * 1000)
                assert any(inst.rule == f"added-{i}" for inst in ev.plan.instances)
                await asyncio.sleep(0.3)
        finally:
            await daemon.stop()
    med = statistics.median(applied)
    print(f"1,000 rules, {rounds} rounds: edit of one file -> new plan judging")
    print(f"  file write -> applied   median {med:6.0f} ms   all {[round(x) for x in applied]}")
    print(f"  cold load + compile     median {statistics.median(cold):6.0f} ms   (baseline)")
    verdict = "PASS" if med <= TARGET_MS else "FAIL"
    print(f"  -> {med:.0f} ms vs {TARGET_MS} ms required: {verdict}")
    if json_path is not None:
        figures = [
            fig("rule edit -> applied, 1,000 rules (median)", med, "ms",
                baseline="cold load + compile", baseline_value=statistics.median(cold),
                goal=f"<= {TARGET_MS} ms", ok=med <= TARGET_MS),
            fig("rule edit -> applied, 1,000 rules (worst)", max(applied), "ms"),
        ]  # fmt: skip
        write_json(json_path, "reload", "hot reload of 1,000 rules", figures)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None, help="write headline figures here")
    args = ap.parse_args()
    asyncio.run(main(args.rounds, args.json))
