"""The status page's event stream (`GET /events`) of a running daemon, over real HTTP: the first
snapshot at once with what the API says, another after a tick, the spread's series growing;
and beyond loopback the page and its stream need the token, as a header or as `?token=`.

Two rules: NVDA above 100 (fires), and the XMAG/MAGS YTD return spread below 8 (anchors 25 and
60 on Jan 1: XMAG 27.00 is +8%, MAGS 60.60 is +1%, a spread of 7.00, which fires).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest_asyncio
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import load_config
from daemon.events import Tick
from daemon.store import Keys, StreamStore
from tests.helpers import TS_MS, wait_until

TOKEN = "tw-page-token-0123456789"
ALERTS = """\
redis: {{url: "{url}", prefix: {prefix}}}
http: {{listen: "{listen}", token: "${{TICKWATCH_API_TOKEN:-}}"}}
anchors:
  XMAG: {{2026-01-01: 25.0}}
  MAGS: {{2026-01-01: 60.0}}
channels:
  console: {{type: console}}
rules:
  - name: nvda-above-100
    when: {{threshold: {{symbols: [NVDA], above: 100}}}}
    severity: critical
    channels: [console]
  - name: rotation-spread
    when: {{spread: {{a: XMAG, b: MAGS, as: return, since: ytd, below: 8}}}}
    severity: warning
    channels: [console]
