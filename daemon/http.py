"""`/healthz`, `/metrics` and `/status` over HTTP, for the on-call engineer and Prometheus.

Off unless `http: {listen: "127.0.0.1:9464"}` is set in alerts.yaml. `/healthz` answers 200
while nothing fatal happened ("degraded", with the reasons, while a feed is down or Redis is
away and every stage retries), 503 "failing" otherwise. `/metrics` is the
Prometheus text format, read from the running daemon at scrape time by one collector on a
registry of its own: no prometheus_client globals, so several daemons (tests) share a process.
`/status` is `tickwatch status` as text. Served by aiohttp, already a dependency (slack-sdk's
async client), on the daemon's event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.sources import FeedSource
from daemon.status import report
from daemon.web.slack_hook import SlackHook
from daemon.web.twilio_hook import TwilioHook

if TYPE_CHECKING:
    from daemon.app import Daemon

__all__ = ["HttpServer", "health"]

log = logging.getLogger("tickwatch.http")

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


class DaemonCollector(Collector):
    """The daemon's counters and gauges, read when Prometheus scrapes."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        d = self.daemon
        yield GaugeMetricFamily("tickwatch_up", "1 while the daemon runs", value=1)
        if d.evaluator is not None:
            st = d.evaluator.stats
            for name, value, what in (
                ("ticks", st.ticks, "Ticks evaluated"),
                ("headlines", st.headlines, "Headlines evaluated"),
                ("alerts", st.alerts, "Alert transitions written to the outbox"),
            ):
                yield CounterMetricFamily(f"tickwatch_{name}", what, value=value)
            states = GaugeMetricFamily(
                "tickwatch_alert_states", "Alerts by lifecycle state", labels=["state"]
            )
            counts = Counter(a.state for a in d.evaluator.engine.states.values())
            for state in ("inactive", "pending", "firing", "resolved"):
                states.add_metric([state], counts[state])
            yield states
            if st.last_event_ms:
                yield GaugeMetricFamily(
                    "tickwatch_last_event_age_seconds",
                    "Wall clock minus the event time of the last tick or headline evaluated",
                    value=max(0.0, time.time() - st.last_event_ms / 1000),
                )
        yield from self._delivery()
        yield from self._sources()

    def _delivery(self) -> Iterator[Metric]:
        delivery = self.daemon.delivery
        if delivery is None:
            return
        sent = CounterMetricFamily(
            "tickwatch_notifications_sent", "Notifications delivered", labels=["channel"]
        )
        dead = CounterMetricFamily(
            "tickwatch_notifications_dead", "Notifications dead-lettered", labels=["channel"]
        )
        retries = CounterMetricFamily(
            "tickwatch_delivery_retries",
            "Waits before trying a failed send again (Retry-After or backoff)",
            labels=["channel"],
        )
        retry_after = CounterMetricFamily(
            "tickwatch_delivery_retry_after_waits",
            "Waits a channel's service asked for with Retry-After (429, 503), honoured in full",
            labels=["channel"],
        )
        next_try = GaugeMetricFamily(
            "tickwatch_delivery_next_attempt_seconds",
            "Seconds until the channel's next try of a failed send; 0 when it is not waiting",
            labels=["channel"],
        )
        for name, w in sorted(delivery.workers.items()):
            sent.add_metric([name], w.stats.sent)
            dead.add_metric([name], w.stats.dead)
            retries.add_metric([name], w.stats.retries)
            retry_after.add_metric([name], w.stats.retry_after_waits)
            next_try.add_metric([name], w.next_attempt_in())
        yield from (sent, dead, retries, retry_after, next_try)
        yield GaugeMetricFamily(
            "tickwatch_notifications_in_flight", "Sends under way", value=delivery.in_flight
        )
        routed = CounterMetricFamily(
            "tickwatch_routing_decisions",
            "Router decisions per channel and transition (send, group, silenced, inhibited, ...)",
            labels=["outcome"],
        )
        for outcome, n in sorted(delivery.router.stats.outcomes.items()):
            routed.add_metric([outcome], n)
        yield routed

    def _sources(self) -> Iterator[Metric]:
        accepted = CounterMetricFamily(
            "tickwatch_source_accepted", "Events accepted at the edge", labels=["source"]
        )
        rejected = CounterMetricFamily(
            "tickwatch_source_rejected", "Events refused at the edge", labels=["source", "reason"]
        )
        connected = GaugeMetricFamily(
            "tickwatch_feed_connected", "1 while a live feed is connected", labels=["source"]
        )
        age = GaugeMetricFamily(
            "tickwatch_feed_last_message_age_seconds",
            "Seconds since a live feed's last message",
            labels=["source"],
        )
        reconnects = CounterMetricFamily(
            "tickwatch_feed_reconnects", "Reconnections of a live feed", labels=["source"]
        )
        latency = GaugeMetricFamily(
            "tickwatch_feed_write_latency_seconds",
            "Frame received -> in Redis, over the last 4,096 frames",
            labels=["source", "quantile"],
        )
        for src in self.daemon.sources:
            accepted.add_metric([src.name], src.accepted)
            for reason, n in sorted(src.rejected.items()):
                rejected.add_metric([src.name, reason], n)
            if not isinstance(src, FeedSource):
                continue
            s = src.status()
            connected.add_metric([src.name], 1.0 if s["state"] == "connected" else 0.0)
            if s["last_message_age_s"] is not None:
                age.add_metric([src.name], s["last_message_age_s"])
            reconnects.add_metric([src.name], s["reconnects"])
            for q, ms in s["write_latency_ms"].items():
                if ms is not None:
                    latency.add_metric([src.name, "0.5" if q == "p50" else "0.99"], ms / 1000)
        yield from (accepted, rejected, connected, age, reconnects, latency)


class HttpServer:
    """aiohttp on the daemon's loop; `start()` raises OSError when the address is taken."""

    def __init__(self, daemon: Daemon, host: str, port: int) -> None:
        self.daemon, self.host, self.port = daemon, host, port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DaemonCollector(daemon))
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
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
        self._runner = web.AppRunner(app, access_log=None)

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
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("http: serving /healthz and /metrics on %s, beyond loopback", self.host)
        log.info("http: /healthz and /metrics on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _healthz(self, _: web.Request) -> web.Response:
        status, body = await health(self.daemon)
        return web.Response(
            status=status, text=json.dumps(body, sort_keys=True), content_type="application/json"
        )

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
