"""Silences: "don't tell me about NVDA until 16:00", with an author, a reason and an end.

A silence is a set of matchers over routing labels and a time range. It lives in Redis (one hash,
id → JSON, kept by `daemon.notify.silence_book.SilenceStore`) so every process and the CLI see the
same ones, and it expires by itself: the end time is checked on every match, and expired silences
are kept for a week for the record. This module is the pure part: what a silence is and matches.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from daemon.notify.route_tree import Matcher, parse_matcher

__all__ = ["KEEP_EXPIRED_MS", "Silence"]

#: How long an expired silence is kept for the record before `SilenceStore.active` drops it.
KEEP_EXPIRED_MS = 7 * 86_400_000


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[str, ...]
    author: str
    reason: str
    starts_ms: int
    ends_ms: int
    created_ms: int

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher, e.g. symbol=NVDA")
        if not self.author.strip():
            raise ValueError("a silence needs an author (--author you@desk)")
        if not self.reason.strip():
            raise ValueError("a silence needs a reason (--reason 'NVDA earnings')")
        if self.ends_ms <= self.starts_ms:
            raise ValueError("a silence must end after it starts")

    @property
    def compiled(self) -> tuple[Matcher, ...]:
        return tuple(parse_matcher(m) for m in self.matchers)

    def active(self, now_ms: int) -> bool:
        return self.starts_ms <= now_ms < self.ends_ms

    def matches(self, labels: Mapping[str, str], now_ms: int) -> bool:
        return self.active(now_ms) and all(m.matches(labels) for m in self.compiled)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["matchers"] = list(self.matchers)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Silence:
        d = json.loads(text)
        d["matchers"] = tuple(d["matchers"])
        return cls(**d)
