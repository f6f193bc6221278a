"""`/healthz` and `/metrics` of a running daemon, read over real HTTP on loopback."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from daemon.app import Daemon, StartupError
from daemon.config import ConfigError, load_config
from daemon.config.models import HttpSettings
from daemon.events import Tick
from daemon.store.embedded import EmbeddedRedis
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.fakes.ws_feeds import FakeAlpacaServer
from tests.helpers import wait_until

ALERTS = """\
redis: {{url: "{url}", prefix: {prefix}}}
http: {{listen: "{listen}"}}
channels:
  console: {{type: console}}
rules:
  - name: nvda-100
    when: {{threshold: {{symbols: NVDA, above: 100}}}}
    channels: [console]
"""
T0 = 1_775_000_000_000


def write_config(tmp_path: Path, url: str, prefix: str, listen: str = "127.0.0.1:0") -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(ALERTS.format(url=url, prefix=prefix, listen=listen))
    return path


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


async def test_metrics_count_ticks_alerts_and_deliveries(
    tmp_path: Path, redis: Redis, redis_url: str, keys: Keys
) -> None:
    daemon = Daemon(load_config(write_config(tmp_path, redis_url, keys.prefix), env={}),
                    console=io.StringIO())  # fmt: skip
    await daemon.start()
    try:
        assert daemon.http is not None and daemon.http.port > 0
        port = daemon.http.port
        await StreamStore(redis, keys).write([Tick("NVDA", T0, 99.0), Tick("NVDA", T0 + 1, 101.0)])
        await wait_until(lambda: daemon.delivery is not None and daemon.delivery.sent["console"]
                         == 1, 20, "the alert delivered")  # fmt: skip
        status, text = await get(port, "/metrics")
        assert status == 200
        m = samples(text)
        assert m[("tickwatch_up", ())] == 1
        assert m[("tickwatch_ticks_total", ())] == 2
        assert m[("tickwatch_alerts_total", ())] == 1
        assert m[("tickwatch_notifications_sent_total", (("channel", "console"),))] == 1
        assert m[("tickwatch_notifications_dead_total", (("channel", "console"),))] == 0
        assert m[("tickwatch_alert_states", (("state", "firing"),))] == 1
        assert m[("tickwatch_routing_decisions_total", (("outcome", "send"),))] >= 1
        assert m[("tickwatch_escalations_total", ())] == 0
        assert m[("tickwatch_primary", ())] == 1  # alone on its Redis: the primary

        status, text = await get(port, "/healthz")
        assert status == 200, text
        assert '"status": "ok"' in text and '"redis": "ok"' in text

        status, text = await get(port, "/status")  # `tickwatch status`, in a browser
        assert status == 200
        assert text.startswith("daemon: ") and "\nchannels:\n  console " in text, text
    finally:
        await daemon.stop()
    assert daemon.http is None


async def test_healthz_says_degraded_and_why_while_an_external_redis_is_away(
    tmp_path: Path,
) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    daemon = Daemon(load_config(write_config(tmp_path, server.url, "h"), env={}),
                    console=io.StringIO())  # fmt: skip
    await daemon.start()
    try:
        assert daemon.http is not None
        assert (await get(daemon.http.port, "/healthz"))[0] == 200
        server.stop()
        status, text = await get(daemon.http.port, "/healthz")
        assert status == 200, text  # every stage retries: restarting the daemon would not help
        assert '"status": "degraded"' in text and '"redis": "down"' in text
        assert "redis: " in text  # the reason, e.g. ConnectionError: ... refused
        status, _ = await get(daemon.http.port, "/metrics")  # metrics need no Redis
        assert status == 200
        status, text = await get(daemon.http.port, "/status")
        assert status == 503 and text.startswith("redis: "), text
    finally:
        await daemon.stop()
        server.stop()


async def test_a_taken_port_is_a_clear_startup_error(
    tmp_path: Path, redis_url: str, keys: Keys
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        cfg = load_config(write_config(tmp_path, redis_url, keys.prefix, listen), env={})
        daemon = Daemon(cfg, console=io.StringIO())
        with pytest.raises(StartupError, match=rf"cannot serve .* on {listen}.*http\.listen"):
            await daemon.run_forever(stop=__import__("asyncio").Event())
    assert daemon.redis is None and daemon.http is None  # what had started was stopped


@pytest.mark.parametrize("listen", ["9464", "localhost:", ":9464", "127.0.0.1:70000"])
def test_a_bad_listen_address_says_how_to_write_one(
    tmp_path: Path, redis_url: str, listen: str
) -> None:
    with pytest.raises(ConfigError, match=r"not host:port; write 127\.0\.0\.1:9464"):
        load_config(write_config(tmp_path, redis_url, "x", listen), env={})


async def test_feed_metrics_and_a_feed_that_cannot_connect_reads_degraded(
    tmp_path: Path, redis_url: str, keys: Keys, alpaca_server: FakeAlpacaServer
) -> None:
    with socket.socket() as s:  # a port nobody listens on: that feed never connects
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    path = write_config(tmp_path, redis_url, keys.prefix)
    creds = f"key_id: {alpaca_server.key_id}, secret_key: {alpaca_server.secret_key}"
    path.write_text(
        path.read_text()
        + f"""sources:
  - {{name: live, type: alpaca, {creds}, url: "{alpaca_server.stocks_url()}"}}
  - {{name: dead, type: alpaca, {creds}, url: "ws://127.0.0.1:{closed}/v2/iex", priority: 1}}
