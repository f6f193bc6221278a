"""No input stops the daemon (issue 12 item 4): a binary rule file saved into a running daemon
is refused with one ops alert and the rules in force keep running; the file watcher survives
its own errors (a failing callback, watchfiles raising, a watched directory removed)."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import random
import shutil
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import watchfiles
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import Config, load_config
from daemon.events import Tick
from daemon.reload import WatchStats, watch_files
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.chaos import ChaosTable
from tests.helpers import wait_until

ALERTS = """\
redis: {{url: "{url}", prefix: {prefix}}}
channels:
  console: {{type: console}}
ops_channels: [console]
include: [rules/*.yaml]
"""
RULE = """\
rules:
  - name: {name}
    when: {{threshold: {{symbols: NVDA, above: {level}}}}}
    channels: [console]
"""
T0 = 1_775_000_000_000
MIN = 60_000


def lines(console: io.StringIO, needle: str) -> list[str]:
    return [x for x in console.getvalue().splitlines() if needle in x]


@pytest.fixture
def tree(tmp_path: Path, redis_url: str, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # problems name files relative to the working directory
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(ALERTS.format(url=redis_url, prefix=keys.prefix))
    (tmp_path / "rules" / "nvda.yaml").write_text(RULE.format(name="nvda-100", level=100))
    return tmp_path


@pytest.mark.chaos
async def test_binary_rule_file_saved_mid_run_keeps_the_daemon_and_its_rules(
    tree: Path, redis: Redis, keys: Keys, chaos: ChaosTable
) -> None:
    console = io.StringIO()
    daemon = Daemon(load_config(tree / "alerts.yaml", env={}), console=console, watch=True)
    store = StreamStore(redis, keys)
    await daemon.start()
    try:
        assert daemon.evaluator is not None
        await asyncio.sleep(0.5)  # the watcher is up

        # 300 random bytes saved as rules/zz.yaml: refused, one ops alert, the daemon stays up
        (tree / "rules" / "zz.yaml").write_bytes(random.Random(4).randbytes(300))
        await wait_until(lambda: any(not r.ok for r in daemon.reloads), 20, "a refused reload")
        refused = daemon.reloads[-1]
        assert any(p.startswith("rules/zz.yaml:") and "is not text" in p for p in refused.problems)
        await wait_until(lambda: lines(console, "tickwatch-config-reload") != [], 20, "ops alert")
        ops = lines(console, "tickwatch-config-reload")
        assert len(ops) == 1 and "zz.yaml" in ops[0], ops

        # a UTF-16 save of the same file: refused too, with its own reason
        (tree / "rules" / "zz.yaml").write_bytes(
            RULE.format(name="nvda-150", level=150).encode("utf-16")
        )
        await wait_until(
            lambda: any("looks like UTF-16" in p for r in daemon.reloads for p in r.problems),
            20,
            "the UTF-16 file refused",
        )
        assert not daemon.failed.is_set()
        assert [lr.rule.name for lr in daemon.cfg.rules] == ["nvda-100"]
        watcher = [t for t in daemon._tasks if t.get_name() == "watcher"]
        assert watcher and not watcher[0].done()

        # the rules in force still evaluate
        await store.write([Tick("NVDA", T0, 101.0)])
        await wait_until(lambda: len(lines(console, "nvda-100")) == 1, 20, "nvda-100 to fire")

        # fixed: applied live
        (tree / "rules" / "zz.yaml").write_text(RULE.format(name="nvda-150", level=150))
        await wait_until(lambda: daemon.reloads[-1].ok, 20, "the fixed file applied")
        assert daemon.reloads[-1].added == ["nvda-150"]
        await daemon.evaluator.plan_applied.wait()
        await store.write([Tick("NVDA", T0 + MIN, 160.0)])
        await wait_until(lambda: len(lines(console, "nvda-150")) == 1, 20, "nvda-150 to fire")
        up = not daemon.failed.is_set()
    finally:
        await daemon.stop()
    told = [r for r in ("nvda-100", "nvda-150") for x in lines(console, r) if "FIRING" in x]
    chaos.record(
        "a binary, then a UTF-16 rule file saved mid-run, then a fixed one",
        ["nvda-100", "nvda-150"],
        told,
        up=up,
    )


# --- the watcher on its own ------------------------------------------------------------------


class Watch:
    """`watch_files` running in a task over `globs`, recording each `on_change`."""

    def __init__(self, globs: list[str], *, fail_first: int = 0):
        self.cfg: Any = types.SimpleNamespace(watched_globs=globs)
        self.calls: list[set[str]] = []
        self.stats = WatchStats()
        self.stop = asyncio.Event()
        self.fail_first = fail_first
        self.task: asyncio.Task[None] | None = None

    async def on_change(self, paths: set[str]) -> None:
        self.calls.append(paths)
        if len(self.calls) <= self.fail_first:
            raise RuntimeError("the reload blew up")

    def saw(self, name: str) -> bool:
        return any(Path(p).name == name for call in self.calls for p in call)

    async def __aenter__(self) -> Watch:
        self.task = asyncio.create_task(
            watch_files(
                self.cfg,
                self.on_change,
                self.stop,
                debounce_ms=50,
                stats=self.stats,
                min_delay=0.05,
                max_delay=0.2,
            )
        )
        await asyncio.sleep(0.3)  # watching
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)  # ends cleanly once stopped, never before


def globs_of(root: Path) -> list[str]:
    return [str((root / "alerts.yaml").resolve()), str((root / "rules").resolve() / "*.yaml")]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text("include: [rules/*.yaml]\n")
    (tmp_path / "rules" / "a.yaml").write_text("rules: []\n")
    return tmp_path


async def test_an_exception_in_on_change_is_logged_counted_and_the_watch_goes_on(
    files: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Watch(globs_of(files), fail_first=1) as w:
        (files / "rules" / "a.yaml").write_text("rules: [1]\n")
        await wait_until(lambda: w.stats.callback_errors == 1, 10, "the failing callback")
        (files / "rules" / "b.yaml").write_text("rules: []\n")
        await wait_until(lambda: w.saw("b.yaml"), 10, "the next change")
        assert w.task is not None and not w.task.done()
    assert "handling the change of a.yaml failed" in caplog.text
    assert w.stats.errors == 0 and w.stats.restarts == 0  # a plain edit restarts nothing


async def test_watchfiles_raising_restarts_the_watch_with_backoff(
    files: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = watchfiles.awatch
    starts: list[float] = []

    def flaky(*paths: str, **kwargs: Any) -> AsyncIterator[Any]:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) <= 3:
            raise OSError(28, "inotify watch limit reached")
        return real(*paths, **kwargs)

    monkeypatch.setattr("daemon.reload.awatch", flaky)
    caplog.set_level(logging.WARNING, "tickwatch.reload")
    async with Watch(globs_of(files)) as w:
        await wait_until(lambda: len(starts) >= 4, 10, "the watch to start again")
        await asyncio.sleep(0.3)
        (files / "rules" / "a.yaml").write_text("rules: [2]\n")
        await wait_until(lambda: w.saw("a.yaml"), 10, "a change after the restarts")
    assert w.stats.errors == 3 and w.stats.restarts == 3
    gaps = [b - a for a, b in itertools.pairwise(starts)][:3]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09 and gaps[2] >= 0.19, gaps  # 0.05, 0.1, 0.2
    assert caplog.text.count("file watcher failed (OSError") == 3


async def test_a_watched_directory_removed_and_recreated_is_watched_again(files: Path) -> None:
    async with Watch(globs_of(files)) as w:
        shutil.rmtree(files / "rules")
        await wait_until(lambda: w.saw("a.yaml"), 10, "the removal reported")
        await wait_until(lambda: w.stats.restarts >= 1, 10, "the watch restarted")
        await asyncio.sleep(0.3)
        (files / "rules").mkdir()
        await wait_until(lambda: w.stats.restarts >= 2, 10, "the directory seen coming back")
        await asyncio.sleep(0.3)
        (files / "rules" / "c.yaml").write_text("rules: []\n")
        await wait_until(lambda: w.saw("c.yaml"), 10, "a file in the re-created directory")
        assert w.stats.errors == 0


async def test_a_directory_moved_away_and_back_with_files_catches_up(files: Path) -> None:
    """A move reports no file events: the restarted watch compares what it finds."""
    async with Watch(globs_of(files)) as w:
        (files / "rules").rename(files / "elsewhere")
        await wait_until(lambda: w.saw("a.yaml"), 10, "the files gone, from the fingerprint")
        (files / "elsewhere" / "d.yaml").write_text("rules: []\n")
        (files / "elsewhere").rename(files / "rules")
        await wait_until(lambda: w.saw("d.yaml"), 10, "the files back")


async def test_a_rule_directory_missing_at_start_is_watched_for(files: Path) -> None:
    shutil.rmtree(files / "rules")
    async with Watch(globs_of(files)) as w:
        (files / "rules").mkdir()
        await asyncio.sleep(0.3)
        (files / "rules" / "e.yaml").write_text("rules: []\n")
        await wait_until(lambda: w.saw("e.yaml"), 10, "a file in the new directory")
        assert w.stats.errors == 0


async def test_the_watch_follows_a_config(files: Path) -> None:
    """watch_files takes a Config (watched_globs): the real one works too."""
    cfg: Config = load_config(files / "alerts.yaml", env={})
    calls: list[set[str]] = []
    stop = asyncio.Event()

    async def on_change(paths: set[str]) -> None:
        calls.append(paths)

    task = asyncio.create_task(watch_files(cfg, on_change, stop, debounce_ms=50))
    try:
        await asyncio.sleep(0.3)
        (files / "alerts.yaml").write_text("include: [rules/*.yaml]\n# edited\n")
        await wait_until(lambda: any("alerts.yaml" in p for c in calls for p in c), 10, "edit")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
