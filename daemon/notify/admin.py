"""Operator commands on delivery: `tickwatch silence`, `deadletter` and `routes test`.

They work on the same Redis as the daemon: `redis.url` from alerts.yaml, or the embedded server a
running daemon started (found through its data directory); with neither, an embedded server is
started on the daemon's data just for the command, so silences can be set before a start.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from daemon.alerts import NEW_YORK, AlertEvent
from daemon.config import Config
from daemon.durations import parse_duration
from daemon.notify.inhibit import Inhibitor
from daemon.notify.market_context import MarketContext
from daemon.notify.notification import Notification
from daemon.notify.pipeline import decide
from daemon.notify.route_tree import compile_routes, explain, parse_matcher, routing_labels
from daemon.notify.silence_book import SilenceStore
from daemon.sources import load_earnings, merge_earnings
from daemon.store import CalendarStore, Client, DeadLetterStore, EmbeddedRedis, Keys, connect

__all__ = ["deadletter_list", "deadletter_retry", "open_redis", "routes_test", "silence_add",
           "silence_expire", "silence_list"]  # fmt: skip


@contextlib.asynccontextmanager
async def open_redis(cfg: Config) -> AsyncIterator[Client]:
    s = cfg.settings.redis
    data_dir = cfg.base_dir / s.data_dir
    embedded = None
    url = s.url or EmbeddedRedis.running_url(data_dir)
    if url is None:
        embedded = EmbeddedRedis(data_dir).start()
        url = embedded.url
    redis = connect(url)
    try:
        yield redis
    finally:
        await redis.aclose()
        if embedded is not None:
            embedded.stop()


def _ny(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, NEW_YORK).strftime("%Y-%m-%d %H:%M ET")


# --- silences ------------------------------------------------------------------------------------
async def silence_add(
    cfg: Config, matchers: Sequence[str], *, duration: str, author: str, reason: str
) -> str:
    ends = int(time.time() * 1000 + parse_duration(duration).total_seconds() * 1000)
    async with open_redis(cfg) as redis:
        s = await SilenceStore(redis, Keys(cfg.settings.redis.prefix)).add(
            list(matchers), author=author, reason=reason, ends_ms=ends
        )
    return f"silence {s.id} until {_ny(s.ends_ms)}: {' '.join(s.matchers)} ({author}: {reason})"


async def silence_list(cfg: Config, *, all_: bool = False) -> list[str]:
    now = int(time.time() * 1000)
    async with open_redis(cfg) as redis:
        silences = await SilenceStore(redis, Keys(cfg.settings.redis.prefix)).all()
    out = []
    for s in silences:
        if not all_ and not s.active(now) and s.starts_ms < now:
            continue
        state = "active" if s.active(now) else "expired" if s.ends_ms <= now else "pending"
        out.append(
            f"{s.id}  {state:<7}  until {_ny(s.ends_ms)}  {' '.join(s.matchers)}  "
            f"by {s.author}: {s.reason}"
        )
    return out


async def silence_expire(cfg: Config, silence_id: str) -> str | None:
    async with open_redis(cfg) as redis:
        s = await SilenceStore(redis, Keys(cfg.settings.redis.prefix)).expire(silence_id)
    return None if s is None else f"silence {s.id} expired ({' '.join(s.matchers)})"


# --- dead letters --------------------------------------------------------------------------------
async def deadletter_list(cfg: Config, count: int = 50) -> list[str]:
    keys = Keys(cfg.settings.redis.prefix)
    async with open_redis(cfg) as redis:
        entries = await DeadLetterStore(redis, keys).newest(count)
    out = []
    for entry_id, f in entries:
        what = f.get("n") or f.get("alert") or ""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            n = Notification.from_json(what) if f.get("n") else None
            what = n.key if n is not None else AlertEvent.from_json(what).id
        ms = int(entry_id.split("-")[0])
        out.append(f"{entry_id}  {_ny(ms)}  {f.get('channel', '-'):<10}  {what[:60]}  "
                   f"{f.get('reason', '')[:120]}")  # fmt: skip
    return out


async def deadletter_retry(cfg: Config, ids: Sequence[str], *, all_: bool = False) -> list[str]:
    """Put dead letters back on their channel's delivery stream; they leave the dead letters."""
    keys = Keys(cfg.settings.redis.prefix)
    out = []
    async with open_redis(cfg) as redis:
        dead = DeadLetterStore(redis, keys)
        entries = await dead.all()
        chosen = [(i, f) for i, f in entries if all_ or i in ids]
        missing = set(ids) - {i for i, _ in chosen}
        out += [f"{i}: no such dead letter" for i in sorted(missing)]
        for entry_id, f in chosen:
            channel = f.get("channel", "-")
            if not f.get("n") or channel not in cfg.settings.channels:
                out.append(f"{entry_id}: cannot retry ({f.get('reason', '')[:80]})")
                continue
            n = Notification.from_json(f["n"])
            await dead.requeue(entry_id, channel, n.key, f["n"])  # a fresh attempt, not a dup
            out.append(f"{entry_id}: queued again for {channel}")
    return out


