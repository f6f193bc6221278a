"""SIGTERM while Slack sends are on the wire: they finish and are recorded, no new send begins,
nothing is acknowledged unsent; after a restart every alert has arrived exactly once.

`tickwatch run` in a subprocess (the signal is the point) drains a burst to four Slack channels of
one fake Slack. Three fast channels each have a send held by the fake at the moment of SIGTERM;
the fourth, paced at one message per 20 s after its burst of 3, has its next message waiting for
the rate limit. The held sends are released only once the daemon says it is stopping.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from daemon.alerts import AlertEvent
from daemon.notify.channel_worker import STOP_GRACE_S
from daemon.notify.notification import Notification
from daemon.store.keys import Keys
from tests.chaos import ChaosTable
from tests.fakes.slack_server import FakeSlackServer
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.chaos]
FAST = ("desk1", "desk2", "desk3")
SLOW = "slow"
PER_FAST = 15
PER_SLOW = 4  # a burst of 3 goes at once, the 4th waits 20 s for the rate limit
ID = re.compile(r"sigterm-(\d+)\b")


def config(tmp: Path, redis_url: str, keys: Keys, slack: FakeSlackServer) -> Path:
    def channel(name: str, rate: float) -> str:
        return (f"  {name}: {{type: slack, token: {slack.token}, channel: '#{name}', "
                f"base_url: '{slack.base_url}', rate_limit: {rate}}}\n")  # fmt: skip

    channels = "".join(channel(c, 10000) for c in FAST) + channel(SLOW, 0.05)
    (tmp / "alerts.yaml").write_text(
        f'redis: {{url: "{redis_url}", prefix: {keys.prefix}}}\nchannels:\n{channels}'
    )
    return tmp / "alerts.yaml"


class Run:
    """`tickwatch run` with its log read line by line (to see it say it is stopping)."""

    def __init__(self, cfg: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TICKWATCH_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(cfg), "--log-level", "INFO"],
            cwd=cfg.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.stopping = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if "stopping: " in line and "under way" in line:
                self.stopping.set()

    async def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (killed, and the test failed, if it takes too long)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

    async def wait(self, timeout: float = 30) -> int:
        try:
            rc = await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(5)
        return rc

    @property
    def log(self) -> str:
        return "".join(self.lines)


def posts(slack: FakeSlackServer) -> list[Any]:
    return [r for r in slack.requests if r.path.endswith("chat.postMessage")]


def accepted(slack: FakeSlackServer) -> list[tuple[str, int]]:
    """(channel, alert number) of every message Slack accepted, repeats included."""
    return [(str(r.body["channel"]).lstrip("#"), int(m.group(1)))
            for r in posts(slack) if r.status == 200
            for m in [ID.search(str(r.body))] if m]  # fmt: skip


async def recorded(redis: Redis, keys: Keys, channel: str) -> tuple[set[int], set[int]]:
    """Of a channel's delivery stream: (alerts whose entry is acknowledged, alerts whose
    idempotency marker says "done")."""
    stream = keys.deliver(channel)
    entries = await redis.xrange(stream)
    groups = await redis.xinfo_groups(stream)
    [group] = [g for g in groups if g["name"] == keys.DELIVER_GROUP]
    last = tuple(int(x) for x in str(group["last-delivered-id"]).split("-"))
    pending = {str(p["message_id"]) for p in await redis.xpending_range(
        stream, keys.DELIVER_GROUP, min="-", max="+", count=10_000)}  # fmt: skip
    acked, done = set(), set()
    for entry_id, fields in entries:
        n = Notification.from_json(fields["n"])
        number = int(n.alert.labels["n"])
        read = tuple(int(x) for x in entry_id.split("-")) <= last
        if read and entry_id not in pending:
            acked.add(number)
        if await redis.get(keys.delivered(n.key, channel)) == "done":
            done.add(number)
    return acked, done


async def test_sigterm_mid_delivery_lets_in_flight_sends_finish_and_loses_nothing(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys,
    slack_server: FakeSlackServer, chaos: ChaosTable,
) -> None:  # fmt: skip
    now = int(time.time() * 1000)
    want: dict[str, set[int]] = {}
    i = 0
    for channel in (*FAST, SLOW):
        for _ in range(PER_SLOW if channel == SLOW else PER_FAST):
            a = AlertEvent(rule="burst", key=f"burst{{n={i}}}", state="firing", seq=1, ts_ms=now,
                           severity="warning", summary=f"sigterm-{i}", channels=(channel,),
                           labels={"n": str(i)})  # fmt: skip
            await redis.xadd(keys.outbox, {"alert": a.to_json()})
            want.setdefault(channel, set()).add(i)
            i += 1
    total = i
    slack_server.delay = 0.05  # a burst that lasts long enough to be caught mid-way
    gate = slack_server.hold = asyncio.Event()
    gate.set()  # open for now
    cfg = config(tmp_path, redis_url, keys, slack_server)

    def sent_on(channel: str) -> int:
        return sum(1 for c, _ in accepted(slack_server) if c == channel)

    def held() -> set[str]:
        return {str(r.body["channel"]).lstrip("#") for r in posts(slack_server) if r.status == 0}

    first = Run(cfg)
    try:
        await wait_until(
            lambda: sent_on(SLOW) == 3 and all(sent_on(c) >= 3 for c in FAST),
            30, "the burst under way on every channel",
        )  # fmt: skip
        gate.clear()  # from now on the fake holds every request it gets
        await wait_until(lambda: held() == set(FAST), 10, "a send held on each fast channel")
        on_the_wire = len(posts(slack_server))
        in_flight = held()
        before = {c: sent_on(c) for c in FAST}  # each fast worker is blocked on its held send
        assert sent_on(SLOW) == 3, "the slow channel's 4th message should wait for its rate"
        signalled = time.monotonic()
        first.proc.send_signal(signal.SIGTERM)
        await wait_until(first.stopping.is_set, 10, "the daemon to say it is stopping")
        gate.set()  # the held sends are answered now, while the daemon stops
        rc = await first.wait(30)
        took = time.monotonic() - signalled
    finally:
        gate.set()
        if first.proc.poll() is None:
            first.proc.kill()
    log = first.log
    assert rc == 0, log[-3000:]
    for bad in ("Traceback", "may be repeated", " ERROR "):
        assert bad not in log, f"{bad!r} in the log:\n{log[-3000:]}"
    [said] = [x for x in log.splitlines() if "stopping: " in x and "under way" in x]
    assert all(c in said for c in FAST), said  # the three held sends were under way
    # the slow channel's message waiting for its rate was not sent (nor waited for: 20 s)
    assert took < STOP_GRACE_S, f"stopping took {took:.1f}s"
    assert sent_on(SLOW) == 3
    # no send began after SIGTERM, and every one on the wire then was answered
    assert len(posts(slack_server)) == on_the_wire
    statuses = [r.status for r in posts(slack_server)]
    assert all(status == 200 for status in statuses), statuses
    at_stop = Counter(accepted(slack_server))
    assert all(n == 1 for n in at_stop.values()), at_stop
    for channel in (*FAST, SLOW):
        got = {n for c, n in at_stop if c == channel}
        acked, done = await recorded(redis, keys, channel)
        # acknowledged and marked done: exactly what Slack accepted, no more, no fewer
        assert acked == got == done, (channel, sorted(got ^ acked), sorted(got ^ done))
        assert got < want[channel], f"{channel}: nothing left for the restart"
    # each held send was answered and recorded before the exit, and nothing after it began
    assert {c: sent_on(c) for c in FAST} == {c: n + 1 for c, n in before.items()}
    print(
        f"\nSIGTERM with {len(in_flight)} sends held on the wire and 1 waiting for its rate; "
        f"{sum(at_stop.values())}/{total} sent before exit ({took:.2f}s after SIGTERM)"
    )

    second = Run(cfg)
    try:
        await wait_until(lambda: len(set(accepted(slack_server))) == total, 60,
                         "every alert after the restart")  # fmt: skip
    finally:
        rc2 = await second.stop()
    assert rc2 == 0, second.log[-3000:]
    delivered = accepted(slack_server)
    for channel in (*FAST, SLOW):
        assert {n for c, n in delivered if c == channel} == want[channel], channel
    chaos.record(
        "SIGTERM mid-delivery (in-flight sends finish), restarted",
        range(total),
        [n for _, n in delivered],
        up=rc == 0 and rc2 == 0,
        note=f"{len(in_flight)} sends on the wire finished, 1 rate-paced left queued",
    )
