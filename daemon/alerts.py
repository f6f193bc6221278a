"""The alert transition: what the rules engine emits and every notifier renders.

One `AlertEvent` is one state change of one alert (a rule and its label set) that must be told:
it firing, or it resolving. `id` is stable for a given transition, so it doubles as the
idempotency key base for delivery: redelivering the same event never produces a second message.

Provenance: `inputs` are the observations the rule was judged on (each input's price, event time
and source feed) and `rule_version` the short hash of the rule's normalized content
(`daemon.rules.version`), so a reader can see why it fired and under which edit of the rule.

JSON (`to_dict` / `to_json`): `inputs` is a list of small dicts with the one-letter keys ticks use
in Redis (`daemon.events.Tick`): `{"s": symbol, "p": price, "t": ts_ms, "src": source,
"k": kind}`, `src` and `k` left out when empty. Both fields are left out when empty, so an event
without provenance has the same JSON as before the fields existed, and JSON written before them
(events already queued in Redis outboxes) loads with `inputs=()` and `rule_version=""`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

from daemon.events import NEW_YORK, Tick, ms_to_dt

__all__ = ["NEW_YORK", "AlertEvent", "Input", "Severity", "Transition", "alert_key"]

Severity = Literal["info", "warning", "critical"]
Transition = Literal["firing", "resolved"]


def alert_key(rule: str, labels: dict[str, str]) -> str:
    """Identity of one alert: the rule plus its sorted labels, e.g. `big-move{symbol=NVDA}`."""
    if not labels:
        return rule
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{rule}{{{inner}}}"


@dataclass(slots=True, frozen=True)
class Input:
    """One observation a rule was judged on: a price of a symbol at an event time, and its feed."""

    symbol: str
    price: float
    ts_ms: int
    #: The feed it came from (`alpaca`, `polygon`, ...), as on the tick; "" when unknown.
    source: str = ""
    #: `trade`, `quote` or `bar` (a bar's price is its close, its time the bar's end).
    kind: str = ""

    @classmethod
    def from_tick(cls, tick: Tick) -> Input:
        return cls(tick.symbol, tick.price, tick.ts_ms, tick.source, tick.kind)

    @property
    def time_ny(self) -> datetime:
        return ms_to_dt(self.ts_ms).astimezone(NEW_YORK)

    def to_dict(self) -> dict[str, Any]:
        """Compact: `{"s", "p", "t"}` plus `src` and `k` when set (the keys ticks use)."""
        d: dict[str, Any] = {"s": self.symbol, "p": self.price, "t": self.ts_ms}
        if self.source:
            d["src"] = self.source
        if self.kind:
            d["k"] = self.kind
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Input:
        return cls(
            str(d["s"]), float(d["p"]), int(d["t"]), str(d.get("src", "")), str(d.get("k", ""))
        )


@dataclass(slots=True, frozen=True)
class AlertEvent:
    rule: str
    key: str
    state: Transition
    seq: int
    ts_ms: int
    severity: Severity
    summary: str
    channels: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    threshold: float | None = None
    comparison: str = ""
    values: dict[str, float | str] = field(default_factory=dict)
    #: 0 for the firing itself; n for the n-th reminder that it is still firing (`repeat`).
    repeat: int = 0
    #: The rule's per-channel message variants (`messages:`), keyed by channel name or type,
    #: unrendered: each channel renders its own at delivery (daemon/notify/channel_templates.py).
    templates: dict[str, str] = field(default_factory=dict)
    #: False for one-shot alerts (a crossing, a headline, a reminder, an ops notice): no resolve
    #: will follow, so delivery must not count them as firing (inhibition, "where it went").
    resolves: bool = True
    #: What the rule was judged on, in the rule's order of inputs (empty when not recorded).
    inputs: tuple[Input, ...] = ()
    #: 8 hex characters of the rule's normalized content (`daemon.rules.version.rule_version`).
    rule_version: str = ""
    #: The desk's short number for this firing (1-999, reused in turn), given by the router and
    #: shown on every channel, so a reply can say `ACK 12`; 0 until routed.
    number: int = 0

    @property
    def id(self) -> str:
        """Stable per transition: `<key>#<seq>:<state>`, plus `.r<n>` for a reminder."""
        base = f"{self.key}#{self.seq}:{self.state}"
        return f"{base}.r{self.repeat}" if self.repeat else base

    @property
    def time_ny(self) -> datetime:
        """Event time in the exchange's zone, which is how traders read times."""
        return ms_to_dt(self.ts_ms).astimezone(NEW_YORK)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON. Not `dataclasses.asdict`: its deep copies were the most
        expensive step of routing an alert (bench/delivery.py); the one nested field, `inputs`,
        is written by hand."""
        d = {f: getattr(self, f) for f in _FIELDS}
        if not self.templates:
            del d["templates"]  # the common case: no variants, and the same JSON as before them
        if self.resolves:
            del d["resolves"]
        if self.inputs:
            d["inputs"] = [i.to_dict() for i in self.inputs]
        else:
            del d["inputs"]
        if not self.rule_version:
            del d["rule_version"]
        if not self.number:
            del d["number"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlertEvent:
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        if "inputs" in d:
            d["inputs"] = tuple(Input.from_dict(i) for i in d["inputs"])
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> AlertEvent:
        return cls.from_dict(json.loads(text))


_FIELDS = tuple(f.name for f in fields(AlertEvent))
