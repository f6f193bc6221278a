"""The dead-man's switch against a loopback healthchecks-style endpoint, on a running daemon.

The daemon is real (its Redis, evaluator and `/healthz` verdict, `daemon.web.health.health`), the
endpoint is an aiohttp server on 127.0.0.1 that records each ping, and the pinger is
`schedule.Jobs` with `deadman:` from a loaded alerts.yaml, pinging every second.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from daemon.app import Daemon
from daemon.config import ConfigError, load_config
from daemon.deadman import Deadman
from daemon.events import Tick
from daemon.schedule import Jobs
from daemon.store.embedded import EmbeddedRedis
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from daemon.web.health import health
from tests.fakes import FakeHTTPServer, Injection
from tests.helpers import wait_until

TOKEN = "0f7e3c1a-5b2d-4e8f-9a6b-deadbeef1234"  # a healthchecks.io check's uuid: the secret
ALERTS = """\
redis: {{url: "{url}", prefix: {prefix}}}
deadman: {{url: "${{DEADMAN_URL}}", every: {every}, timeout: {timeout}}}
channels:
  console: {{type: console}}
rules:
  - name: nvda-100
    when: {{threshold: {{symbols: NVDA, above: 100}}}}
    channels: [console]
"""
T0 = 1_775_000_000_000


class FakePingServer(FakeHTTPServer):
    """healthchecks.io's ping API in miniature: GET or POST /ping/<uuid> answers 200 "OK"."""

    @property
    def url(self) -> str:
        return f"{self.origin}/ping/{TOKEN}"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._ping)
        return app

    async def _ping(self, request: web.Request) -> web.Response:
        rec = await self.read_request(request)
        injection = self.take_injection(rec)
        if injection is not None:
            return self.respond(rec, injection.status, injection.payload, injection.headers)
        if rec.path != f"/ping/{TOKEN}":
            return self.respond(rec, 404, "not found")
        return self.respond(rec, 200, "OK")


@pytest_asyncio.fixture
async def pings() -> AsyncIterator[FakePingServer]:
    async with FakePingServer() as server:
        yield server


def write_config(
    tmp_path: Path, url: str, prefix: str, every: str = "1s", timeout: str = "500ms"
) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(ALERTS.format(url=url, prefix=prefix, every=every, timeout=timeout))
    return path


async def start(path: Path, ping_url: str) -> tuple[Daemon, Jobs]:
    """A running daemon, and the dead-man's switch wired to it as `app.Daemon` wires it."""
    cfg = load_config(path, env={"DEADMAN_URL": ping_url})
    daemon = Daemon(cfg, console=io.StringIO(), watch=False)
    await daemon.start()
    assert daemon.ops_store is not None and daemon.evaluator is not None
    if daemon.jobs is not None and daemon.jobs.deadman is not None:
        jobs = daemon.jobs  # app.py passes deadman= and health= itself
    else:
        jobs = Jobs(
            [],
            daemon.ops_store,
            daemon.evaluator,
            daemon.delivery,
            started_at=daemon.started_at,
            deadman=cfg.settings.deadman,
            health=lambda: health(daemon),
        )
        jobs.start(daemon._spawn)
    return daemon, jobs


async def stop(daemon: Daemon, jobs: Jobs) -> None:
    jobs.shutdown()
    await daemon.stop()


def pinger(jobs: Jobs) -> Deadman:
    assert jobs.deadman is not None
    return jobs.deadman


def deadman_lines(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tickwatch.deadman"
            and text in r.getMessage()]  # fmt: skip


async def test_pings_go_out_every_interval_while_the_daemon_is_healthy(
    tmp_path: Path, redis_url: str, keys: Keys, pings: FakePingServer
) -> None:
    daemon, jobs = await start(write_config(tmp_path, redis_url, keys.prefix), pings.url)
    try:
        got = await pings.wait_for(lambda rs: len(rs) >= 4, timeout=10)
        assert pinger(jobs).sent >= 3 and pinger(jobs).failed == 0
        assert {(r.method, r.path, r.status) for r in got} == {("GET", f"/ping/{TOKEN}", 200)}
        assert got[0].raw == b""  # a plain GET: every healthchecks-style service takes one
        assert got[0].headers["User-Agent"].startswith("tickwatch/")
        # once per `every` (1s), not a burst; the first ping (at start) may run late, so the
        # gaps are measured from the second on, which keep to the interval's grid
        gaps = [b.at - a.at for a, b in itertools.pairwise(got[1:])]
        assert all(gap > 0.5 for gap in gaps), gaps
    finally:
        await stop(daemon, jobs)