"""
    )
    daemon = Daemon(load_config(path, env={}), console=io.StringIO(), watch=False)
    await daemon.start()
    try:
        assert daemon.http is not None
        port = daemon.http.port
        await alpaca_server.wait_live(1, 20)
        await alpaca_server.send([alpaca_server.trade("NVDA", 150.0, trade_id=1)])
        live = daemon.sources[0]
        await wait_until(lambda: live.accepted == 1, 20, "the trade written")
        m = samples((await get(port, "/metrics"))[1])
        assert m[("tickwatch_feed_connected", (("source", "live"),))] == 1
        assert m[("tickwatch_feed_connected", (("source", "dead"),))] == 0
        assert m[("tickwatch_source_accepted_total", (("source", "live"),))] == 1
        p99 = m[
            ("tickwatch_feed_write_latency_seconds", (("quantile", "0.99"), ("source", "live")))
        ]
        assert 0 < p99 < 5
        status, text = await get(port, "/healthz")
        assert status == 200, text  # one feed down is degraded, not failing: the rest runs
        assert '"status": "degraded"' in text and '"live": "connected"' in text
        assert "feed dead: " in text
        # alive, but not ready: one feed's prices cannot be trusted
        status, text = await get(port, "/readyz")
        body = json.loads(text)
        assert status == 503 and body["ready"] is False
        assert body["feeds"]["live"]["fresh"] is True and body["feeds"]["dead"]["fresh"] is False
        assert [p for p in body["problems"] if p.startswith("feed ")] == [
            f"feed dead: {body['feeds']['dead']['state']}"
        ]

        await alpaca_server.drop()  # a network cut: counted as a reconnect
        await wait_until(lambda: live.reconnects >= 1, 20, "a reconnect")
        m = samples((await get(port, "/metrics"))[1])
        assert m[("tickwatch_feed_reconnects_total", (("source", "live"),))] >= 1
    finally:
        await daemon.stop()


async def test_http_is_on_by_default_on_loopback_and_off_when_told(
    tmp_path: Path, redis_url: str, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path, redis_url, keys.prefix)
    path.write_text(path.read_text().replace('http: {listen: "127.0.0.1:0"}\n', ""))
    cfg = load_config(path, env={})
    assert cfg.settings.http.enabled and cfg.settings.http.address == ("127.0.0.1", 9464)
    # the default port taken (by us here, or anyone): the daemon runs on without HTTP, and says
    # what to do; only an address alerts.yaml names is worth refusing to start over
    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", 9464))
            taken.listen()
        except OSError:
            pass  # someone else holds it: the same case
        daemon = Daemon(cfg, console=io.StringIO(), watch=False)
        await daemon.start()
        try:
            assert daemon.http is None and daemon.evaluator is not None
            assert "http: cannot serve on 127.0.0.1:9464" in caplog.text
            assert "set http.listen in alerts.yaml to another port, or off" in caplog.text
        finally:
            await daemon.stop()
    off = load_config(write_config(tmp_path, redis_url, keys.prefix, "off"), env={})
    assert off.settings.http.enabled is False
    assert HttpSettings.model_validate({"listen": False}).enabled is False  # YAML `false`
    assert HttpSettings.model_validate({"listen": ""}).address == ("127.0.0.1", 9464)


async def test_readyz_says_ready_once_the_rules_run_with_no_live_feed(
    tmp_path: Path, redis_url: str, keys: Keys
) -> None:
    daemon = Daemon(load_config(write_config(tmp_path, redis_url, keys.prefix), env={}),
                    console=io.StringIO(), watch=False)  # fmt: skip
    await daemon.start()
    try:
        assert daemon.http is not None
        status, text = await get(daemon.http.port, "/readyz")
        assert (status, json.loads(text)) == (200, {"ready": True, "problems": [], "feeds": {}})
    finally:
        await daemon.stop()
