"""Helpers shared by the tests: a sample alert, and waiting with a deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import textwrap
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.alerts import AlertEvent
from daemon.events import dt_to_ms

__all__ = ["TS_MS", "make_alert", "run_until_idle", "wait_until"]

#: 2026-04-09 13:47:00 in New York (EDT, UTC-4): the sample data's compression afternoon.
TS_MS = dt_to_ms(datetime(2026, 4, 9, 17, 47, tzinfo=UTC))


def make_alert(**overrides: Any) -> AlertEvent:
    """The XMAG/MAGS spread alert firing at 7.98 below 8; override any field."""
    fields: dict[str, Any] = {
        "rule": "rotation-spread-compresses",
        "key": "rotation-spread-compresses",
        "state": "firing",
        "seq": 1,
        "ts_ms": TS_MS,
        "severity": "warning",
        "summary": "XMAG-MAGS YTD spread compressed to 7.98 points",
        "channels": ("console",),
        "value": 7.98,
        "threshold": 8.0,
        "comparison": "below",
    }
    fields.update(overrides)
    return AlertEvent(**fields)


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
) -> None:
    """Poll `predicate` every 50 ms until it holds; fail with `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def run_until_idle(
    run: Callable[[], Awaitable[None]], idle: asyncio.Event, timeout: float = 20.0
) -> None:
    """Run a stage's loop until it reports idle (everything consumed), then cancel it."""
    task = asyncio.ensure_future(run())
    try:
        await asyncio.wait_for(idle.wait(), timeout)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def install_distribution(
    where: Path, monkeypatch: Any, name: str, modules: dict[str, str], entry_points: str
) -> None:
    """Puts a real distribution on sys.path: `modules` (module name → source) and a
    `*.dist-info` declaring `entry_points` (entry_points.txt text), as `pip install` would.
    `monkeypatch` takes it off sys.path after the test; drop the modules from sys.modules."""
    for module, source in modules.items():
        (where / f"{module}.py").write_text(textwrap.dedent(source))
    dist = where / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)
    monkeypatch.syspath_prepend(str(where))
    importlib.invalidate_caches()
