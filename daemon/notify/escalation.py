"""Escalation, the pure part: when an unacknowledged firing is sent on, and what is sent.

A firing of a rule with `escalate: {after, to, repeat}`, or handled by a route with one, starts
a chain when it reaches delivery: step 1 is due `after` later, each further step `after` after
the one before, `repeat` steps in all. At each due time the chain ends if the alert was
acknowledged since it fired (an ack anywhere ends it everywhere) or its rule or route no longer
escalates (a reload); a silence or snooze in force over the alert's labels defers the step to
the silence's end (snoozed means "not now", not "never"); otherwise the step goes to every
`to` channel, whatever their quiet hours (the desk asked for exactly this channel at exactly
this point). A resolve ends the chain (the escalator, `escalator.py`, cancels it). No I/O,
no clock: time is passed in.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from daemon.alerts import AlertEvent
from daemon.notify.market_context import MarketNow
from daemon.notify.notification import Notification
from daemon.notify.route_tree import Route, find_route, matched, routing_labels
from daemon.notify.silences import Silence
from daemon.rules import Escalate

__all__ = ["Chain", "Step", "current_policy", "escalated", "first_due_ms", "next_step",
           "policy_of"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Chain:
    """One escalation under way: the firing it is about, the steps taken, when it started."""

    alert: AlertEvent
    started_ms: int
    steps: int = 0
    #: Whose `escalate:` it follows: "rule", or the path of the route ("root.1") that set it.
    source: str = "rule"

    @property
    def member(self) -> str:
        """Its name in Redis: the firing's `key#seq`, as `told` names it."""
        return f"{self.alert.key}#{self.alert.seq}"

    def to_json(self) -> str:
        return json.dumps(
            {"alert": self.alert.to_dict(), "started_ms": self.started_ms, "steps": self.steps,
             "source": self.source},
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Chain:
        d = json.loads(text)
        return cls(AlertEvent.from_dict(d["alert"]), int(d["started_ms"]), int(d["steps"]),
                   str(d.get("source", "rule")))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with a chain that is due: send (and when the next step is), wait, or end."""

    action: Literal["send", "defer", "end"]
    why: str
    #: send: the next step's due time (None: this was the last); defer: when to look again.
    next_due_ms: int | None = None
    chain: Chain | None = None
    messages: tuple[Notification, ...] = ()


def policy_of(
    alert: AlertEvent,
    rules: Mapping[str, Escalate],
    root: Route,
    market: MarketNow | None,
) -> tuple[Escalate, str] | None:
    """The `escalate:` an alert follows, and whose: its rule's, else that of the first route
    handling it that has one (inherited down the tree); None when nothing escalates it."""
    own = rules.get(alert.rule)
    if own is not None:
        return own, "rule"
    for r in matched(root, routing_labels(alert, market), market):
        if r.escalate is not None:
            return r.escalate, r.path
    return None


def current_policy(chain: Chain, rules: Mapping[str, Escalate], root: Route) -> Escalate | None:
    """What a chain follows after a reload: its rule's, or its route's, as they are now."""
    if chain.source == "rule":
        return rules.get(chain.alert.rule)
    route = find_route(root, chain.source)
    return route.escalate if route is not None else None


def first_due_ms(policy: Escalate, now_ms: int) -> int:
    return now_ms + _ms(policy)


def next_step(
    chain: Chain,
    policy: Escalate | None,
    now_ms: int,
    *,
    acked_ms: int | None,
    silences: Sequence[Silence],
) -> Step:
    """The step a due `chain` takes at `now_ms`. `acked_ms` is when the alert was last
    acknowledged (None: never), `silences` those in force now."""
    if policy is None:
        return Step("end", "its rule no longer escalates")
    if acked_ms is not None and acked_ms >= chain.started_ms:
        return Step("end", "acknowledged")
    labels = routing_labels(chain.alert)
    holding = [s for s in silences if s.matches(labels, now_ms)]
    if holding:
        until = max(s.ends_ms for s in holding)
        return Step("defer", f"silenced until {until} by {holding[0].id}", max(until, now_ms + 1))
    step = chain.steps + 1
    moved = dataclasses.replace(chain, steps=step)
    last = step >= policy.repeat
    messages = tuple(escalated(chain, policy, step, now_ms, ch) for ch in policy.to)
    return Step("send", f"step {step} of {policy.repeat}", None if last else now_ms + _ms(policy),
                moved, messages)  # fmt: skip


def escalated(chain: Chain, policy: Escalate, step: int, now_ms: int, channel: str) -> Notification:
    """The message of one step on one channel: the alert, its summary saying it is an
    escalation and for how long it has gone unacknowledged."""
    minutes = max(1, round((now_ms - chain.started_ms) / 60_000))
    count = f", {step} of {policy.repeat}" if policy.repeat > 1 else ""
    summary = f"ESCALATED (unacknowledged for {minutes} min{count}): {chain.alert.summary}"
    alert = dataclasses.replace(chain.alert, summary=summary)
    return Notification(
        channel=channel,
        key=f"{chain.alert.id}.e{step}@{channel}",
        alerts=(alert,),
        meta={"escalation": f"{step}/{policy.repeat}"},
    )


def _ms(policy: Escalate) -> int:
    return int(policy.after.total_seconds() * 1000)
