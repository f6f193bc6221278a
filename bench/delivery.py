"""Benchmark: alert-to-Slack latency at 100 alerts/s, and what a stalled SMS channel does to it.

Three runs in one process against the same loopback fakes (real slack-sdk and twilio clients):

1. baseline: slack-sdk's `chat_postMessage` called directly at the same pace, so the figures
   below can be read as ratios on this shared, noisy machine;
2. tickwatch: alerts appended to the outbox at 100/s, through router → Slack and SMS workers;
   latency = the fake Slack's arrival time minus the alert's event time;
3. the same with the fake Twilio stalled (every request held) for `--stall` seconds: the Slack
   p99 should not move, because each channel has its own stream and worker.

The channels' own rate limits (Slack allows about 1 message/s per channel) are lifted for the
benchmark, so it measures tickwatch, not the throttle. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from daemon.alerts import AlertEvent  # noqa: E402
from daemon.notify.delivery import Delivery, DeliverySettings  # noqa: E402
from daemon.notify.slack import SlackConfig, SlackNotifier  # noqa: E402
from daemon.notify.sms import SmsConfig, SmsNotifier  # noqa: E402
from daemon.store.connect import connect  # noqa: E402
from daemon.store.embedded import EmbeddedRedis  # noqa: E402
from daemon.store.keys import Keys  # noqa: E402
from tests.fakes.slack_server import FakeSlackServer  # noqa: E402
from tests.fakes.twilio_server import FakeTwilioServer  # noqa: E402

TOKEN = re.compile(r"bench-(\d+)-(\d+)")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def arrivals(slack: FakeSlackServer, since: int) -> dict[int, float]:
    """Alert number → latency (s), from what the fake Slack received."""
    out = {}
    for r in slack.requests[since:]:
        if r.path.endswith("chat.postMessage") and r.status == 200:
            m = TOKEN.search(json.dumps(r.body))
            if m:
                out[int(m.group(1))] = r.at - int(m.group(2)) / 1000
    return out


async def baseline(slack: FakeSlackServer, n: int, rate: float) -> list[float]:
    client = AsyncWebClient(token=slack.token, base_url=slack.base_url)
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        start = time.time()
        await client.chat_postMessage(channel="#desk", text=f"baseline {i}")
        lat.append(slack.requests[-1].at - start)
    return lat


def notifiers(slack: FakeSlackServer, twilio: FakeTwilioServer) -> dict:  # type: ignore[type-arg]
    return {
        "slack": SlackNotifier("slack", SlackConfig(
            type="slack", token=slack.token, channel="#desk", base_url=slack.base_url,
            rate_limit=10_000,
        )),
        "sms": SmsNotifier("sms", SmsConfig.model_validate({
            "type": "sms", "account_sid": twilio.account_sid, "auth_token": twilio.auth_token,
            "from": "+15550100000", "to": ["+15550100001"], "base_url": twilio.origin,
            "rate_limit": 10_000,
        })),
    }  # fmt: skip


async def through_tickwatch(
    redis_url: str,
    slack: FakeSlackServer,
    twilio: FakeTwilioServer,
    n: int,
    rate: float,
    stall_s: float,
    tag: str,
) -> tuple[list[float], int, float]:
    """Latencies of the Slack deliveries; SMS delivered; seconds until SMS caught up."""
    redis = connect(redis_url)
    keys = Keys(f"bench{tag}")
    nots = notifiers(slack, twilio)
    d = Delivery(
        redis, keys,
        DeliverySettings(route=None, inhibit_rules=[], max_alert_age_ms=15 * 60_000,
                         channels={k: v.config for k, v in nots.items()}),
        nots, instance=tag,
    )  # fmt: skip
    tasks = [asyncio.create_task(loop()) for _, loop in d.stages()]
    seen_slack = len(slack.requests)
    sms_before = len(twilio.sent)
    if stall_s:
        twilio.hold = asyncio.Event()
        asyncio.get_running_loop().call_later(stall_s, twilio.hold.set)
    t0 = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        now = int(time.time() * 1000)
        a = AlertEvent(
            rule="bench", key=f"bench{{n={i}}}", state="firing", seq=1, ts_ms=now,
            severity="warning", summary=f"bench-{i}-{now}", channels=("slack", "sms"),
            labels={"n": str(i)},
        )  # fmt: skip
        await redis.xadd(keys.outbox, {"alert": a.to_json()})
    deadline = time.monotonic() + 120 + stall_s
    while len(arrivals(slack, seen_slack)) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    lat = list(arrivals(slack, seen_slack).values())
    while len(twilio.sent) - sms_before < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    caught_up = time.perf_counter() - t0
    twilio.hold = None
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for x in nots.values():
        await x.aclose()
    await redis.aclose()
    return lat, len(twilio.sent) - sms_before, caught_up


async def main(n: int, rate: float, stall: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), persist=False).start()
        try:
            async with FakeSlackServer() as slack, FakeTwilioServer() as twilio:
                base = await baseline(slack, min(n, 300), rate)
                ok, sms_ok, _ = await through_tickwatch(server.url, slack, twilio, n, rate, 0, "a")
                st, sms_st, caught = await through_tickwatch(
                    server.url, slack, twilio, n, rate, stall, "b"
                )
        finally:
            server.stop()
    b50, b99 = pct(base, 0.5), pct(base, 0.99)
    print(f"alerts: {n} at {rate:g}/s, Slack and SMS each; machine-relative figures\n")
    print(f"{'run':<44} {'p50 ms':>8} {'p99 ms':>8} {'p50 ×base':>10} {'p99 ×base':>10}")
    rows = [
        ("baseline: slack-sdk post, direct", base),
        ("tickwatch: outbox → router → Slack worker", ok),
        (f"same, SMS channel stalled {stall:g}s", st),
    ]
    for name, xs in rows:
        p50, p99 = pct(xs, 0.5), pct(xs, 0.99)
        print(f"{name:<44} {p50:8.1f} {p99:8.1f} {p50 / b50:10.2f} {p99 / b99:10.2f}")
    print(f"\nSlack delivered: {len(ok)}/{n} and {len(st)}/{n} (stalled run)")
    print(f"SMS delivered:   {sms_ok}/{n} and {sms_st}/{n} (all after the stall: {caught:.1f}s)")
    print(f"Slack p99 with SMS stalled vs without: {pct(st, 0.99) / pct(ok, 0.99):.2f}×")
    print(f"Slack p50 mean over runs: {statistics.mean([pct(ok, 0.5), pct(st, 0.5)]):.1f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--stall", type=float, default=30.0)
    a = ap.parse_args()
    asyncio.run(main(a.alerts, a.rate, a.stall))
