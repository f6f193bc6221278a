"""The alert state machine: inactive → pending (`for`) → firing → resolved. Pure; time passed in.

Modelled on Prometheus's rule states plus what traders asked of it:
- hysteresis: a firing alert resolves on its own `clear` condition, not on the first tick back;
- `keep_firing_for`: a firing alert stays firing until its clear condition has held this long
  (kept across restarts, unlike Prometheus's: prometheus#13957);
- `cooldown` between told firings, and `repeat`: a reminder while an alert stays firing;
- flap detection: too many transitions within a window mark the alert flapping and hold its
  notifications until it settles (Alertmanager declined this, alertmanager#204).
The state is a small record the runner persists in Redis after every batch, so a restart
neither re-fires a firing alert nor forgets a pending one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Literal

__all__ = ["AlertState", "Policy", "State", "Told", "fire_event", "step"]

State = Literal["inactive", "pending", "firing", "resolved"]
#: What to tell: a firing, a resolve, or a reminder that the alert is still firing.
Told = Literal["firing", "resolved", "repeat"] | None


@dataclass(frozen=True, slots=True)
class Policy:
    """A rule's lifecycle options, in milliseconds; zero means off."""

    for_ms: int = 0
    cooldown_ms: int = 0
    keep_firing_ms: int = 0
    repeat_ms: int = 0
    notify_resolved: bool = True
    flap_transitions: int = 0
    flap_window_ms: int = 0


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
    #: While firing: since when the clear condition holds (for `keep_firing_for`), else 0.
    clearing_since_ms: int = 0
    #: Reminders told during the current firing (`repeat`), and when the last one was.
    repeats: int = 0
    last_repeat_ms: int = 0
    #: Recent transition times (flap detection), and whether notifications are held.
    flaps: list[int] = field(default_factory=list)
    flapping: bool = False
    #: `trigger: once` fired, or per-bar triggers: the last bar told.
    done: bool = False
    last_bar: int = -1

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AlertState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})


def _fire(st: AlertState, now_ms: int, cooldown_ms: int) -> Told:
    st.seq += 1
    st.state = "firing"
    st.since_ms = now_ms
    st.clearing_since_ms = 0
    st.repeats = 0
    st.last_repeat_ms = now_ms
    # no cooldown means none: a last notification dated later than `now_ms` (told on the clock
    # a moment ahead of this event time, or before the wall clock stepped back) must not mute
    # this one, as `now - last < 0` alone would
    in_cooldown = (
        cooldown_ms > 0 and st.last_notified_ms > 0 and now_ms - st.last_notified_ms < cooldown_ms
    )
    st.notified = not in_cooldown
    if st.notified:
        st.last_notified_ms = now_ms
        return "firing"
    return None


def _flap_gate(st: AlertState, told: Told, now_ms: int, p: Policy) -> Told:
    """Record a transition; hold notifications while the alert flaps."""
    if p.flap_transitions <= 0 or told is None or told == "repeat":
        return told
    st.flaps = [t for t in st.flaps if now_ms - t < p.flap_window_ms][-(p.flap_transitions - 1) :]
    st.flaps.append(now_ms)
    st.flapping = len(st.flaps) >= p.flap_transitions
    return None if st.flapping else told


def step(
    st: AlertState,
    *,
    active: bool,
    cleared: bool,
    now_ms: int,
    for_ms: int = 0,
    cooldown_ms: int = 0,
    policy: Policy | None = None,
) -> Told:
    """Advance `st` in place for one observation; return the transition to tell, if any.

    `active`: the firing condition holds. `cleared`: the resolve condition holds (with no
    hysteresis configured, the caller passes `not active`). `policy` carries every option;
    `for_ms`/`cooldown_ms` are shorthands for the two most common ones.
    """
    p = policy or Policy(for_ms=for_ms, cooldown_ms=cooldown_ms)
    if st.flapping and st.flaps and now_ms - st.flaps[-1] >= p.flap_window_ms:
        st.flapping, st.flaps = False, []  # settled: tell transitions again
    if st.state in ("inactive", "resolved"):
        if not active:
            return None
        if p.for_ms <= 0:
            return _flap_gate(st, _fire(st, now_ms, p.cooldown_ms), now_ms, p)
        st.state, st.since_ms = "pending", now_ms
        return None
    if st.state == "pending":
        if not active:
            st.state, st.since_ms = "inactive", now_ms
            return None
        if now_ms - st.since_ms >= p.for_ms:
            return _flap_gate(st, _fire(st, now_ms, p.cooldown_ms), now_ms, p)
        return None
    # firing
    if cleared:
        if st.clearing_since_ms == 0:
            st.clearing_since_ms = now_ms
        if now_ms - st.clearing_since_ms >= p.keep_firing_ms:
            st.state, st.since_ms, st.clearing_since_ms = "resolved", now_ms, 0
            told: Told = "resolved" if st.notified and p.notify_resolved else None
            return _flap_gate(st, told, now_ms, p)
        return None
    st.clearing_since_ms = 0
    if p.repeat_ms > 0 and st.notified and now_ms - st.last_repeat_ms >= p.repeat_ms:
        st.repeats += 1
        st.last_repeat_ms = now_ms
        return None if st.flapping else "repeat"
    return None


def fire_event(st: AlertState, *, now_ms: int, cooldown_ms: int) -> Told:
    """An event-style alert (a headline, a crossing): fires and is done; no pending, no resolve."""
    told = _fire(st, now_ms, cooldown_ms)
    st.state = "resolved"
    return told
