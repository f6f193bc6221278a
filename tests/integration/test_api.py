"""The JSON API of a running daemon, over real HTTP on loopback: what is firing with its value
against its threshold, every rule, recent alerts, silences, acks; writes need the token.

Two symbols on one rule and a spread-free threshold keep it readable: NVDA crosses 100 and
fires, MSFT stays under and is inactive. `tickwatch alerts` reads the same endpoint.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.cli import main
from daemon.config import load_config
from daemon.events import Tick
from daemon.store import Keys, StreamStore
from tests.helpers import wait_until

TOKEN = "tw-api-token-0123456789"
T0 = 1_775_000_000_000
ALERTS = """\
redis: {{url: "{url}", prefix: {prefix}}}
http: {{listen: "127.0.0.1:0", token: "${{TICKWATCH_API_TOKEN:-}}"}}
channels:
  console: {{type: console}}
rules:
  - name: above-100
    when: {{threshold: {{symbols: [NVDA, MSFT], above: 100}}}}
    severity: critical
    channels: [console]
"""


@pytest_asyncio.fixture
async def daemon(tmp_path: Path, redis: Redis, redis_url: str, keys: Keys) -> AsyncIterator[Daemon]:
    path = tmp_path / "alerts.yaml"
    path.write_text(ALERTS.format(url=redis_url, prefix=keys.prefix))
    d = Daemon(load_config(path, env={"TICKWATCH_API_TOKEN": TOKEN}), console=io.StringIO(),
               watch=False)  # fmt: skip
    await d.start()
    await StreamStore(redis, keys).write([
        Tick("MSFT", T0, 90.0), Tick("NVDA", T0, 99.0), Tick("NVDA", T0 + 1, 101.5)])  # fmt: skip
    await wait_until(lambda: d.delivery is not None and d.delivery.sent.get("console") == 1, 20,
                     "the NVDA alert delivered")  # fmt: skip
    try:
        yield d
    finally:
        await d.stop()


async def call(d: Daemon, method: str, path: str, *, token: str | None = None,
               json: Any = None) -> tuple[int, Any]:  # fmt: skip
    assert d.http is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, f"http://127.0.0.1:{d.http.port}{path}", headers=headers, json=json) as r,
    ):
        return r.status, await r.json(content_type=None)


async def test_alerts_shows_what_fires_with_its_value_against_its_threshold(daemon: Daemon) -> None:
    status, body = await call(daemon, "GET", "/api/alerts")
    assert status == 200
    [nvda] = body["alerts"]
    assert (nvda["key"], nvda["state"], nvda["severity"]) == (
        "above-100{symbol=NVDA}", "firing", "critical")  # fmt: skip
    assert (nvda["value"], nvda["threshold"], nvda["comparison"]) == (101.5, 100.0, "above")
    assert nvda["since_ms"] == T0 + 1 and nvda["number"] == 1 and nvda["ack"] is None
    status, body = await call(daemon, "GET", "/api/rules")
    [rule] = body["rules"]
    states = {a["key"]: (a["state"], a["value"]) for a in rule["alerts"]}
    assert states == {"above-100{symbol=MSFT}": ("inactive", 90.0),
                      "above-100{symbol=NVDA}": ("firing", 101.5)}  # fmt: skip
    status, body = await call(daemon, "GET", "/api/alerts/history?limit=5")
    assert [(a["key"], a["state"]) for a in body["alerts"]] == [
        ("above-100{symbol=NVDA}", "firing")
    ]
    assert (await call(daemon, "GET", "/api/alerts/history?limit=x"))[0] == 400


async def test_writes_need_the_token_and_then_ack_and_silence(daemon: Daemon, redis: Redis,
                                                             keys: Keys) -> None:  # fmt: skip
    key = "above-100{symbol=NVDA}"
    for token in (None, "wrong"):
        status, body = await call(daemon, "POST", f"/api/alerts/{key}/ack", token=token,
                                  json={"by": "ann"})  # fmt: skip
        assert status == 401 and "bearer token" in body["error"]
        status, _ = await call(daemon, "POST", "/api/silences", token=token,
                               json={"matchers": ["symbol=NVDA"], "for": "1h", "author": "a",
                                     "reason": "r"})  # fmt: skip
        assert status == 401
    assert await redis.hgetall(keys.acks) == {} and await redis.hgetall(keys.silences) == {}
    status, body = await call(daemon, "POST", f"/api/alerts/{key}/ack", token=TOKEN,
                              json={"by": "ann"})  # fmt: skip
    assert status == 200 and body["acked"] == key
    [nvda] = (await call(daemon, "GET", "/api/alerts"))[1]["alerts"]
    assert (nvda["ack"]["by"], nvda["ack"]["via"]) == ("ann", "api")
    status, s = await call(daemon, "POST", "/api/silences", token=TOKEN,
                           json={"matchers": ["symbol=NVDA"], "for": "2h", "author": "ann",
                                 "reason": "earnings"})  # fmt: skip
    assert status == 201 and s["matchers"] == ["symbol=NVDA"]
    listed = (await call(daemon, "GET", "/api/silences"))[1]["silences"]
    assert [(x["id"], x["active"]) for x in listed] == [(s["id"], True)]
    assert (await call(daemon, "DELETE", f"/api/silences/{s['id']}"))[0] == 401
    status, ended = await call(daemon, "DELETE", f"/api/silences/{s['id']}", token=TOKEN)
    assert status == 200 and ended["ends_ms"] <= ended["created_ms"] + 10**7
    status, body = await call(daemon, "POST", "/api/silences", token=TOKEN,
                              json={"matchers": "symbol=NVDA", "for": "2h"})  # fmt: skip
    assert status == 400 and "matchers must be a list" in body["error"]


async def test_writes_are_off_without_a_token_configured(tmp_path: Path, redis_url: str,
                                                         keys: Keys) -> None:  # fmt: skip
    path = tmp_path / "alerts.yaml"
    path.write_text(ALERTS.format(url=redis_url, prefix=keys.prefix))
    d = Daemon(load_config(path, env={}), console=io.StringIO(), watch=False)
    await d.start()
    try:
        status, body = await call(d, "POST", "/api/silences", token="anything",
                                  json={"matchers": ["symbol=NVDA"], "for": "1h"})  # fmt: skip
        assert status == 403 and "set http.token" in body["error"]
    finally:
        await d.stop()


async def test_tickwatch_alerts_prints_what_the_api_says(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert daemon.http is not None
    cfg = tmp_path / "alerts.yaml"
    cfg.write_text(cfg.read_text().replace('"127.0.0.1:0"', f'"127.0.0.1:{daemon.http.port}"'))
    rc = await asyncio.to_thread(main, ["alerts", "--config", str(cfg)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "#1  FIRING   critical  above-100{symbol=NVDA}  101.5 above 100  since " in out
    assert out.rstrip().endswith("not acked")


async def test_beyond_loopback_every_request_but_health_and_webhooks_needs_the_token(
    tmp_path: Path, redis_url: str, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """127.0.0.2 is still this machine, but not an address the daemon treats as private."""
    path = tmp_path / "alerts.yaml"
    path.write_text(ALERTS.format(url=redis_url, prefix=keys.prefix).replace(
        "127.0.0.1:0", "127.0.0.2:0"))  # fmt: skip
    d = Daemon(load_config(path, env={"TICKWATCH_API_TOKEN": TOKEN}), console=io.StringIO(),
               watch=False)  # fmt: skip
    await d.start()
    try:
        assert d.http is not None
        base = f"http://127.0.0.2:{d.http.port}"
        async with aiohttp.ClientSession() as s:
            cases = [("/api/alerts", None, 401), ("/api/alerts", TOKEN, 200),
                     ("/status", None, 401), ("/metrics", None, 401),
                     ("/healthz", None, 200), ("/readyz", None, 200)]  # fmt: skip
            for path_, token, want in cases:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                async with s.get(base + path_, headers=headers) as r:
                    assert r.status == want, (path_, token, r.status)
            async with s.post(base + "/hooks/slack/actions", data=b"payload=%7B%7D") as r:
                assert r.status == 401  # the hook's own check: no Slack signature
        assert "beyond loopback: every request but the webhooks and health checks" in caplog.text
    finally:
        await d.stop()
