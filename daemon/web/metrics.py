"""`/metrics`: the daemon's counters and gauges in the Prometheus text format.

Read from the running daemon at scrape time by one collector on a registry of its own: no
prometheus_client globals, so several daemons (tests) share a process.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.sources import FeedSource

if TYPE_CHECKING:
    from daemon.app import Daemon

__all__ = ["DaemonCollector"]


class DaemonCollector(Collector):
    """The daemon's counters and gauges, read when Prometheus scrapes."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        d = self.daemon
        yield GaugeMetricFamily("tickwatch_up", "1 while the daemon runs", value=1)
        yield GaugeMetricFamily(
            "tickwatch_primary",
            "1 while this instance is the primary (holds the lease); 0 while it stands by",
            value=0 if d.standby else 1,
        )
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
        yield CounterMetricFamily(
            "tickwatch_escalations",
            "Escalation steps sent: unacknowledged firings passed on to their escalate: channels",
            value=delivery.escalator.sent,
        )

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
