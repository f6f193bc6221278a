"""The status page in a real browser: Debian's chromium, driven by Playwright, on a real daemon.

The page opens, shows the firing alerts with their value against their threshold, then follows
the ticks written after it loaded without a reload: the spread's value and its chart, a new
alert, an ack made through the API ("acked by ann"). It saves a screenshot to
`var/test-artifacts/status_page.png` for a person to look at.

Playwright's own browser download cannot work here (no internet), so it drives the system's
`/usr/bin/chromium`, which `make test` installs with apt-get when missing. Without chromium or
the playwright package the test skips with the reason, but fails under CI (`CI` set).
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import load_config
from daemon.events import Tick
from daemon.store import Keys, StreamStore
from tests.helpers import TS_MS, wait_until

pytestmark = pytest.mark.slow  # a real daemon and a real browser

CHROMIUM = Path(os.environ.get("TICKWATCH_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SHOT = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "status_page.png"
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
  - name: above-100
    when: {{threshold: {{symbols: [NVDA, MSFT], above: 100}}}}
    severity: critical
    labels: {{desk: megacap}}
    channels: [console]
  - name: xmag-mags-ytd-spread-compresses
    when: {{spread: {{a: XMAG, b: MAGS, as: return, since: ytd, below: 8, clear: 8.5}}}}
    severity: warning
    labels: {{desk: rotation}}
    message: "XMAG-MAGS YTD spread {{value:.2f}} pts is below {{threshold:g}}"
    channels: [console]
"""
NVDA = "above-100{symbol=NVDA}"
MSFT = "above-100{symbol=MSFT}"
SPREAD = "xmag-mags-ytd-spread-compresses{pair=XMAG/MAGS}"


def browser_or_skip() -> None:
    missing = None
    if importlib.util.find_spec("playwright") is None:
        missing = "the playwright package is not installed (pip install -e '.[dev]')"
    elif not os.access(CHROMIUM, os.X_OK):
        missing = f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)


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
    try:
        yield d
    finally:
        await d.stop()


