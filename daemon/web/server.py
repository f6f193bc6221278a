"""The daemon's HTTP server: aiohttp on the daemon's event loop, on 127.0.0.1 by default.

`/healthz` and `/readyz` (`health.py`), `/metrics` (`metrics.py`), `/status` (`tickwatch status`
as text), the JSON API (`api.py`), the live status page at `/` (`page.py`), and the desk's
webhooks: Slack clicks (`slack_hook.py`) and SMS replies (`twilio_hook.py`).
Served by aiohttp, already a dependency (slack-sdk's async client).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from daemon.status import report
from daemon.web.api import Api, Handler, authorized
from daemon.web.health import REDIS_TIMEOUT_S, health, readiness
from daemon.web.metrics import DaemonCollector
from daemon.web.page import Page
from daemon.web.slack_hook import SlackHook
from daemon.web.twilio_hook import TwilioHook

if TYPE_CHECKING:
    from daemon.app import Daemon

__all__ = ["HttpServer"]

log = logging.getLogger("tickwatch.http")


class HttpServer:
    """aiohttp on the daemon's loop; `start()` raises OSError when the address is taken."""

    def __init__(self, daemon: Daemon, host: str, port: int) -> None:
        self.daemon, self.host, self.port = daemon, host, port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DaemonCollector(daemon))
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/status", self._status)
        slack = SlackHook(
            lambda: daemon.cfg.settings.channels,
            lambda: daemon.notifiers,
            lambda: daemon.redis,
            daemon.keys,
        )
        app.router.add_post("/hooks/slack/actions", slack.handle)
        twilio = TwilioHook(lambda: daemon.cfg.settings.channels, lambda: daemon.redis, daemon.keys)
        app.router.add_post("/hooks/twilio/sms", twilio.handle)
        Api(daemon).routes(app)
        self.page = Page(daemon)
        self.page.routes(app)
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Beyond loopback every request needs the token, but the webhooks (Slack and Twilio
        sign theirs) and /healthz, /readyz (what a load balancer or Docker asks). A browser
        may send it as `?token=` on the status page and its event stream (`authorized`)."""
        open_paths = ("/hooks/", "/healthz", "/readyz")
        if not self.loopback and not request.path.startswith(open_paths):
            t = self.daemon.cfg.settings.http.token
            refused = authorized(request, t.get_secret_value() if t is not None else None)
            if refused is not None:
                return refused
        return await handler(request)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        if self.port == 0:  # an ephemeral port (tests): report the one the OS picked
            self.port = int(self._runner.addresses[0][1])
        if not self.loopback:
            guarded = "every request but the webhooks and health checks needs http.token"
            if self.daemon.cfg.settings.http.token is None:
                guarded = "no http.token is set, so only the webhooks and health checks answer"
            log.warning("http: serving on %s, beyond loopback: %s", self.host, guarded)
        log.info("http: /healthz and /metrics on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        status, body = await health(self.daemon)
        return web.Response(
            status=status, text=json.dumps(body, sort_keys=True), content_type="application/json"
        )

    async def _readyz(self, _: web.Request) -> web.Response:
        status, body = await readiness(self.daemon)
        return web.json_response(body, status=status, dumps=lambda b: json.dumps(b, sort_keys=True))

    async def _status(self, _: web.Request) -> web.Response:
        d = self.daemon
        if d.redis is None:
            return web.Response(status=503, text="daemon: starting or stopped\n")
        try:
            async with asyncio.timeout(5 * REDIS_TIMEOUT_S):
                lines = await report(d.redis, d.keys, list(d.cfg.settings.channels))
        except Exception as e:  # Redis away: say so rather than a bare 500
            return web.Response(status=503, text=f"redis: {type(e).__name__}: {e}\n")
        return web.Response(text="\n".join(lines) + "\n")

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
