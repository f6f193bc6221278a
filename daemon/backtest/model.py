"""What a backtest found, as plain data: what the runner fills and every output reads.

Kept free of I/O and of the runner so the table, the CSV/JSON files, the charts and the HTML
report each read one shape, and a test can build a result by hand.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from daemon.alerts import AlertEvent

__all__ = ["FLAP_MS", "BacktestResult", "Message", "RuleStats", "Series", "Suppressed"]

#: A firing this soon after the same alert resolved counts as a flap: the desk heard it end,
#: then start again.
FLAP_MS = 15 * 60_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS


@dataclass
class Series:
    """What one rule instance was judged on, sampled at most once per `every_ms` of event time
    (and at every transition), with its levels: what its chart draws."""

    rule: str
    key: str
    #: What the value is, for the chart's axis: "NVDA price", "spread XMAG - MAGS", ...
    label: str
    ts_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    #: The fire level and the clear level (hysteresis), when the condition has them.
    threshold: float | None = None
    clear: float | None = None
    comparison: str = ""
    #: What the chart must say so the line is not misread: a rule of several conditions is
    #: drawn by its first, which may cross its level while the rule stays quiet.
    note: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """One message a channel would have got: one alert, or a group or digest of several."""

    channel: str
    ts_ms: int
    #: "alert" (one transition), "group" or "digest" (several), as `Notification.kind`.
    kind: str
    alert_ids: tuple[str, ...]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A transition a channel would not have got, and why (inhibited, quiet, silenced, stale)."""

    channel: str
    alert_id: str
    rule: str
    outcome: str
    why: str


@dataclass(frozen=True, slots=True)
class RuleStats:
    """One row of the backtest table."""

    rule: str
    fires: int
    clears: int
    firing_ms: int
    longest_ms: int
    flaps: int
    per_week: float
    #: Messages each channel would have got that carry this rule's alerts (after grouping).
    messages: dict[str, int]
    #: Transitions held back, by channel and outcome.
    suppressed: dict[str, Counter[str]]


@dataclass
class BacktestResult:
    start_ms: int
    end_ms: int
    #: Every rule in the plan, in config order, whether it fired or not.
    rules: list[str]
    #: Every transition the driver told, in event-time order (reminders and repeats included).
    alerts: list[AlertEvent] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    #: Ticks and headlines fed to the driver.
    ticks: int = 0
    headlines: int = 0
    #: Rows of symbols no rule reads: skipped, counted by symbol.
    ignored: Counter[str] = field(default_factory=Counter)
    #: Where the data came from (file paths, or "alpaca cache ...").
    inputs: list[str] = field(default_factory=list)

    def stats(self) -> list[RuleStats]:
        """Per rule: fires, clears, time firing, longest episode, flaps, alerts per week and
        messages per channel. An alert still firing at the end counts as firing until then.
        Time firing adds up the rule's alerts (a rule over 9 symbols can fire 9 hours in one)."""
        weeks = max(self.end_ms - self.start_ms, DAY_MS) / WEEK_MS  # a day at least
        rows = []
        by_rule: dict[str, list[AlertEvent]] = {r: [] for r in self.rules}
        for a in self.alerts:
            by_rule.setdefault(a.rule, []).append(a)
        msgs: dict[str, Counter[str]] = {r: Counter() for r in by_rule}
        for m in self.messages:
            for r in set(m.rules):
                msgs.setdefault(r, Counter())[m.channel] += 1
        held: dict[str, dict[str, Counter[str]]] = {r: {} for r in by_rule}
        for s in self.suppressed:
            held.setdefault(s.rule, {}).setdefault(s.channel, Counter())[s.outcome] += 1
        for rule, alerts in by_rule.items():
            fires = clears = flaps = 0
            firing_ms = longest = 0
            since: dict[str, int] = {}
            resolved_at: dict[str, int] = {}
            for a in alerts:
                if a.repeat:
                    continue
                if a.state == "firing":
                    fires += 1
                    if a.key in resolved_at and a.ts_ms - resolved_at[a.key] < FLAP_MS:
                        flaps += 1
                    if a.resolves:
                        since[a.key] = a.ts_ms
                else:
                    clears += 1
                    resolved_at[a.key] = a.ts_ms
                    start = since.pop(a.key, None)
                    if start is not None:
                        firing_ms += a.ts_ms - start
                        longest = max(longest, a.ts_ms - start)
            for start in since.values():  # still firing at the end of the data
                firing_ms += self.end_ms - start
                longest = max(longest, self.end_ms - start)
            rows.append(
                RuleStats(
                    rule=rule,
                    fires=fires,
                    clears=clears,
                    firing_ms=firing_ms,
                    longest_ms=longest,
                    flaps=flaps,
                    per_week=(fires + clears) / weeks,
                    messages=dict(msgs.get(rule, {})),
                    suppressed=held.get(rule, {}),
                )
            )
        return rows
