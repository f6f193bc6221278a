"""The backtest's terminal table (rich): one row per rule, how loud it would have been.

A trader reads this first, so it says in one screen what the other outputs say at length: how
often each rule fired and cleared, how long it stayed firing, how often it flapped, how many
alerts a week that is, and what each channel would actually have received once the route tree
grouped, inhibited, silenced and held messages for quiet hours. Every rule in the plan gets a
row, including the ones that never fired: "it would have been silent" is an answer too.

The small formatting helpers (`human_duration`, `ny_time`, `held_summary`, ...) live here and
are reused by the HTML report, so the terminal and the report say the same thing the same way.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from daemon.alerts import NEW_YORK
from daemon.backtest.model import BacktestResult, RuleStats
from daemon.events import ms_to_dt

__all__ = [
    "build_table",
    "channels_of",
    "footer_lines",
    "header_lines",
    "held_by_channel",
    "held_summary",
    "human_duration",
    "ignored_summary",
    "ny_time",
    "outcome_word",
    "plural",
    "range_text",
    "render_table",
    "rule_names",
    "stats_by_rule",
]

_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


def human_duration(ms: int) -> str:
    """`3h 20m`: the two largest units, rounded down (a trader wants the size, not the
    seconds). Under a minute it says seconds; zero is `0m`."""
    if ms <= 0:
        return "0m"
    if ms < 1_000:
        return "<1s"
    parts: list[str] = []
    rest = ms
    for unit, size in _UNITS:
        if rest >= size or parts:
            n, rest = divmod(rest, size)
            parts.append(f"{n}{unit}")
        if len(parts) == 2:
            break
    if parts[-1].startswith("0") and len(parts) == 2:
        parts.pop()  # "2h 0m" reads better as "2h"
    return " ".join(parts)


def plural(n: int, word: str) -> str:
    """`1 flap`, `2 flaps`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def ny_time(ms: int, *, seconds: bool = False) -> str:
    """Event time in New York (how traders read times), with the zone's abbreviation so EST
    and EDT are never confused: `2026-03-16 09:30 EDT`."""
    fmt = "%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z"
    return ms_to_dt(ms).astimezone(NEW_YORK).strftime(fmt)


def range_text(result: BacktestResult) -> str:
    """`2026-03-16 09:30 EDT → 2026-04-14 16:00 EDT (29d 6h)`."""
    span = human_duration(result.end_ms - result.start_ms)
    return f"{ny_time(result.start_ms)} → {ny_time(result.end_ms)} ({span})"


def ignored_summary(ignored: Mapping[str, int], top: int = 5) -> str:
    """`3 symbols, 1,204 rows: FOO 1,000, BAR 200, BAZ 4`: the largest first, the tail
    counted, so a typo'd symbol in a rule file stands out without flooding the header."""
    if not ignored:
        return ""
    items = sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{sym} {n:,}" for sym, n in items[:top])
    more = f", +{len(items) - top} more" if len(items) > top else ""
    rows = sum(ignored.values())
    word = "symbol" if len(items) == 1 else "symbols"
    return f"{len(items)} {word}, {rows:,} rows: {shown}{more}"


def outcome_word(outcome: str) -> str:
    """`not_told` -> `not told`: outcomes as prose."""
    return outcome.replace("_", " ")


