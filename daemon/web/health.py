"""`/healthz` and `/readyz`: is the daemon alive, and is it ready to be trusted with alerts.

`health` answers 200 while nothing fatal happened ("degraded", with the reasons, while a feed is
down or Redis is away and every stage retries), 503 "failing" otherwise: what a restart helps.
`readiness` answers 200 only when Redis answers, the config is loaded and every live feed is
fresh (connected, and not silent in the session), 503 with the reasons otherwise: what a load
balancer or a desk's checklist asks before relying on the alerts.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from daemon.sources import FeedSource

if TYPE_CHECKING:
    from daemon.app import Daemon

__all__ = ["REDIS_TIMEOUT_S", "health", "readiness"]

#: How long `/healthz` waits for Redis to answer a PING before calling it down.
REDIS_TIMEOUT_S = 1.0


async def health(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 503 "failing" when the daemon failed (a restart is what helps);
    else 200, "ok" or "degraded": a live feed not connected, or Redis away while every stage
    keeps retrying (restarting the daemon would not bring an external Redis back; the
    embedded one the daemon restarts itself)."""
    problems: list[str] = []
    redis_ok = False
    if daemon.ops_store is not None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                redis_ok = await daemon.ops_store.ping()
        except Exception as e:  # any failure to answer is the finding, not an error here
            problems.append(f"redis: {type(e).__name__}: {e}"[:200])
    if not redis_ok and not problems:
        problems.append("redis: not connected")
    failing = daemon.failed.is_set()
    if failing:
        problems.append("daemon: " + ("; ".join(daemon.fatal_reasons) or "a stage failed"))
    feeds = {s.name: s.state for s in daemon.sources if isinstance(s, FeedSource)}
    down = sorted(name for name, state in feeds.items() if state != "connected")
    status = "failing" if failing else "degraded" if problems or down else "ok"
    body = {
        "status": status,
        "redis": "ok" if redis_ok else "down",
        "feeds": feeds,
        "problems": problems + [f"feed {name}: {feeds[name]}" for name in down],
        "uptime_s": round(time.monotonic() - daemon.started_at, 1) if daemon.started_at else 0,
    }
    return (503 if failing else 200), body


async def readiness(daemon: Daemon) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 200 only when Redis answers, the config is loaded and judged
    (the evaluator runs) and every live feed is fresh; else 503, with every reason."""
    _, alive = await health(daemon)
    problems = [p for p in alive["problems"] if not p.startswith("feed ")]
    if daemon.standby:
        problems.append("standby: another instance is the primary; this one takes over if it stops")
    elif daemon.evaluator is None:
        problems.append("config: not loaded yet (the daemon is starting)")
    feeds: dict[str, dict[str, Any]] = {}
    for src in daemon.sources:
        if not isinstance(src, FeedSource):
            continue
        st = src.status()
        feeds[src.name] = {"state": st["state"], "fresh": src.fresh,
                           "last_message_age_s": st["last_message_age_s"]}  # fmt: skip
        if not src.fresh:
            why = "silent in the session" if st["state"] == "connected" else st["state"]
            problems.append(f"feed {src.name}: {why}")
    body = {"ready": not problems, "problems": problems, "feeds": feeds}
    return (200 if not problems else 503), body
