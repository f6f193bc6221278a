"""Hot reload: edit alerts.yaml or a rule file, and the running daemon picks it up, or says why not.

A change (seen by watchfiles, or asked for with SIGHUP) re-reads every file. A valid config
swaps in atomically at the evaluator's next batch boundary (no tick is dropped: they wait in the
stream), and rules whose definition is unchanged keep their alert state. An invalid one changes
nothing: each problem is logged as file:line, and one ops alert goes to `ops_channels` (not
repeated while the same problems stay unfixed).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import glob
import hashlib
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import awatch

from daemon.alerts import AlertEvent
from daemon.config import Config, ConfigError

__all__ = ["ReloadResult", "WatchStats", "diff_rules", "watch_files", "watch_stats"]

log = logging.getLogger("tickwatch.reload")


@dataclass
class ReloadResult:
    ok: bool
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Settings that changed but only take effect after a restart.
    needs_restart: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.ok:
            return f"refused ({len(self.problems)} problem(s)); the previous rules stay in force"
        parts = [
            f"{len(names)} {what}"
            + (f" ({', '.join(names)})" if names and what != "unchanged" else "")
            for what, names in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
                ("unchanged", self.unchanged),
            )
        ]
        return "applied: " + ", ".join(parts)


def diff_rules(old: Config, new: Config) -> ReloadResult:
    """Which rules a reload adds, removes, changes or leaves alone; pure."""
    before = {lr.rule.name: lr.rule for lr in old.rules}
    after = {lr.rule.name: lr.rule for lr in new.rules}
    res = ReloadResult(ok=True)
    for name, rule in after.items():
        if name not in before:
            res.added.append(name)
        elif before[name] == rule:
            res.unchanged.append(name)
        else:
            res.changed.append(name)
    res.removed = [n for n in before if n not in after]
    o, n = old.settings, new.settings
    for attr in ("redis", "sources", "evaluator", "deadman"):
        if getattr(o, attr) != getattr(n, attr):
            res.needs_restart.append(attr)
    return res


def ops_alert(problems: list[str], seq: int, channels: list[str]) -> AlertEvent:
    first = problems[0] if problems else "unknown problem"
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return AlertEvent(
        rule="tickwatch-config-reload",
        key="tickwatch-config-reload",
        state="firing",
        seq=seq,
        ts_ms=int(time.time() * 1000),
        severity="warning",
        summary=f"Rule reload refused, previous rules still running. {first}{more}",
        channels=tuple(channels),
        labels={"component": "config"},
        values={"problems": "\n".join(problems)},
        resolves=False,
    )


def component_alert(
    component: str, summary: str, labels: Mapping[str, str], seq: int, channels: list[str]
) -> AlertEvent:
    """An ops alert about part of the daemon (a silent feed, a channel failing for good)."""
    return AlertEvent(
        rule=f"tickwatch-{component}",
        key=f"tickwatch-{component}",
        state="firing",
        seq=seq,
        ts_ms=int(time.time() * 1000),
        severity="warning",
        summary=summary,
        channels=tuple(channels),
        labels={"component": component, **labels},
        values={},
        resolves=False,
    )


def problems_digest(err: ConfigError) -> str:
    return hashlib.sha256(str(err).encode()).hexdigest()[:16]


@dataclass
class WatchStats:
    """What the file watcher went through; it never ends because of it."""

    #: The watch itself failed (watchfiles raised): it starts again after a pause.
    errors: int = 0
    #: `on_change` raised: logged, and the watch goes on.
    callback_errors: int = 0
    #: The watch started again: after an error, or a watched directory appeared or went away.
    restarts: int = 0


#: The process's watcher counts (a daemon runs one watcher).
watch_stats = WatchStats()

_MAGIC = re.compile(r"[*?[]")


#: How long the watcher waits for more changes before it reports a batch (watchfiles' `step`,
#: 50 ms by default): an editor's write-and-rename arrives within a few ms, and a reload of
#: 1,000 rules has 250 ms in all (bench/reload.py).
WATCH_STEP_MS = 10


async def watch_files(
    cfg: Config,
    on_change: Callable[[set[str]], Awaitable[None]],
    stop: asyncio.Event,
    *,
    debounce_ms: int = 50,
    stats: WatchStats | None = None,
    min_delay: float = 0.5,
    max_delay: float = 30.0,
) -> None:
    """Call `on_change(paths)` whenever a file the config is made of is written or removed.

    Directories are watched rather than files: editors save by writing a new file and renaming
    it over the old one, which a watch on the file itself would lose.

    Runs until `stop` is set, whatever happens: an exception in `on_change` is logged and
    counted; one in watchfiles is logged and counted, and the watch starts again after a pause
    (doubling from `min_delay` to `max_delay`). A watched directory that is removed is watched
    for from its parent, and watched again once it is back (a removed directory is otherwise
    watched no more, silently). Whenever the watch starts again, files that changed while it
    was not looking are passed to `on_change`.
    """
    stats = watch_stats if stats is None else stats
    globs = cfg.watched_globs
    seen = _fingerprint(globs)
    delay = min_delay
    started = False
    while not stop.is_set():
        roots, structure, recursive = _watch_roots(globs)
        if started:
            stats.restarts += 1
            now = _fingerprint(globs)
            if now != seen:
                changed = {p for p in now.keys() | seen.keys() if now.get(p) != seen.get(p)}
                seen = now
                await _notify(on_change, changed, stats)
        started = True

        def relevant(_change: object, path: str, structure: set[str] = structure) -> bool:
            p = _resolved(path)
            return p in structure or _matches(p, globs)

        log.info("watching %s for rule changes", ", ".join(roots))
        try:
            restart = False
            changes_seen = awatch(
                *roots,
                watch_filter=relevant,
                debounce=debounce_ms,
                step=WATCH_STEP_MS,
                recursive=recursive,
                stop_event=stop,
            )
            async with contextlib.aclosing(changes_seen):
                async for changes in changes_seen:
                    delay = min_delay  # the watch works: a later failure starts short again
                    paths = {p for _, p in changes}
                    files = {p for p in paths if _matches(_resolved(p), globs)}
                    if files:
                        await _notify(on_change, files, stats)
                        seen = _fingerprint(globs)
                    if any(_resolved(p) in structure for p in paths):
                        log.info("a watched directory was created or removed: watching again")
                        restart = True
                        break
            if restart or stop.is_set():
                continue
            raise RuntimeError("the watch ended by itself")
        except Exception as e:
            stats.errors += 1
            log.warning(
                "file watcher failed (%s: %s); watching again in %.1fs (reload with SIGHUP "
                "meanwhile)",
                type(e).__name__,
                e,
                delay,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, max_delay)


async def _notify(
    on_change: Callable[[set[str]], Awaitable[None]], paths: set[str], stats: WatchStats
) -> None:
    try:
        await on_change(paths)
    except Exception as e:
        stats.callback_errors += 1
        names = ", ".join(sorted(os.path.basename(p) for p in paths))
        log.error("handling the change of %s failed; still watching", names, exc_info=e)


def _resolved(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL
        return path


def _matches(path: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, g) for g in globs)


def _watch_roots(globs: list[str]) -> tuple[list[str], set[str], bool]:
    """(directories to watch, directories whose coming or going restarts the watch, recursive).

    A glob's directory is watched; while it does not exist, its nearest existing ancestor is,
    to see it come back. A glob in the directory part (rules/*/x.yaml) watches the part before
    it, recursively.
    """
    roots: set[str] = set()
    structure: set[str] = set()
    recursive = False
    for g in globs:
        wanted = Path(g).parent
        while _MAGIC.search(str(wanted)) and wanted != wanted.parent:
            wanted, recursive = wanted.parent, True
        structure.add(str(wanted))
        d = wanted
        while not _is_dir(d) and d != d.parent:
            d = d.parent
            structure.add(str(d))
        roots.add(str(d))
    return sorted(roots), structure, recursive


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _fingerprint(globs: list[str]) -> dict[str, tuple[int, int, int] | None]:
    """Each matching file's (mtime, size, inode): what changed while nothing was watching."""
    out: dict[str, tuple[int, int, int] | None] = {}
    for g in globs:
        try:
            matches = glob.glob(g)
        except (OSError, ValueError):
            continue
        for m in matches:
            try:
                st = os.stat(m)
            except (OSError, ValueError):
                out[m] = None
                continue
            out[m] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return out
