"""Groups: batching alert transitions into fewer messages, as Alertmanager's dispatcher does.

A group is (channel, route, values of the route's `group_by` labels). Its first message waits
`group_wait` to collect what else is coming; after that, news is sent at most every
`group_interval`; a group still firing with no news is re-sent every `repeat_interval`. A digest
route is one group for everything, flushed every period. Pure: the router persists `Group.to_json`
next to the outbox acknowledgement, so a restart neither loses nor repeats a batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from daemon.alerts import AlertEvent
from daemon.notify.notification import Notification, NotificationKind
from daemon.notify.route_tree import GroupOpts

__all__ = ["Group"]


@dataclass
class Group:
    key: str
    channel: str
    opts: GroupOpts
    #: transitions not yet told, by alert key (the newest wins: firing then resolved = resolved)
    pending: dict[str, AlertEvent] = field(default_factory=dict)
    #: the latest firing transition of each alert of the group still firing (for repeats)
    firing: dict[str, AlertEvent] = field(default_factory=dict)
    next_flush_ms: int | None = None
    last_sent_ms: int | None = None
    flushes: int = 0

    def add(self, alert: AlertEvent, now_ms: int) -> None:
        self.pending[alert.key] = alert
        if alert.state == "firing":
            self.firing[alert.key] = alert
        else:
            self.firing.pop(alert.key, None)
        if self.next_flush_ms is None:
            if self.last_sent_ms is None:
                self.next_flush_ms = now_ms + self.opts.group_wait_ms
            else:
                self.next_flush_ms = max(now_ms, self.last_sent_ms + self.opts.group_interval_ms)

    def due_ms(self) -> int | None:
        """When this group next has something to send (news, or a repeat), None if never."""
        if self.next_flush_ms is not None:
            return self.next_flush_ms
        if self.firing and self.opts.repeat_interval_ms and self.last_sent_ms is not None:
            return self.last_sent_ms + self.opts.repeat_interval_ms
        return None

    def flush(self, now_ms: int) -> Notification | None:
        """The message due now, if any; the group then counts it as sent."""
        due = self.due_ms()
        if due is None or now_ms < due:
            return None
        if self.pending:
            alerts = sorted(self.pending.values(), key=_order)
            repeat = False
        else:  # nothing new, still firing: the reminder
            alerts = sorted(self.firing.values(), key=_order)
            repeat = True
        self.pending.clear()
        self.next_flush_ms = None
        self.last_sent_ms = now_ms
        self.flushes += 1
        kind: NotificationKind = "digest" if self.opts.digest else "group"
        meta = {"group": self.key, "firing": str(len(self.firing))}
        if repeat:
            meta["repeat"] = "1"
        return Notification(
            channel=self.channel,
            key=f"{self.key}#{self.flushes}",
            alerts=tuple(alerts),
            kind=kind,
            meta=meta,
        )

    @property
    def empty(self) -> bool:
        """Nothing pending and nothing firing: the group can be forgotten."""
        return not self.pending and not self.firing

    def to_json(self) -> str:
        return json.dumps(
            {
                "key": self.key,
                "channel": self.channel,
                "pending": [a.to_json() for a in self.pending.values()],
                "firing": [a.to_json() for a in self.firing.values()],
                "next": self.next_flush_ms,
                "last": self.last_sent_ms,
                "flushes": self.flushes,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str, opts: GroupOpts) -> Group:
        d = json.loads(text)
        pending = [AlertEvent.from_json(a) for a in d["pending"]]
        firing = [AlertEvent.from_json(a) for a in d["firing"]]
        return cls(
            key=d["key"],
            channel=d["channel"],
            opts=opts,
            pending={a.key: a for a in pending},
            firing={a.key: a for a in firing},
            next_flush_ms=d["next"],
            last_sent_ms=d["last"],
            flushes=d["flushes"],
        )


_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def _order(a: AlertEvent) -> tuple[int, int, str]:
    """Most severe first, firing before resolved, then by key: what a reader scans for."""
    return (_SEVERITY_RANK.get(a.severity, 3), a.state != "firing", a.key)
