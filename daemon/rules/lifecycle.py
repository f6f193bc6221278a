"""The alert state machine: inactive → pending (`for`) → firing → resolved. Pure; time passed in.

Modelled on Prometheus's rule states plus the two things traders asked of it: hysteresis (a
firing alert resolves on its own `clear` condition, not on the first tick back across the line)
and a `cooldown` between notified firings. The state is a small record that the runner persists
in Redis after every batch, so a restart neither re-fires a firing alert nor forgets a pending one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

__all__ = ["AlertState", "State", "fire_event", "step"]

State = Literal["inactive", "pending", "firing", "resolved"]


@dataclass(slots=True)
class AlertState:
    state: State = "inactive"
    #: When the current state began (event time, epoch ms).
    since_ms: int = 0
    #: How many times this alert has fired; a firing and its resolve share the number.
    seq: int = 0
    #: Whether the current firing was told (a firing held back by cooldown resolves silently).
    notified: bool = False
    #: Event time of the last firing that was told, for `cooldown`.
    last_notified_ms: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AlertState:
        return cls(**json.loads(text))


Told = Literal["firing", "resolved"] | None


def _fire(st: AlertState, now_ms: int, cooldown_ms: int) -> Told:
    st.seq += 1
    st.state = "firing"
    st.since_ms = now_ms
    in_cooldown = st.last_notified_ms > 0 and now_ms - st.last_notified_ms < cooldown_ms
    st.notified = not in_cooldown
    if st.notified:
        st.last_notified_ms = now_ms
        return "firing"
    return None


def step(
    st: AlertState, *, active: bool, cleared: bool, now_ms: int, for_ms: int, cooldown_ms: int
) -> Told:
    """Advance `st` in place for one observation; return the transition to tell, if any.

    `active`: the firing condition holds. `cleared`: the resolve condition holds (with no
    hysteresis configured, the caller passes `not active`).
    """
    if st.state in ("inactive", "resolved"):
        if not active:
            return None
        if for_ms <= 0:
            return _fire(st, now_ms, cooldown_ms)
        st.state, st.since_ms = "pending", now_ms
        return None
    if st.state == "pending":
        if not active:
            st.state, st.since_ms = "inactive", now_ms
            return None
        if now_ms - st.since_ms >= for_ms:
            return _fire(st, now_ms, cooldown_ms)
        return None
    # firing
    if cleared:
        st.state, st.since_ms = "resolved", now_ms
        return "resolved" if st.notified else None
    return None


def fire_event(st: AlertState, *, now_ms: int, cooldown_ms: int) -> Told:
    """An event-style alert (a headline): fires and is done; no pending, no resolve."""
    told = _fire(st, now_ms, cooldown_ms)
    st.state = "resolved"
    return told
