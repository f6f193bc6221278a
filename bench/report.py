"""`make bench`'s last step: one table of every bench's headline figures and baselines.

Reads the files the benches wrote with `--json` (bench/results/*.json, see bench/_common.py),
prints one table (each figure next to the baseline measured in the same run, the ratio, and the
goal with PASS/FAIL where the bench has one), writes them all to `bench/results.json`, and plots
every latency series as percentile curves into `bench/latency.png`.

    .venv/bin/python bench/report.py                              # bench/results/*.json
    .venv/bin/python bench/report.py DIR --out FILE --png FILE
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: the order `make bench` runs them in; any other file comes after, by name
ORDER = ("pipeline", "rules_scale", "feed", "delivery", "e2e")


def load(d: Path) -> list[dict[str, Any]]:
    docs = []
    for p in sorted(d.glob("*.json")):
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            print(f"report: skipping {p}: {e}", file=sys.stderr)
            continue
        if isinstance(doc, dict) and "bench" in doc and "figures" in doc:
            docs.append(doc)  # (not a combined results.json written here before)
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(docs, key=lambda doc: (rank.get(doc.get("bench", ""), len(ORDER)), doc["bench"]))


def _num(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if unit == "ticks/s" or abs(x) >= 1000:
        text = f"{x:,.0f}"
    elif abs(x) >= 100:
        text = f"{x:.0f}"
    else:
        text = f"{x:.2f}"
    return f"{text} {unit}".strip()


def rows(docs: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for doc in docs:
        for f in doc.get("figures", []):
            base = ""
            if f.get("baseline"):
                base = f"{f['baseline']}: {_num(f.get('baseline_value'), f.get('unit', ''))}"
            verdict = {True: "PASS", False: "FAIL", None: ""}[f.get("ok")]
            out.append(
                {
                    "bench": doc["bench"],
                    "figure": f["name"],
                    "value": _num(f["value"], f.get("unit", "")),
                    "baseline": base,
                    "ratio": f"{f['ratio']:.2f}x" if f.get("ratio") is not None else "",
                    "goal": f"{f['goal']} {verdict}".strip() if f.get("goal") else verdict,
                }
            )
    return out


def print_table(table: list[dict[str, str]], docs: list[dict[str, Any]]) -> None:
    cols = ("bench", "figure", "value", "ratio", "baseline", "goal")
    heads = {
        "bench": "bench",
        "figure": "figure",
        "value": "value",
        "ratio": "x base",
        "baseline": "baseline (same run)",
        "goal": "goal",
    }
    width = {c: max([len(heads[c])] + [len(r[c]) for r in table]) for c in cols}
    right = {"value", "ratio"}

    def line(r: dict[str, str]) -> str:
        cells = [r[c].rjust(width[c]) if c in right else r[c].ljust(width[c]) for c in cols]
        return "  ".join(cells).rstrip()

    hosts = {(d["host"].get("cpus"), d["host"].get("python")) for d in docs if "host" in d}
    stamps = sorted(d.get("when", "?")[:16] for d in docs)
    when = stamps[0] if stamps[0] == stamps[-1] else f"{stamps[0]} to {stamps[-1][11:]}"
    print(
        f"\n== all benches: {len(docs)} file(s), {when} UTC; "
        + "; ".join(f"{c} CPUs, Python {p}" for c, p in sorted(hosts, key=str))
        + " =="
    )
    print(line(heads))
    print("  ".join("-" * width[c] for c in cols))
    last = ""
    for r in table:
        shown = dict(r, bench=r["bench"] if r["bench"] != last else "")
        last = r["bench"]
        print(line(shown))
    verdicts = [r["goal"].rsplit(" ", 1)[-1] for r in table if r["goal"]]
    print(
        f"goals: {verdicts.count('PASS')} PASS, {verdicts.count('FAIL')} FAIL; figures from "
        "shared, noisy machines: read each against its baseline"
    )


def _nines(p: str) -> float:
    """Percentile → x position: 50 → 0.3, 90 → 1, 99 → 2, 99.9 → 3 ("number of nines")."""
    return -math.log10(1 - float(p) / 100)


def plot(docs: list[dict[str, Any]], path: Path) -> bool:
    panels = [d for d in docs if d.get("latency")]
    if not panels:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, doc in zip(axes[0], panels, strict=True):
        for s in doc["latency"]:
            n = s.get("n") or 0
            pts = sorted(
                (_nines(k), v)
                for k, v in s["pcts"].items()
                if k != "max" and v > 0 and (not n or n * (1 - float(k) / 100) >= 1)
            )  # a percentile finer than 1/n is only the max: left out
            if not pts:
                continue
            label = s["label"] + (f" (n={s['n']:,})" if s.get("n") else "")
            style = "--" if s.get("baseline") else "-"
            ax.plot([x for x, _ in pts], [y for _, y in pts], style, marker="o", ms=3, label=label)
        if doc["bench"] == "e2e":
            ax.axhline(10, color="red", lw=0.8, ls=":", label="goal: p99 ≤ 10 ms at 1,000/s")
        ticks = [p for p in ("50", "90", "99", "99.9")]
        ax.set_xticks([_nines(p) for p in ticks], [f"p{p}" for p in ticks])
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(
            FuncFormatter(lambda y, _: f"{y:g}" if f"{y:.0e}"[0] in "25" else "")
        )
        ax.set_ylabel("ms")
        ax.set_title(f"{doc['bench']}: {doc.get('title', '')}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("latency percentiles (dashed: the baseline measured in the same run)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("dir", nargs="?", type=Path, default=HERE / "results")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    ap.add_argument("--png", type=Path, default=HERE / "latency.png")
    args = ap.parse_args()
    docs = load(args.dir)
    if not docs:
        print(f"report: no bench results in {args.dir}", file=sys.stderr)
        return 1
    table = rows(docs)
    print_table(table, docs)
    doc = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "table": table,
        "benches": {d["bench"]: d for d in docs},
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    wrote = [str(args.out)]
    if plot(docs, args.png):
        wrote.append(str(args.png))
    print("wrote " + " and ".join(wrote))
    return 0


if __name__ == "__main__":
    sys.exit(main())