"""
SPREAD_KEY = "rotation-spread{pair=XMAG/MAGS}"


async def start(tmp_path: Path, redis_url: str, keys: Keys, listen: str) -> Daemon:
    path = tmp_path / "alerts.yaml"
    path.write_text(ALERTS.format(url=redis_url, prefix=keys.prefix, listen=listen))
    d = Daemon(load_config(path, env={"TICKWATCH_API_TOKEN": TOKEN}), console=io.StringIO(),
               watch=False)  # fmt: skip
    await d.start()
    return d


@pytest_asyncio.fixture
async def daemon(tmp_path: Path, redis: Redis, redis_url: str, keys: Keys) -> AsyncIterator[Daemon]:
    d = await start(tmp_path, redis_url, keys, "127.0.0.1:0")
    ticks = [Tick("NVDA", TS_MS, 101.5), Tick("XMAG", TS_MS, 27.0), Tick("MAGS", TS_MS, 60.6)]
    await StreamStore(redis, keys).write(ticks)
    await wait_until(lambda: d.delivery is not None and d.delivery.sent.get("console") == 2, 20,
                     "both alerts delivered")  # fmt: skip
    try:
        yield d
    finally:
        await d.stop()


async def snapshots(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    assert resp.status == 200, resp.status
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    async for line in resp.content:
        if line.startswith(b"data: "):
            yield orjson.loads(line[6:])


async def test_the_first_snapshot_says_what_the_api_says_and_more_follow(
    daemon: Daemon, redis: Redis, keys: Keys
) -> None:
    assert daemon.http is not None
    base = f"http://127.0.0.1:{daemon.http.port}"
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        async with s.get(base + "/api/alerts") as r:
            api_alerts = (await r.json())["alerts"]
        async with s.get(base + "/events") as r:
            stream = snapshots(r)
            first = await anext(stream)
            assert first["alerts"] == api_alerts
            assert [(a["key"], a["state"]) for a in first["alerts"]] == [
                ("nvda-above-100{symbol=NVDA}", "firing"), (SPREAD_KEY, "firing")]  # fmt: skip
            spread = next(a for a in first["alerts"] if a["key"] == SPREAD_KEY)
            assert (round(spread["value"], 6), spread["threshold"], spread["comparison"]) == (
                7.0, 8.0, "below")  # fmt: skip
            assert [r["name"] for r in first["rules"]] == ["nvda-above-100", "rotation-spread"]
            assert {a["key"] for a in first["recent"]} == {"nvda-above-100{symbol=NVDA}",
                                                           SPREAD_KEY}  # fmt: skip
            assert first["silences"] == [] and first["errors"] == []
            assert first["health"]["redis"] == "ok" and "ready" in first["ready"]
            [series] = first["spreads"]
            assert (series["key"], series["rule"], series["threshold"]) == (
                SPREAD_KEY, "rotation-spread", 8.0)  # fmt: skip

            # XMAG 27.30 is +9.2%: the spread is 8.20, no longer below 8; the next snapshot says so
            await StreamStore(redis, keys).write([Tick("XMAG", TS_MS + 1000, 27.3)])
            async for snap in stream:
                rows = {a["key"]: a for rule in snap["rules"] for a in rule["alerts"]}
                if round(rows[SPREAD_KEY]["value"], 6) == 8.2:
                    break
            assert rows[SPREAD_KEY]["state"] == "resolved"
            assert [a["key"] for a in snap["alerts"]] == ["nvda-above-100{symbol=NVDA}"]
            [series] = snap["spreads"]
            assert round(series["value"], 6) == 8.2 == round(series["points"][-1][1], 6)
            assert {round(v, 6) for _, v in series["points"]} <= {7.0, 8.2}
            grown = (await anext(stream))["spreads"][0]["points"]  # one sample a second
            assert (
                len(grown) == len(series["points"]) + 1 and grown[-1][0] > series["points"][-1][0]
            )


async def test_the_page_is_one_self_contained_file(daemon: Daemon) -> None:
    assert daemon.http is not None
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"http://127.0.0.1:{daemon.http.port}/") as r,
    ):
        html = await r.text()
        assert r.status == 200 and r.content_type == "text/html"
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert "new EventSource(url)" in html and "innerHTML" not in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html


async def test_beyond_loopback_the_page_and_its_stream_need_the_token(
    tmp_path: Path, redis_url: str, keys: Keys
) -> None:
    """127.0.0.2 is still this machine, but not an address the daemon treats as private."""
    d = await start(tmp_path, redis_url, keys, "127.0.0.2:0")
    try:
        assert d.http is not None
        base = f"http://127.0.0.2:{d.http.port}"
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        cases = [
            ("/", {}, 401),
            ("/", bearer, 200),
            (f"/?token={TOKEN}", {}, 200),
            ("/?token=wrong", {}, 401),
            ("/events", {}, 401),
            ("/events?token=", {}, 401),
            ("/events?token=wrong", {}, 401),
            # the query token is for what a browser opens, not for the API
            (f"/api/alerts?token={TOKEN}", {}, 401),
            (f"/status?token={TOKEN}", {}, 401),
        ]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            for path, headers, want in cases:
                async with s.get(base + path, headers=headers) as r:
                    assert r.status == want, (path, headers, r.status)
            for path, headers in [(f"/events?token={TOKEN}", {}), ("/events", bearer)]:
                async with s.get(base + path, headers=headers) as r:
                    first = await anext(snapshots(r))
                    assert first["rules"][0]["name"] == "nvda-above-100"
            async with s.get(base + "/") as r:
                assert "/?token=" in (await r.json())["error"]
            async with s.post(base + f"/?token={TOKEN}") as r:
                assert r.status in (401, 405)  # a POST never takes the query token
    finally:
        await d.stop()


async def test_the_daemon_stops_at_once_with_a_page_open(
    tmp_path: Path, redis_url: str, keys: Keys
) -> None:
    """aiohttp waits up to a minute for open requests to end: the streams end at shutdown."""
    d = await start(tmp_path, redis_url, keys, "127.0.0.1:0")
    assert d.http is not None
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s,
        s.get(f"http://127.0.0.1:{d.http.port}/events") as r,
    ):
        stream = snapshots(r)
        await anext(stream)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await d.stop()
        assert loop.time() - started < 5
        assert [snap async for snap in stream] == []  # the stream ended, cleanly
