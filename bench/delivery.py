"""Benchmark: alert-to-Slack latency at 100 alerts/s, and what a stalled SMS channel does to it.

Three runs against the same loopback fakes (real slack-sdk and twilio clients). The fakes run
in a child process, as real Slack and Twilio would run elsewhere, so their CPU is not counted
against the daemon's:

1. baseline: slack-sdk's `chat_postMessage` called directly at the same pace, so the figures
   below can be read as ratios on this shared, noisy machine;
2. tickwatch: alerts appended to the outbox at 100/s, through router → Slack and SMS workers;
   latency = from the alert's event time to Slack's answer, as the Slack worker saw it;
3. the same with the fake Twilio stalled (every request held) for `--stall` seconds: the Slack
   p99 should not move, because each channel has its own stream and worker. (One event loop
   runs everything, as in the daemon: the stalled requests cost nothing while they wait.)

The channels' own rate limits (Slack allows about 1 message/s per channel) are lifted for the
benchmark, so it measures tickwatch, not the throttle. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from bench._common import fig, latency_series, percentiles, write_json  # noqa: E402
from daemon.alerts import AlertEvent  # noqa: E402
from daemon.notify.base import Notifier  # noqa: E402
from daemon.notify.delivery import Delivery  # noqa: E402
from daemon.notify.delivery_settings import DeliverySettings  # noqa: E402
from daemon.notify.slack import SlackConfig, SlackNotifier  # noqa: E402
from daemon.notify.sms import SmsConfig, SmsNotifier  # noqa: E402
from daemon.store.connect import connect  # noqa: E402
from daemon.store.embedded import EmbeddedRedis  # noqa: E402
from daemon.store.keys import Keys  # noqa: E402
from tests.fakes.slack_server import FakeSlackServer  # noqa: E402
from tests.fakes.twilio_server import FakeTwilioServer  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def serve_fakes(conn: Connection) -> None:
    """Child process: the fake Slack and Twilio, until told to stop; `stall N` holds Twilio."""

    async def run() -> None:
        async with FakeSlackServer() as slack, FakeTwilioServer() as twilio:
            conn.send((slack.base_url, slack.token, twilio.origin, twilio.account_sid,
                       twilio.auth_token))  # fmt: skip
            loop = asyncio.get_running_loop()
            while True:
                cmd = await loop.run_in_executor(None, conn.recv)
                if cmd == "stop":
                    return
                twilio.hold = asyncio.Event()
                loop.call_later(float(cmd), twilio.hold.set)

    asyncio.run(run())


def notifiers(fakes: tuple[str, str, str, str, str]) -> dict[str, Notifier]:
    slack_url, slack_token, twilio_url, sid, token = fakes
    return {
        "slack": SlackNotifier("slack", SlackConfig(
            type="slack", token=slack_token, channel="#desk", base_url=slack_url,
            rate_limit=10_000,
        )),
        "sms": SmsNotifier("sms", SmsConfig.model_validate({
            "type": "sms", "account_sid": sid, "auth_token": token,
            "from": "+15550100000", "to": ["+15550100001"], "base_url": twilio_url,
            "rate_limit": 10_000,
        })),
    }  # fmt: skip


async def baseline(fakes: tuple[str, str, str, str, str], n: int, rate: float) -> list[float]:
    """slack-sdk's own round trip to the fake, at the same pace."""
    client = AsyncWebClient(token=fakes[1], base_url=fakes[0])
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        start = time.perf_counter()
        await client.chat_postMessage(channel="#desk", text=f"baseline {i}")
        lat.append(time.perf_counter() - start)
    return lat