# --- routes test ---------------------------------------------------------------------------------
def parse_at(text: str) -> int:
    """`2026-03-16T10:00` (New York time unless it says its zone) → epoch ms."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--at {text!r}: write a date and time, e.g. 2026-03-16T10:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=NEW_YORK)
    return int(when.timestamp() * 1000)


async def routes_test(
    cfg: Config, label_args: Sequence[str], *, at: str | None = None
) -> list[str]:
    """Where an alert with these labels would go now (or `at`, New York time), and why:
    the market then (session, early close, earnings), silences and all."""
    labels: dict[str, str] = {}
    for arg in label_args:
        m = parse_matcher(arg)
        if m.op != "=":
            raise ValueError(f"{arg!r}: give labels as label=value")
        labels[m.label] = m.value
    s = cfg.settings
    rule = labels.pop("rule", "routes-test")
    severity = labels.pop("severity", "warning")
    rule_channels = next(
        (tuple(lr.rule.channels) for lr in cfg.rules if lr.rule.name == rule), tuple(s.channels)
    )
    now = int(time.time() * 1000) if at is None else parse_at(at)
    alert = AlertEvent(rule=rule, key=rule, state="firing", seq=0, ts_ms=now,
                       severity=severity, summary="", channels=rule_channels,  # type: ignore[arg-type]
                       labels=labels)  # fmt: skip
    root = compile_routes(s.route)
    keys = Keys(s.redis.prefix)
    async with open_redis(cfg) as redis:
        silences = await SilenceStore(redis, keys).active(now)
        fetched = await load_earnings(CalendarStore(redis, keys))
    market = MarketContext(merge_earnings(cfg.earnings, fetched)).at(now)
    symbol = labels.get("symbol", "")
    near = [f"{symbol} reports within {w}" for w, ms in (("1d", 86_400_000), ("7d", 7 * 86_400_000))
            if symbol and market.earnings_within(symbol, ms)][:1]  # fmt: skip
    lines = [
        f"at {_ny(now)}: session={market.session}, early_close={market.labels['early_close']}"
        + (f"; {near[0]}" if near else "")
    ]
    lines += explain(root, routing_labels(alert, market), market)
    decisions = decide(
        alert, root=root, now_ms=now, max_age_ms=10**12, inhibitor=Inhibitor(s.inhibit_rules),
        firing={}, silences=silences, channels=dict(s.channels), market=market,
    )  # fmt: skip
    for d in decisions:
        verdict = "SEND" if d.delivers else d.outcome.upper()
        lines.append(f"  {d.channel:<12} {verdict:<9} {d.why}")
    if not decisions:
        lines.append("  (no channel)")
    return lines