async def test_the_status_page_follows_the_daemon_live_in_a_real_browser(
    daemon: Daemon, redis: Redis, keys: Keys
) -> None:
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    assert daemon.http is not None
    base = f"http://127.0.0.1:{daemon.http.port}"
    streams = StreamStore(redis, keys)
    # XMAG +8.00% (27.00 on 25), MAGS +1.00% (60.60 on 60): a spread of 7.00, below 8
    await streams.write([Tick("MSFT", TS_MS, 90.0), Tick("NVDA", TS_MS, 99.0),
                         Tick("NVDA", TS_MS + 1, 101.5), Tick("XMAG", TS_MS, 27.0),
                         Tick("MAGS", TS_MS, 60.6)])  # fmt: skip
    delivery = daemon.delivery
    assert delivery is not None
    await wait_until(lambda: delivery.sent.get("console") == 2, 20, "both alerts delivered")

    problems: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)  # fmt: skip
            await page.goto(base + "/")

            alerts = page.locator("#alerts tbody")
            nvda = alerts.locator(f'tr[data-key="{NVDA}"]')
            spread = alerts.locator(f'tr[data-key="{SPREAD}"]')
            await expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
            await expect(nvda.locator(".vt")).to_have_text("101.50 above 100", timeout=10_000)
            await expect(nvda.locator("td.num")).to_have_text(re.compile(r"^#[12]$"))  # the desk's
            await expect(nvda).to_contain_text("FIRING")
            await expect(nvda.locator(".ack")).to_have_text("not acked")
            await expect(spread.locator(".vt")).to_have_text("7.00 below 8")
            rules = page.locator("#rules tbody")
            await expect(rules.locator(f'tr[data-key="{MSFT}"] .vt')).to_have_text(
                "90.00 at or below 100"
            )
            await expect(rules.locator(f'tr[data-key="{MSFT}"]')).to_contain_text("OK")
            await expect(page.locator("#recent tbody tr")).to_have_count(2)
            # a mark that a reload would wipe: everything below arrives over the event stream
            await page.evaluate("window.__loaded_once = true")

            # the spread drifts a tick at a time; the chart keeps one sample a second
            chart = page.locator(f'#spreads .spread[data-key="{SPREAD}"]')
            for i, xmag in enumerate([26.95, 26.9, 26.85, 26.92, 26.8, 26.75]):
                await streams.write([Tick("XMAG", TS_MS + 1000 * (i + 1), xmag)])
                want = (xmag / 25 - 1) * 100 - 1.0
                await expect(chart.locator(".big")).to_have_text(f"{want:.2f}", timeout=10_000)
            await expect(spread.locator(".vt")).to_have_text("6.00 below 8")
            await expect(chart.locator("polyline")).to_have_count(1)

            # a new alert appears, and an ack made elsewhere shows at once
            await streams.write([Tick("MSFT", TS_MS + 10_000, 104.25)])
            msft = alerts.locator(f'tr[data-key="{MSFT}"]')
            await expect(msft.locator(".vt")).to_have_text("104.25 above 100", timeout=10_000)
            async with (
                aiohttp.ClientSession() as s,
                s.post(f"{base}/api/alerts/{NVDA}/ack", json={"by": "ann"},
                       headers={"Authorization": f"Bearer {TOKEN}"}) as r,
            ):  # fmt: skip
                assert r.status == 200, await r.text()
            await expect(nvda.locator(".ack")).to_contain_text("acked by ann via api",
                                                               timeout=10_000)  # fmt: skip
            # a silence too; what users write goes onto the page as text, never as markup
            reason = "earnings <b>tonight</b> <img src=x onerror=alert(1)>"
            async with (
                aiohttp.ClientSession() as s,
                s.post(f"{base}/api/silences", headers={"Authorization": f"Bearer {TOKEN}"},
                       json={"matchers": ["symbol=MSFT"], "for": "2h", "author": "bob",
                             "reason": reason}) as r,
            ):  # fmt: skip
                assert r.status == 201, await r.text()
            silence = page.locator("#silences tbody tr")
            await expect(silence).to_contain_text(reason, timeout=10_000)
            await expect(silence).to_contain_text("symbol=MSFT")
            await expect(page.locator("#silences b, #silences img")).to_have_count(0)
            await expect(page.locator("#recent tbody tr")).to_have_count(3)
            await expect(page.locator("#health-badge")).to_have_text(re.compile("OK|DEGRADED"))
            assert await page.evaluate("window.__loaded_once") is True  # never reloaded
            points = await chart.locator("polyline").get_attribute("points")
            assert points is not None and len(points.split()) >= 6

            SHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SHOT), full_page=True)
        finally:
            await browser.close()
    assert problems == [], problems
    assert SHOT.stat().st_size > 10_000


async def test_beyond_loopback_the_page_opens_with_the_token_in_its_address(
    tmp_path: Path, redis_url: str, keys: Keys
) -> None:
    """EventSource cannot send a header: the page passes its own `?token=` on to /events."""
    browser_or_skip()
    from playwright.async_api import async_playwright, expect

    d = await start(tmp_path, redis_url, keys, "127.0.0.2:0")
    try:
        assert d.http is not None
        base = f"http://127.0.0.2:{d.http.port}"
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = await browser.new_page()
                refused = await page.goto(base + "/")
                assert refused is not None and refused.status == 401
                opened = await page.goto(f"{base}/?token={TOKEN}")
                assert opened is not None and opened.status == 200
                await expect(page.locator("#conn")).to_have_text("live", timeout=10_000)
                await expect(page.locator("#rules tbody tr")).to_have_count(3)
                await expect(page.locator("#alerts-empty")).to_be_visible()
            finally:
                await browser.close()
    finally:
        await d.stop()