async def through_tickwatch(
    redis_url: str,
    fakes: tuple[str, str, str, str, str],
    n: int,
    rate: float,
    tag: str,
    stall: Callable[[], None] | None = None,
) -> tuple[list[float], int, float, float]:
    """Slack latencies (s), SMS delivered, seconds until SMS caught up, CPU ms per alert."""
    redis = connect(redis_url)
    keys = Keys(f"bench{tag}")
    nots = notifiers(fakes)
    d = Delivery(
        redis, keys,
        DeliverySettings(route=None, inhibit_rules=[], max_alert_age_ms=15 * 60_000,
                         channels={k: v.config for k, v in nots.items()}),
        nots, instance=tag,
    )  # fmt: skip
    tasks = [asyncio.create_task(loop()) for _, loop in d.stages()]
    if stall is not None:
        stall()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        a = AlertEvent(
            rule="bench", key=f"bench{{n={i}}}", state="firing", seq=1,
            ts_ms=int(time.time() * 1000), severity="warning", summary=f"bench {i}",
            channels=("slack", "sms"), labels={"n": str(i)},
        )  # fmt: skip
        await redis.xadd(keys.outbox, {"alert": a.to_json()})
    slack, sms = d.workers["slack"], d.workers["sms"]
    deadline = time.monotonic() + 180
    while (slack.stats.sent < n or sms.stats.sent < n) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    caught_up = time.perf_counter() - t0
    cpu_ms = (time.process_time() - cpu0) / n * 1000
    lat = list(slack.stats.latencies)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for x in nots.values():
        await x.aclose()
    await redis.aclose()
    return lat, sms.stats.sent, caught_up, cpu_ms


async def main(n: int, rate: float, stall_s: float, json_path: str | None = None) -> None:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve_fakes, args=(child,), daemon=True)
    proc.start()
    fakes = parent.recv()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), persist=False).start()
        try:
            base = await baseline(fakes, min(n, 500), rate)
            ok, sms_ok, _, cpu = await through_tickwatch(server.url, fakes, n, rate, "a")
            st, sms_st, caught, _ = await through_tickwatch(
                server.url, fakes, n, rate, "b", stall=lambda: parent.send(str(stall_s))
            )
        finally:
            server.stop()
            parent.send("stop")
            proc.join(10)
    b50, b99 = pct(base, 0.5), pct(base, 0.99)
    print(f"alerts: {n} at {rate:g}/s to Slack and SMS each; fakes in another process\n")
    print(f"{'run':<46} {'p50 ms':>8} {'p99 ms':>8} {'p50 ×base':>10} {'p99 ×base':>10}")
    rows = [
        ("baseline: slack-sdk chat_postMessage round trip", base),
        ("tickwatch: alert → outbox → router → Slack", ok),
        (f"same, with the SMS channel stalled {stall_s:g}s", st),
    ]
    for name, xs in rows:
        p50, p99 = pct(xs, 0.5), pct(xs, 0.99)
        print(f"{name:<46} {p50:8.1f} {p99:8.1f} {p50 / b50:10.2f} {p99 / b99:10.2f}")
    print(f"\nSlack sent: {len(ok)}/{n}, and {len(st)}/{n} with SMS stalled")
    print(f"SMS sent:   {sms_ok}/{n}, and {sms_st}/{n} after the stall (all by {caught:.1f}s)")
    print(f"Slack p99, SMS stalled vs not: {pct(st, 0.99) / pct(ok, 0.99):.2f}x")
    print(f"daemon CPU per alert (router + both workers + Redis client): {cpu:.2f} ms")
    if json_path:
        rt = "slack-sdk chat_postMessage round trip"
        figures = [
            fig(f"alert → Slack p50 at {rate:g}/s", pct(ok, 0.5), "ms", baseline=rt,
                baseline_value=b50),
            fig(f"alert → Slack p99 at {rate:g}/s", pct(ok, 0.99), "ms", baseline=rt,
                baseline_value=b99),
            fig(f"same, SMS stalled {stall_s:g}s: p99", pct(st, 0.99), "ms",
                baseline="p99, SMS not stalled", baseline_value=pct(ok, 0.99)),
            fig("daemon CPU per alert", cpu, "ms"),
        ]  # fmt: skip
        latency = [
            latency_series("slack-sdk round trip", percentiles(base), n=len(base), baseline=True),
            latency_series("alert → outbox → router → Slack", percentiles(ok), n=len(ok)),
            latency_series(f"same, SMS stalled {stall_s:g}s", percentiles(st), n=len(st)),
        ]  # fmt: skip
        write_json(json_path, "delivery", f"alert → Slack at {rate:g} alerts/s", figures,
                   latency=latency)  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--stall", type=float, default=30.0)
    ap.add_argument("--json", metavar="FILE", help="also write the headline figures here")
    a = ap.parse_args()
    asyncio.run(main(a.alerts, a.rate, a.stall, a.json))
