"""What goes to a channel: a `Notification` (one message, alerts or a notice), and its `Receipt`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Literal

from daemon.alerts import AlertEvent

__all__ = ["Notification", "NotificationKind", "Receipt"]

#: What a channel says about a message it sent, e.g. Slack's `{"channel": "C1", "ts": "17.1"}`:
#: kept per alert and channel, so a reminder or the resolve can thread under the first message.
Receipt = Mapping[str, str]

NotificationKind = Literal["alert", "group", "digest", "notice"]


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    """One message for one channel: an alert transition, a group or digest of them, or a notice.

    `key` is the idempotency key of this (content, channel): delivering the same key twice sends
    once. `thread` is the receipt of the first message about the same alert on this channel, for
    channels that can follow up in place (Slack threads and `chat.update`). A `notice` carries
    only `text` (a test message, a catch-up summary).
    """

    channel: str
    key: str
    alerts: tuple[AlertEvent, ...] = ()
    kind: NotificationKind = "alert"
    text: str = ""
    thread: Mapping[str, str] | None = None
    #: Channel-agnostic extra data (e.g. the group's labels), kept small.
    meta: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def single(cls, alert: AlertEvent, channel: str) -> Notification:
        return cls(channel=channel, key=f"{alert.id}@{channel}", alerts=(alert,))

    @property
    def alert(self) -> AlertEvent:
        """The (first) alert: what single-alert channels render."""
        return self.alerts[0]

    def to_json(self) -> str:
        return json.dumps(
            {
                "channel": self.channel,
                "key": self.key,
                "alerts": [a.to_dict() for a in self.alerts],
                "kind": self.kind,
                "text": self.text,
                "thread": dict(self.thread) if self.thread is not None else None,
                "meta": dict(self.meta),
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Notification:
        d = json.loads(text)
        alerts = tuple(AlertEvent.from_dict(a) for a in d.get("alerts", []))
        return cls(
            channel=str(d["channel"]),
            key=str(d["key"]),
            alerts=alerts,
            kind=d.get("kind", "alert"),
            text=str(d.get("text", "")),
            thread=d.get("thread"),
            meta=d.get("meta") or {},
        )
