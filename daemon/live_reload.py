"""Applying a reload to the running daemon: the new config's rules, universe, delivery, channels.

`reload.py` reads and compares (what changed, the file watcher, the ops alert's wording); this
module swaps the result into the running stages, one reload (or calendar update) at a time: the
evaluator's plan (unchanged rules keep their alert state), the sources' universe, delivery's
settings and, when channels changed, the notifiers and their workers. A config that does not
load changes nothing; one ops alert says why, not repeated while the same problems stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.config import Config, ConfigError
from daemon.events import EarningsEvent
from daemon.reload import ReloadResult, diff_rules, problems_digest
from daemon.sources import load_earnings, merge_earnings
from daemon.store import REDIS_DOWN, CalendarStore

if TYPE_CHECKING:
    from daemon.app import Daemon

__all__ = ["LiveReload"]

log = logging.getLogger("tickwatch")


class LiveReload:
    """Reloads of one daemon; their results go to `daemon.reloads`."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self._reload_lock = asyncio.Lock()
        self._last_refused = ""
        #: The config's own earnings dates, before any provider's were merged in.
        self.offline_earnings: list[EarningsEvent] = []

    async def with_provider_calendar(self, cfg: Config) -> Config:
        """The config's offline calendar merged with what calendar sources put in Redis."""
        d = self.daemon
        if d.redis is None:
            return cfg
        with contextlib.suppress(*REDIS_DOWN):
            fetched = await load_earnings(CalendarStore(d.redis, d.keys))
            if fetched:
                cfg.earnings = merge_earnings(cfg.earnings, fetched)
        return cfg

    async def calendar_changed(self) -> None:
        """A calendar source wrote new dates: windows and reminders follow, alert states stay."""
        d = self.daemon
        async with self._reload_lock:
            if d.evaluator is None:
                return
            d.cfg.earnings = self.offline_earnings
            await self.with_provider_calendar(d.cfg)
            plan = d.cfg.compile()
            d.evaluator.use_plan(plan, {lr.rule.name for lr in d.cfg.rules})
            log.info("earnings calendar updated: %d report(s) known", len(d.cfg.earnings))

    async def files_changed(self, paths: set[str]) -> None:
        names = ", ".join(sorted(Path(p).name for p in paths))
        await self.reload(f"file change: {names}")

    async def reload(self, reason: str = "SIGHUP") -> ReloadResult:
        """Re-read the config; apply it if valid, else keep everything and say why."""
        async with self._reload_lock:
            return await self._reload(reason)

    async def _reload(self, reason: str) -> ReloadResult:
        d = self.daemon
        if d.evaluator is None or d.delivery is None:
            log.warning("reload (%s) ignored: the daemon is still starting", reason)
            return ReloadResult(ok=False, problems=["daemon not started"])
        try:
            new = await asyncio.to_thread(d.cfg.reload)
        except ConfigError as e:
            result = ReloadResult(ok=False, problems=[str(p) for p in e.problems])
            for p in e.problems:
                log.error("reload (%s) refused: %s", reason, p)
            digest = problems_digest(e)
            if digest != self._last_refused:  # one ops alert per distinct broken state
                self._last_refused = digest
                await d.ops_alerts.config_refused(result.problems)
            d.reloads.append(result)
            return result
        self._last_refused = ""
        result = diff_rules(d.cfg, new)
        self.offline_earnings = list(new.earnings)
        await self.with_provider_calendar(new)
        plan = new.compile()
        d.evaluator.use_plan(plan, set(result.unchanged))
        if d.edge is not None and d.edge.universe != new.universe:
            d.edge.universe = new.universe
            for src in d.sources:
                src.ctx.symbols = new.universe
                await src.resubscribe(new.universe)
        d.delivery.reconfigure(new.delivery)
        if new.settings.channels != d.cfg.settings.channels:
            old = d.notifiers
            d.notifiers = d._build_notifiers(new)
            for w in d.delivery.set_notifiers(d.notifiers, new.settings.channels):
                name = f"deliver {w.channel}"
                d._spawn(d._resilient(name, w.run), name)
            asyncio.get_running_loop().call_later(
                30, lambda: [asyncio.ensure_future(n.aclose()) for n in old.values()]
            )
        if result.needs_restart:
            log.warning(
                "reload: changes to %s take effect only after a restart",
                ", ".join(result.needs_restart),
            )
        d.cfg = new
        if d.slack_socket is not None:
            await d.slack_socket.start()  # links for new Slack apps; those no longer named close
        log.info("reload (%s) %s", reason, result.summary())
        d.reloads.append(result)
        return result