async def test_a_failing_or_hanging_endpoint_is_logged_once_and_never_stops_the_daemon(
    tmp_path: Path,
    redis_url: str,
    keys: Keys,
    pings: FakePingServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    pings.inject(Injection(500, "boom", times=2))
    daemon, jobs = await start(write_config(tmp_path, redis_url, keys.prefix), pings.url)
    deadman = pinger(jobs)
    try:
        await wait_until(lambda: deadman.failed >= 2, 10, "two pings answered 500")
        pings.hold = asyncio.Event()  # now the endpoint hangs: each ping times out (500ms)
        await wait_until(lambda: deadman.failed >= 4, 10, "two pings timed out")
        # the daemon does its work meanwhile: a tick is judged while the endpoint hangs
        assert daemon.redis is not None
        await StreamStore(daemon.redis, daemon.keys).write([Tick("NVDA", T0, 101.0)])
        await wait_until(lambda: daemon.evaluator is not None and daemon.evaluator.stats.ticks
                         == 1, 10, "the tick evaluated")  # fmt: skip
        assert deadman.sent == 0
        pings.hold.set()
        pings.hold = None
        await wait_until(lambda: deadman.sent >= 1, 10, "a ping answered 200 again")
        assert not daemon.failed.is_set()
    finally:
        await stop(daemon, jobs)
    failed = deadman_lines(caplog, "failed")
    assert len(failed) == 1, failed  # one line for the whole streak, not one a minute
    assert "HTTP 500" in failed[0] and f"127.0.0.1:{pings.port}" in failed[0]
    recovered = deadman_lines(caplog, "recovered")
    assert len(recovered) == 1 and f"after {deadman.failed} failure(s)" in recovered[0]
    assert TOKEN not in caplog.text  # only the host is ever logged
    assert "ping/" not in caplog.text


async def test_a_daemon_that_lost_redis_stops_pinging(
    tmp_path: Path, pings: FakePingServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    daemon, jobs = await start(write_config(tmp_path, server.url, "dm"), pings.url)
    deadman = pinger(jobs)
    try:
        await pings.wait_for(lambda rs: len(rs) >= 1, timeout=10)
        server.stop()
        await wait_until(lambda: deadman.skipped >= 1, 10, "a turn skipped")
        before = len(pings.requests)  # turns run one at a time: no ping is under way
        await wait_until(lambda: deadman.skipped >= 3, 10, "three turns skipped")
        assert len(pings.requests) == before  # the service will raise the alarm
    finally:
        await stop(daemon, jobs)
        server.stop()
    skipped = deadman_lines(caplog, "not pinging")
    assert len(skipped) == 1 and "redis" in skipped[0], skipped


def test_a_url_that_is_not_http_is_a_clear_config_error_that_does_not_echo_it(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, "redis://127.0.0.1:6379/0", "dm", every="1m", timeout="10s")
    with pytest.raises(ConfigError) as e:
        load_config(path, env={"DEADMAN_URL": f"hc-ping.com/{TOKEN}"})
    assert "deadman.url" in str(e.value) and "not an http(s) URL" in str(e.value)
    assert TOKEN not in str(e.value)
    with pytest.raises(ConfigError, match=r"not an http\(s\) URL \(ftp:\)"):
        load_config(path, env={"DEADMAN_URL": f"ftp://hc-ping.com/{TOKEN}"})


@pytest.mark.parametrize(
    ("every", "timeout", "problem"),
    [("500ms", "100ms", "too often"), ("5s", "10s", "must be shorter than every")],
)
def test_timing_that_cannot_work_is_refused(
    tmp_path: Path, every: str, timeout: str, problem: str
) -> None:
    path = write_config(tmp_path, "redis://127.0.0.1:6379/0", "dm", every, timeout)
    with pytest.raises(ConfigError, match=problem):
        load_config(path, env={"DEADMAN_URL": f"https://hc-ping.com/{TOKEN}"})


def test_the_url_is_masked_in_the_dump_and_an_empty_one_is_off(tmp_path: Path) -> None:
    path = write_config(tmp_path, "redis://127.0.0.1:6379/0", "dm", every="1m", timeout="10s")
    cfg = load_config(path, env={"DEADMAN_URL": f"https://hc-ping.com/{TOKEN}"})
    assert cfg.settings.deadman is not None and cfg.settings.deadman.host == "hc-ping.com"
    assert cfg.dump()["deadman"] == {"url": "**********", "every": "1m", "timeout": "10s"}
    assert TOKEN not in repr(cfg.settings)
    off = load_config(path, env={"DEADMAN_URL": ""}).settings.deadman
    assert off is not None and not off.enabled  # `url: ${DEADMAN_URL:-}` ships switched off