def held_summary(held: Mapping[str, Counter[str]]) -> str:
    """`quiet 3, silenced 1`: the transitions held back for one rule, summed over channels
    (the per-channel split is in the footer and in the report)."""
    total: Counter[str] = Counter()
    for per_outcome in held.values():
        total.update(per_outcome)
    return ", ".join(
        f"{outcome_word(o)} {n}" for o, n in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def channels_of(result: BacktestResult) -> list[str]:
    """The channels that got at least one message, sorted: the table's channel columns."""
    return sorted({m.channel for m in result.messages})


def held_by_channel(result: BacktestResult) -> dict[str, Counter[str]]:
    """Channel -> outcome -> transitions held back, over all rules."""
    out: dict[str, Counter[str]] = {}
    for s in result.suppressed:
        out.setdefault(s.channel, Counter())[s.outcome] += 1
    return out


def rule_names(result: BacktestResult) -> list[str]:
    """Every rule of the result: the plan's in config order, then any that only appears in
    the alerts or the series (so nothing the runner recorded goes unshown)."""
    out = list(dict.fromkeys(result.rules))
    seen = set(out)
    for name in [a.rule for a in result.alerts] + [s.rule for s in result.series]:
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def stats_by_rule(result: BacktestResult) -> dict[str, RuleStats]:
    """`result.stats()` keyed by rule, for every rule of `rule_names` (a rule seen only in the
    series gets a zero row, so it is never missing from the table or the report)."""
    stats = {st.rule: st for st in result.stats()}
    return {r: stats.get(r) or RuleStats(r, 0, 0, 0, 0, 0, 0.0, {}, {}) for r in rule_names(result)}


def header_lines(result: BacktestResult) -> list[str]:
    """The lines above the table: what was read, from where, over which range."""
    lines = [
        f"Data: {range_text(result)}, New York time",
        f"Read: {result.ticks:,} ticks, {result.headlines:,} headlines"
        f" · {len(result.alerts):,} alert transitions, {len(result.messages):,} messages",
    ]
    if result.ignored:
        lines.append(f"Ignored (no rule reads them): {ignored_summary(result.ignored)}")
    if result.inputs:
        lines.append("Inputs: " + ", ".join(result.inputs))
    return lines


def _row(st: RuleStats, channels: Iterable[str]) -> list[str]:
    return [
        st.rule,
        str(st.fires),
        str(st.clears),
        human_duration(st.firing_ms),
        human_duration(st.longest_ms),
        str(st.flaps),
        f"{st.per_week:.1f}",
        *(str(st.messages.get(c, 0)) for c in channels),
        held_summary(st.suppressed),
    ]


def _fit(natural: list[int], stages: list[tuple[int, int]], available: int) -> list[int]:
    """Column widths that fit `available` cells: shrink the columns in `stages` order, each
    down to its floor, until the table fits (or nothing is left to give: rich then crops).
    Two cells per gap (the box's divider and one of padding)."""
    widths = list(natural)
    excess = sum(widths) + 2 * (len(widths) - 1) - available
    for i, floor in stages:
        if excess <= 0:
            break
        cut = min(excess, widths[i] - floor)
        if cut > 0:
            widths[i] -= cut
            excess -= cut
    return widths


def _break_name(name: str, width: int) -> str:
    """`slack_desk` in 6 cells as `slack_` over `desk`: lines broken after separators, so a
    folded channel header stays readable (rich only breaks at spaces, else mid-word)."""
    lines = [""]
    for part in re.findall(r"[^_\-.]+[_\-.]*", name) or [name]:
        if lines[-1] and cell_len(lines[-1] + part) > width:
            lines.append(part)
        else:
            lines[-1] += part
    return "\n".join(lines)


def build_table(result: BacktestResult, width: int | None = None) -> Table:
    """The rich `Table` (for callers that lay it out with other renderables), sized for a
    terminal `width` cells wide (None: natural widths).

    rich's own shrinking takes from the widest wrappable column first, ignoring minimum
    widths, and crops what is left: on a 100-column terminal it squeezed the rule names and
    dropped the held column. So the widths are chosen here, in an order that keeps what is
    read first: the held column wraps first, then long rule names fold (down to 24
    characters, which keeps most whole), then the channel headers fold, and only then does a
    rule name go down to 12."""
    channels = channels_of(result)
    stats = stats_by_rule(result)
    headers = ["rule", "fires", "clears", "firing", "longest", "flaps", "/week", *channels, "held"]
    rows = [_row(st, channels) for st in stats.values()]
    natural = [
        max(cell_len(h), *(cell_len(r[i]) for r in rows)) if rows else cell_len(h)
        for i, h in enumerate(headers)
    ]
    held = len(headers) - 1
    if width is None:
        widths = natural
    else:
        words = [w for r in rows for w in r[held].split()]
        held_floor = min(natural[held], max([8, *(cell_len(w) + 1 for w in words)]))
        stages = [(held, held_floor), (0, min(natural[0], 24))]
        for i in range(7, held):
            digits = max(cell_len(r[i]) for r in rows) if rows else 1
            parts = re.findall(r"[^_\-.]+[_\-.]*", headers[i]) or [headers[i]]
            stages.append((i, max(digits, 4, *(cell_len(p) for p in parts))))
        stages += [(0, min(natural[0], 12)), (held, min(natural[held], 6))]
        widths = _fit(natural, stages, width)

    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        show_edge=False,
        header_style="bold",
    )
    for i, (h, w) in enumerate(zip(headers, widths, strict=True)):
        shrunk = w < natural[i]
        if i == 0:
            table.add_column(h, overflow="fold", width=w if shrunk else None, no_wrap=not shrunk)
        elif i == held:
            table.add_column(h, width=w if shrunk else None, no_wrap=not shrunk)
        elif i >= 7:  # a channel: its header breaks after `_`, `-`, `.` when it must
            header = _break_name(h, w) if shrunk else h
            table.add_column(header, justify="right", overflow="fold",
                             width=w if shrunk else None, no_wrap=True)  # fmt: skip
        else:
            table.add_column(h, justify="right", no_wrap=True)
    for st, row in zip(stats.values(), rows, strict=True):
        table.add_row(*row, style="dim" if st.fires == 0 and st.clears == 0 else None)
    return table


def footer_lines(result: BacktestResult, *, held_split: bool = True) -> list[str]:
    """Below the table: what the channel columns count, and (`held_split`) the held column
    split by channel."""
    lines = []
    if any(len(set(m.rules)) > 1 for m in result.messages):
        lines.append("A group message carrying several rules counts once in each rule's row.")
    held = held_by_channel(result)
    if held and held_split:
        parts = [f"{ch}: {held_summary({ch: c})}" for ch, c in sorted(held.items())]
        lines.append("Held by channel — " + " · ".join(parts))
    return lines


def render_table(result: BacktestResult, console: Console) -> None:
    """Print the header lines, the per-rule table and its footer to `console`."""
    for line in header_lines(result):
        console.print(Text(line), highlight=False)
    console.print(build_table(result, console.width))
    for line in footer_lines(result):
        console.print(Text(line, style="dim"), highlight=False)
