"""`tickwatch status`: what the on-call engineer looks at first, read from Redis.

Liveness (the heartbeat), each live feed (state, last message age, messages/s, rejects), each
channel's delivery queue (waiting, in flight, dead letters, what was held back and why, and a
channel waiting to retry: "slack_desk: rate limited by Slack, next try in 42 s"), and the active
silences. Read-only: safe to run against a production daemon.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from daemon.config import Config
from daemon.durations import format_duration
from daemon.notify import Desk, SilenceStore, open_redis
from daemon.store import (
    Client,
    DeadLetterStore,
    FeedStatusStore,
    InspectStore,
    InstanceRoster,
    Keys,
    Lease,
)

__all__ = ["report", "status_lines"]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


async def _feeds(feeds: FeedStatusStore) -> list[str]:
    statuses = await feeds.read()  # (one that is not JSON is left out)
    lines = []
    for name in sorted(statuses):
        s = statuses[name]
        lines.append(
            f"  {name:<16} {s.get('type', '?'):<14} {s.get('state', '?'):<14} "
            f"last msg {_age(s.get('last_message_age_s')):>6}  "
            f"{s.get('messages_per_s', 0):>8.1f} msg/s  accepted {s.get('accepted', 0)}  "
            f"rejected {s.get('rejected', 0)}  reconnects {s.get('reconnects', 0)}"
            + (f"  last error: {s['last_error']}" if s.get("last_error") else "")
        )
    return lines or ["  (no live feeds have reported)"]


def _seconds(s: float) -> str:
    """`42 s` under two minutes, else `59m30s`."""
    return f"{s:.0f} s" if s < 120 else format_duration(timedelta(seconds=round(s)))


def _wait_line(ch: str, w: dict[str, Any], now_ms: int) -> str:
    """`slack_desk: rate limited by Slack, next try in 42 s (Retry-After 45 s, attempt 1, ...)`."""
    left = (int(w.get("until_ms", 0)) - now_ms) / 1000
    # overdue: the try is under way (a slow answer), or the daemon stopped mid-wait
    if left > -5:
        when = f"next try in {_seconds(max(0.0, left))}"
    else:
        when = f"next try was due {_seconds(-left)} ago"
    asked = w.get("retry_after")
    why = f"Retry-After {_seconds(float(asked))}" if asked is not None else "backoff"
    detail = [why, f"attempt {w.get('attempt', '?')}"]
    if w.get("give_up_at_ms"):
        give_up = (int(w["give_up_at_ms"]) - now_ms) / 1000
        detail.append(f"dead-lettered if still failing in {_seconds(max(0.0, give_up))}")
    return f"    {ch}: {w.get('reason') or 'retrying'}, {when} ({', '.join(detail)})"


async def _channels(
    look: InspectStore, dead_letters: DeadLetterStore, channels: list[str]
) -> list[str]:
    suppressed = await look.suppressed()
    held: dict[str, list[str]] = defaultdict(list)
    for field, n in sorted(suppressed.items()):
        outcome, _, channel = field.partition(":")
        held[channel].append(f"{outcome} {n}")
    dead: dict[str, int] = defaultdict(int)
    for _, f in await dead_letters.all():
        dead[f.get("channel", "-")] += 1
    waits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    raw = await look.delivery_waits()
    for field, text in sorted(raw.items()):  # "channel|consumer" → JSON
        try:
            waits[field.rpartition("|")[0]].append(json.loads(text))
        except ValueError:
            continue
    now_ms = int(time.time() * 1000)
    lines = []
    for ch in channels:
        waiting, pending = await look.channel_queue(ch)
        extra = f"  held back: {', '.join(held[ch])}" if held.get(ch) else ""
        lines.append(f"  {ch:<16} waiting {waiting:<5} in flight {pending:<3} "
                     f"dead letters {dead.get(ch, 0)}{extra}")  # fmt: skip
        lines += [_wait_line(ch, w, now_ms) for w in waits.get(ch, [])]
    return lines or ["  (no channels)"]


async def status_lines(cfg: Config) -> list[str]:
    async with open_redis(cfg) as redis:
        return await report(redis, Keys(cfg.settings.redis.prefix), list(cfg.settings.channels))


async def report(redis: Client, keys: Keys, channels: list[str]) -> list[str]:
    """The status as lines of text: `tickwatch status`, and the daemon's `GET /status`."""
    look = InspectStore(redis, keys)
    beat = await look.heartbeat()
    lines = [f"daemon: {'alive, ' + beat if beat else 'NOT RUNNING (no heartbeat)'}"]
    lines += await _instances(redis, keys)
    lines += ["feeds:", *await _feeds(FeedStatusStore(redis, keys))]
    lines += ["channels:", *await _channels(look, DeadLetterStore(redis, keys), channels)]
    now = int(time.time() * 1000)
    silences = await SilenceStore(redis, keys).active(now)
    lines.append(f"silences: {len(silences)} active")
    lines += [f"  {s.id} until {time.strftime('%H:%M', time.localtime(s.ends_ms / 1000))} "
              f"{' '.join(s.matchers)} ({s.author}: {s.reason})" for s in silences]  # fmt: skip
    lines += await _firing(Desk(redis, keys), now)
    return lines


#: An instance not heard from for this long is gone (they say so every 1.7 s or less).
_GONE_MS = 15_000


async def _instances(redis: Client, keys: Keys) -> list[str]:
    """Each live instance on this Redis, primary first: the lease holder and its time left."""
    now = int(time.time() * 1000)
    holder, left = await Lease(redis, keys.lease("primary"), "", 0).holder()
    seen = []
    for name, text in (await InstanceRoster(redis, keys.instances).all()).items():
        try:
            at = int(json.loads(text)["at_ms"])
        except (ValueError, KeyError, TypeError):
            continue
        if now - at <= _GONE_MS:
            seen.append((name != holder, name, now - at))
    if not seen and holder is None:
        return []
    lines = ["instances:"]
    for _, name, ago in sorted(seen):
        role = f"primary (lease {left / 1000:.1f} s left)" if name == holder else "standby"
        lines.append(f"  {name}: {role}, heard from {ago / 1000:.0f} s ago")
    if holder is not None and holder not in {n for _, n, _ in seen}:
        lines.append(f"  {holder}: primary (lease {left / 1000:.1f} s left)")
    return lines


async def _firing(desk: Desk, now_ms: int) -> list[str]:
    """Alerts firing now, each with who acknowledged it or when it escalates next."""
    firing = await desk.firing()
    lines = [f"firing: {len(firing)}"]
    for f in firing:
        if f.ack is not None:
            state = f"acked by {f.ack.by} via {f.ack.via} {_age((now_ms - f.ack.at_ms) / 1000)} ago"
        elif f.escalation_due_ms is not None:
            wait = max(0.0, (f.escalation_due_ms - now_ms) / 1000)
            state = f"not acked; escalates in {_seconds(wait)} (steps taken: {f.escalation_steps})"
        else:
            state = "not acked"
        lines.append(f"  {f.key}: {state}")
    return lines
