"""Hot reload: edit alerts.yaml or a rule file, and the running daemon picks it up, or says why not.

A change (seen by watchfiles, or asked for with SIGHUP) re-reads every file. A valid config
swaps in atomically at the evaluator's next batch boundary (no tick is dropped: they wait in the
stream), and rules whose definition is unchanged keep their alert state. An invalid one changes
nothing: each problem is logged as file:line, and one ops alert goes to `ops_channels` (not
repeated while the same problems stay unfixed).
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import awatch

from daemon.alerts import AlertEvent
from daemon.config import Config, ConfigError

__all__ = ["ReloadResult", "diff_rules", "watch_files"]

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
    for attr in ("redis", "sources", "evaluator"):
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


async def watch_files(
    cfg: Config,
    on_change: Callable[[set[str]], Awaitable[None]],
    stop: asyncio.Event,
    *,
    debounce_ms: int = 300,
) -> None:
    """Call `on_change(paths)` whenever a file the config is made of is written or removed.

    Directories are watched rather than files: editors save by writing a new file and renaming
    it over the old one, which a watch on the file itself would lose.
    """
    globs = cfg.watched_globs
    dirs = sorted({str(Path(g).parent) for g in globs if Path(g).parent.is_dir()})

    def relevant(_change: object, path: str) -> bool:
        return any(fnmatch.fnmatch(str(Path(path).resolve()), g) for g in globs)

    log.info("watching %s for rule changes", ", ".join(dirs))
    async for changes in awatch(
        *dirs, watch_filter=relevant, debounce=debounce_ms, recursive=False, stop_event=stop
    ):
        await on_change({p for _, p in changes})
