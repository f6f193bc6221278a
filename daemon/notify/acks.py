"""Acknowledgements: "seen", said by someone through Slack, SMS, the CLI or the API.

An ack belongs to an alert key and holds for the firing under way when it was given: it ends
that firing's escalation (`escalation.next_step`) and is dropped when the alert resolves, so the
next firing starts unacknowledged. Kept in Redis (`daemon.store.AckRecords`), so every process
and the CLI see the same ones and a restart forgets none.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from daemon.store import AckRecords, Client, Keys

__all__ = ["Ack", "AckBook"]


@dataclass(frozen=True, slots=True)
class Ack:
    alert_key: str
    by: str
    #: How it came: "slack", "sms", "cli", "api".
    via: str
    at_ms: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Ack:
        d = json.loads(text)
        return cls(str(d["alert_key"]), str(d["by"]), str(d["via"]), int(d["at_ms"]))


class AckBook:
    """The acks in Redis."""

    def __init__(self, redis: Client, keys: Keys):
        self.records = AckRecords(redis, keys)

    async def ack(self, alert_key: str, *, by: str, via: str, now_ms: int | None = None) -> Ack:
        if not by.strip():
            raise ValueError("an ack needs who gave it (--by you@desk)")
        a = Ack(alert_key, by.strip(), via, int(time.time() * 1000) if now_ms is None else now_ms)
        await self.records.put(alert_key, a.to_json())
        return a

    async def get(self, alert_key: str) -> Ack | None:
        text = await self.records.get(alert_key)
        return _read(text) if text else None

    async def all(self) -> dict[str, Ack]:
        out = {}
        for key, text in (await self.records.all()).items():
            a = _read(text)
            if a is not None:
                out[key] = a
        return out


def _read(text: str) -> Ack | None:
    try:
        return Ack.from_json(text)
    except (ValueError, TypeError, KeyError):
        return None  # a hand-edited entry we cannot read never blocks the others
