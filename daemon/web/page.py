"""The live status page: `GET /` (one self-contained HTML page) and `GET /events` (its SSE feed).

The page (`static/index.html`: inline CSS and JS, nothing fetched from anywhere else) opens an
`EventSource` on `/events` and redraws in place from each snapshot: firing and pending alerts,
every rule's value against its threshold, each spread rule's value as a small chart, recent
alerts, silences and the feeds' health. The rows are the JSON API's own (`api.Api`). A snapshot
goes out at once on connect, then about every second; the spread series (the last `KEEP`
samples) is kept here, in memory, so a page opened late still has history. Beyond loopback both
paths need the token, as a header or as `?token=` (`api.QUERY_TOKEN_PATHS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from daemon.rules import snapshot
from daemon.web.api import Api
from daemon.web.health import REDIS_TIMEOUT_S, health, readiness

if TYPE_CHECKING:
    from daemon.app import Daemon

__all__ = ["KEEP", "Page"]

log = logging.getLogger("tickwatch.http")

#: Samples of each spread kept for the chart (one a second: five minutes).
KEEP = 300
#: How many of the newest transitions the page lists.
RECENT = 20

_HEADERS = {
    "Cache-Control": "no-store",
    # nothing but this page's own inline code, and its own event stream
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # a ?token= in the address goes nowhere else
    "X-Content-Type-Options": "nosniff",
}


class Page:
    """The page's two routes, and the sampler that feeds every open page once a second."""

    def __init__(self, daemon: Daemon, *, interval_s: float = 1.0, keep: int = KEEP) -> None:
        self.daemon = daemon
        self.api = Api(daemon)
        self.interval_s = interval_s
        self.keep = keep
        #: Alert key → (wall ms, value) of each spread instance, oldest first.
        self.series: dict[str, deque[tuple[int, float]]] = {}
        self._html = resources.files("daemon.web").joinpath("static/index.html").read_text("utf-8")
        self._clients = 0
        self._latest: bytes = b""
        self._tick = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/events", self.events)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._stop)  # before aiohttp waits for open streams to end

    async def index(self, _: web.Request) -> web.Response:
        return web.Response(text=self._html, content_type="text/html", headers=_HEADERS)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: one `data:` JSON snapshot at once, then one per sample."""
        resp = web.StreamResponse(headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        self._clients += 1
        try:
            await resp.write(b"retry: 2000\n\n")
            await resp.write(await self._message())
            while not self._closing.is_set():
                tick = self._tick
                await tick.wait()
                if self._closing.is_set():
                    break
                await resp.write(self._latest)
        except ConnectionError:  # the page was closed
            pass
        finally:
            self._clients -= 1
        return resp

    def spread_rules(self) -> set[str]:
        return {lr.rule.name for lr in self.daemon.cfg.rules if lr.rule.when.spread is not None}

    def sample(self) -> None:
        """Append each spread instance's value now to its series (pure: no Redis)."""
        ev = self.daemon.evaluator
        if ev is None:
            return
        names = self.spread_rules()
        if not names and not self.series:
            return
        now = int(time.time() * 1000)
        at = ev.stats.last_event_ms or now
        seen = set()
        for v in snapshot(ev.engine, at, ev.last):
            if v.rule not in names:
                continue
            seen.add(v.key)
            points = self.series.setdefault(v.key, deque(maxlen=self.keep))
            if v.value is not None:
                points.append((now, v.value))
        for gone in set(self.series) - seen:  # a rule removed by a reload
            del self.series[gone]

    async def current(self) -> dict[str, Any]:
        """Everything the page shows, as plain data. A part that cannot be read now (Redis
        away) is left empty and named in `errors`, the rest still goes out."""
        d, errors = self.daemon, []
        ev = d.evaluator
        out: dict[str, Any] = {
            "now_ms": int(time.time() * 1000),
            "event_ms": ev.stats.last_event_ms if ev is not None else None,
            "alerts": [], "rules": [], "recent": [], "silences": [], "spreads": [],
        }  # fmt: skip
        views: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(5 * REDIS_TIMEOUT_S):
                views = await self.api.views()
                out["recent"] = await self.api.recent(RECENT)
                out["silences"] = await self.api.silence_list()
        except Exception as e:  # Redis away, or the daemon starting or stopping
            errors.append(f"redis: {type(e).__name__}: {e}"[:200])
        out["alerts"], out["rules"] = Api.active(views), Api.by_rule(views)
        names = self.spread_rules()
        for row in views:
            if row["rule"] in names:
                points = self.series.get(row["key"], ())
                out["spreads"].append({**row, "points": [list(p) for p in points]})
        _, out["health"] = await health(d)
        _, out["ready"] = await readiness(d)
        out["errors"] = errors
        return out

    async def _message(self) -> bytes:
        return b"data: " + orjson.dumps(await self.current()) + b"\n\n"

    async def _run(self) -> None:
        while not self._closing.is_set():
            try:
                self.sample()
                if self._clients:
                    self._latest = await self._message()
                    tick, self._tick = self._tick, asyncio.Event()
                    tick.set()
            except Exception:  # the page must not take the daemon down, nor stop for good
                log.exception("status page: a snapshot failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.interval_s)

    async def _start(self, _: web.Application) -> None:
        self._closing.clear()
        self._task = asyncio.create_task(self._run(), name="status-page")

    async def _stop(self, _: web.Application) -> None:
        self._closing.set()
        self._tick.set()  # wake every open stream: it ends, and aiohttp need not wait
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
