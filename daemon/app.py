"""The daemon: wires Redis, sources, evaluator, delivery and the scheduler, and stops cleanly.

Everything long-running is an asyncio task or an APScheduler job on one event loop. `Daemon` owns
their lifetimes; the stages themselves know nothing about each other except the Redis streams
between them (sources → ticks/news → evaluator → outbox → router → one worker per channel).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from daemon import __version__
from daemon.alerts import AlertEvent
from daemon.config import Config, ConfigError, mask_url
from daemon.events import EarningsEvent
from daemon.http import HttpServer
from daemon.notify.base import Notifier
from daemon.notify.console import ConsoleConfig, ConsoleNotifier
from daemon.notify.delivery import Delivery
from daemon.notify.registry import notifier_class
from daemon.notify.worker import STOP_GRACE_S, RetryPolicy
from daemon.reload import (
    ReloadResult,
    component_alert,
    diff_rules,
    ops_alert,
    problems_digest,
    watch_files,
)
from daemon.rules.runner import Evaluator
from daemon.sources.alpaca_rest import AlpacaBackfillSource, run_backfills
from daemon.sources.arbiter import FeedArbiter
from daemon.sources.base import FatalSourceError, Source, SourceContext
from daemon.sources.earnings import (
    EarningsCalendarSource,
    load_earnings,
    merge_earnings,
)
from daemon.sources.normalize import EdgeFilter
from daemon.sources.registry import source_class
from daemon.store.calendar import CalendarStore
from daemon.store.client import Client
from daemon.store.connect import connect, dedicated
from daemon.store.embedded import EmbeddedRedis
from daemon.store.keys import Keys
from daemon.store.ops import OpsStore, server_version
from daemon.store.retry import REDIS_DOWN, Reconnect, run_resilient
from daemon.store.state import StateStore
from daemon.store.streams import StreamStore
from daemon.store.supervise import EmbeddedSupervisor

__all__ = ["Daemon", "StartupError"]

log = logging.getLogger("tickwatch")
MIN_REDIS = (6, 2)
HEARTBEAT_S = 10
#: The embedded Redis is restarted when it exits, at most this many times in this many seconds.
REDIS_RESTART_LIMIT = 5
REDIS_RESTART_WINDOW_S = 300.0
#: Headlines accepted this long ago are remembered across a restart (the title window is 24 h).
EDGE_MEMORY_MS = 25 * 3_600_000


def tune_gc_for_the_hot_path() -> None:
    """Move everything alive after start-up (modules, functions, config, plans: ~170k objects)
    out of the collector's reach, and collect the young generations less often.

    Measured in bench/e2e.py at peak with 1,000 rules: with the defaults a full collection
    (105-155 ms on a 2-core VM) ran every ~11k ticks, 29-31% of the daemon's CPU went to the
    collector and its pauses set the 5,000 ticks/s tail (p99 102-123 ms); frozen, with
    thresholds (10,000, 20, 20), 3-4% and pauses under 10 ms (p99 15-20 ms). For a process that
    runs one daemon: frozen objects are never freed, so tests that start many daemons in one
    process do not call it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


class StartupError(Exception):
    """The daemon cannot start; the message says what to do."""


class _CancelledJobFilter(logging.Filter):
    """APScheduler logs a job cancelled by its shutdown as an error, with a traceback. The
    daemon stops its scheduler with jobs still running (a poll under way), so that is expected
    at stop, not an error: drop those records; any other failure of a job is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


_JOB_LOG = logging.getLogger("apscheduler.executors.default")
if not any(isinstance(f, _CancelledJobFilter) for f in _JOB_LOG.filters):
    _JOB_LOG.addFilter(_CancelledJobFilter())


class Daemon:
    def __init__(
        self,
        cfg: Config,
        *,
        console: TextIO | None = None,
        retry: RetryPolicy | None = None,
        instance: str = "1",
        watch: bool = True,
        redis_restart_limit: int = REDIS_RESTART_LIMIT,
        redis_restart_window_s: float = REDIS_RESTART_WINDOW_S,
    ):
        self.cfg = cfg
        self.keys = Keys(cfg.settings.redis.prefix)
        self.console = console
        self.retry = retry
        self.instance = instance
        self.watch = watch
        self.embedded: EmbeddedRedis | None = None
        #: The daemon's connection, and the sources' own one (`dedicated`): opened at start,
        #: handed to the stores, closed at stop.
        self.redis: Client | None = None
        self.source_redis: Client | None = None
        #: Ops alerts, the heartbeat and `/healthz`'s PING, on `redis`.
        self.ops_store: OpsStore | None = None
        self.http: HttpServer | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.sources: list[Source] = []
        self.notifiers: dict[str, Notifier] = {}
        self.evaluator: Evaluator | None = None
        self.delivery: Delivery | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.failed = asyncio.Event()
        self.started_at = 0.0
        self._last_activity = ""
        self.edge: EdgeFilter | None = None
        self._stop_watch = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._last_refused = ""
        self.reloads: list[ReloadResult] = []
        self.fatal_reasons: list[str] = []
        self._offline_earnings: list[EarningsEvent] = []
        #: Wakes the stages waiting to retry Redis once the embedded server is back.
        self.reconnect = Reconnect()
        self.redis_restart_limit = redis_restart_limit
        self.redis_restart_window_s = redis_restart_window_s
        self._stopping = False
        self._stop_requested: asyncio.Event | None = None

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self.started_at = time.monotonic()
        s = self.cfg.settings
        self.redis = await self._connect()
        self.ops_store = OpsStore(self.redis, self.keys)
        if self.embedded is not None:
            supervisor = EmbeddedSupervisor(
                self.embedded,
                self.reconnect,
                limit=self.redis_restart_limit,
                window_s=self.redis_restart_window_s,
                stopping=self._stop_pending,
                on_back=lambda summary, cause: self._redis_ops_alert(summary, {"cause": cause}),
                on_give_up=self._redis_gave_up,
            )
            self._spawn(supervisor.run(), "embedded redis")
        if s.http.listen is not None:
            self.http = HttpServer(self, *s.http.address)
            try:
                await self.http.start()
            except OSError as e:
                self.http = None
                raise StartupError(
                    f"cannot serve /healthz and /metrics on {s.http.listen}: {e.strerror or e}; "
                    "pick another http.listen in alerts.yaml, or remove it"
                ) from e
        maxlen = s.redis.stream_maxlen
        self._offline_earnings = list(self.cfg.earnings)
        await self._with_provider_calendar(self.cfg)
        plan = self.cfg.compile()
        self.notifiers = self._build_notifiers()
        ev = s.evaluator
        self.evaluator = Evaluator(
            StreamStore(self.redis, self.keys, maxlen),
            StateStore(self.redis, self.keys, maxlen),
            plan,
            consumer=f"evaluator-{self.instance}",
            batch=ev.batch,
            warmup_ms=int(ev.warmup.total_seconds() * 1000),
        )
        self.delivery = Delivery(
            self.redis,
            self.keys,
            self.cfg.delivery,
            self.notifiers,
            instance=self.instance,
            policy=self.retry,
            ops=self._delivery_ops_alert,
            maxlen=maxlen,
        )
        self._spawn(self._resilient("evaluator", self.evaluator.run), "evaluator")
        for name, loop in self.delivery.stages():
            self._spawn(self._resilient(name, loop), name)
        edge = self.edge = EdgeFilter(
            self.cfg.universe,
            future_tolerance_ms=int(s.edge.future_tolerance.total_seconds() * 1000),
            out_of_order_ms=int(s.edge.out_of_order_tolerance.total_seconds() * 1000),
        )
        self.source_redis = dedicated(self.redis)
        # what the edge accepted before a restart: replayed ticks and headlines stay refused
        clocks, seen = await StreamStore(self.redis, self.keys).edge_memory(
            int(time.time() * 1000) - EDGE_MEMORY_MS
        )
        edge.prime(clocks, seen)
        ctx = SourceContext(
            StreamStore(self.source_redis, self.keys, maxlen),
            edge,
            self.cfg.base_dir,
            symbols=self.cfg.universe,
            ops=self._source_ops_alert,
            on_fatal=self._source_fatal,
            arbiter=FeedArbiter(),
            reconnect=self.reconnect,
        )
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.sources = [source_class(sc.type)(sc, ctx) for sc in s.sources if sc.enabled]
        for src in self.sources:
            if isinstance(src, EarningsCalendarSource):
                src.on_update = self._calendar_changed
        if any(isinstance(src, AlpacaBackfillSource) for src in self.sources):
            # minute bars first, so windows and anchors are right before live ticks arrive
            self._spawn(self._backfill_then_stream(), "backfill")
        else:
            self._schedule_sources()
        self.scheduler.add_job(self._heartbeat, "interval", seconds=HEARTBEAT_S, id="heartbeat",
                               max_instances=1, coalesce=True)  # fmt: skip
        self.scheduler.start()
        if self.watch:
            self._spawn(watch_files(self.cfg, self._files_changed, self._stop_watch), "watcher")
        log.info(
            "tickwatch %s running: %d rules (%d instances), sources: %s, channels: %s",
            __version__,
            len(self.cfg.rules),
            len(plan.instances) + len(plan.headline_rules),
            ", ".join(src.name for src in self.sources) or "none",
            ", ".join(self.notifiers) or "none",
        )

    async def _connect(self) -> Client:
        s = self.cfg.settings.redis
        url = s.url
        if url is None:
            data_dir = self.cfg.base_dir / s.data_dir
            try:
                self.embedded = await asyncio.to_thread(EmbeddedRedis(data_dir).start)
            except (FileNotFoundError, RuntimeError, TimeoutError) as e:
                raise StartupError(f"cannot start the embedded Redis: {e}") from e
            url = self.embedded.url
            log.info(
                "no REDIS_URL set: started embedded Redis %s on 127.0.0.1:%d, data in %s "
                "(set REDIS_URL to use your own server)",
                self.embedded.version(),
                self.embedded.port,
                data_dir,
            )
        redis = connect(url)
        try:
            version = await server_version(redis)
        except OSError as e:
            await redis.aclose()
            raise StartupError(f"cannot reach Redis at {mask_url(url)}: {e}") from e
        except Exception as e:
            await redis.aclose()
            raise StartupError(f"Redis at {mask_url(url)} refused us: {e}") from e
        if tuple(int(p) for p in version.split(".")[:2]) < MIN_REDIS:
            await redis.aclose()
            raise StartupError(f"Redis {version} is too old; tickwatch needs 6.2 or newer")
        return redis

    def _resilient(self, name: str, run: Callable[[], Any]) -> Any:
        return run_resilient(name, run, log, reconnect=self.reconnect)

    def _stop_pending(self) -> bool:
        return self._stopping or (
            self._stop_requested is not None and self._stop_requested.is_set()
        )

    def _redis_gave_up(self, reason: str) -> None:
        log.error("tickwatch stops: %s", reason)
        self.fatal_reasons.append(reason)
        self.failed.set()

    async def _redis_ops_alert(self, summary: str, labels: Mapping[str, str]) -> None:
        log.warning("ops alert: %s", summary)
        await self._ops(
            lambda seq, channels: component_alert("redis", summary, labels, seq, channels)
        )

    def _build_notifiers(self, cfg: Config | None = None) -> dict[str, Notifier]:
        cfg = cfg or self.cfg
        out: dict[str, Notifier] = {}
        for name, ch in cfg.settings.channels.items():
            cls = notifier_class(ch.type)
            notifier = (
                ConsoleNotifier(name, ch, stream=self.console)
                if isinstance(ch, ConsoleConfig)
                else cls(name, ch)
            )
            reason = notifier.disabled_reason(cfg.env_vars_of_channel(name))
            if reason:
                log.warning("channel %s (%s) is off: %s", name, ch.type, reason)
                continue
            out[name] = notifier
        return out

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s stopped: %r", task.get_name(), exc, exc_info=exc)
            self.failed.set()

    def _schedule_sources(self, skip: tuple[type[Source], ...] = ()) -> None:
        assert self.scheduler is not None
        for src in self.sources:
            if not isinstance(src, skip):
                src.schedule(self.scheduler)

    async def _backfill_then_stream(self) -> None:
        n = await run_backfills(self.sources)
        log.info("backfill wrote %d bar(s); starting the live sources", n)
        self._schedule_sources(skip=(AlpacaBackfillSource,))

    async def _with_provider_calendar(self, cfg: Config) -> Config:
        """The config's offline calendar merged with what calendar sources put in Redis."""
        if self.redis is None:
            return cfg
        with contextlib.suppress(*REDIS_DOWN):
            fetched = await load_earnings(CalendarStore(self.redis, self.keys))
            if fetched:
                cfg.earnings = merge_earnings(cfg.earnings, fetched)
        return cfg

    async def _calendar_changed(self) -> None:
        """A calendar source wrote new dates: windows and reminders follow, alert states stay."""
        async with self._reload_lock:
            if self.evaluator is None:
                return
            self.cfg.earnings = self._offline_earnings
            await self._with_provider_calendar(self.cfg)
            plan = self.cfg.compile()
            self.evaluator.use_plan(plan, {lr.rule.name for lr in self.cfg.rules})
            log.info("earnings calendar updated: %d report(s) known", len(self.cfg.earnings))

    # --- hot reload -------------------------------------------------------------------------
    async def _files_changed(self, paths: set[str]) -> None:
        names = ", ".join(sorted(Path(p).name for p in paths))
        await self.reload(f"file change: {names}")

    async def reload(self, reason: str = "SIGHUP") -> ReloadResult:
        """Re-read the config; apply it if valid, else keep everything and say why."""
        async with self._reload_lock:
            return await self._reload(reason)

    async def _reload(self, reason: str) -> ReloadResult:
        if self.evaluator is None or self.delivery is None:
            log.warning("reload (%s) ignored: the daemon is still starting", reason)
            return ReloadResult(ok=False, problems=["daemon not started"])
        try:
            new = await asyncio.to_thread(self.cfg.reload)
        except ConfigError as e:
            result = ReloadResult(ok=False, problems=[str(p) for p in e.problems])
            for p in e.problems:
                log.error("reload (%s) refused: %s", reason, p)
            digest = problems_digest(e)
            if digest != self._last_refused:  # one ops alert per distinct broken state
                self._last_refused = digest
                await self._send_ops_alert(result.problems)
            self.reloads.append(result)
            return result
        self._last_refused = ""
        result = diff_rules(self.cfg, new)
        self._offline_earnings = list(new.earnings)
        await self._with_provider_calendar(new)
        plan = new.compile()
        self.evaluator.use_plan(plan, set(result.unchanged))
        if self.edge is not None and self.edge.universe != new.universe:
            self.edge.universe = new.universe
            for src in self.sources:
                src.ctx.symbols = new.universe
                await src.resubscribe(new.universe)
        self.delivery.reconfigure(new.delivery)
        if new.settings.channels != self.cfg.settings.channels:
            old = self.notifiers
            self.notifiers = self._build_notifiers(new)
            for w in self.delivery.set_notifiers(self.notifiers, new.settings.channels):
                name = f"deliver {w.channel}"
                self._spawn(self._resilient(name, w.run), name)
            asyncio.get_running_loop().call_later(
                30, lambda: [asyncio.ensure_future(n.aclose()) for n in old.values()]
            )
        if result.needs_restart:
            log.warning(
                "reload: changes to %s take effect only after a restart",
                ", ".join(result.needs_restart),
            )
        self.cfg = new
        log.info("reload (%s) %s", reason, result.summary())
        self.reloads.append(result)
        return result

    async def _send_ops_alert(self, problems: list[str]) -> None:
        await self._ops(lambda seq, channels: ops_alert(problems, seq, channels))

    async def _source_ops_alert(self, summary: str, labels: Mapping[str, str]) -> None:
        log.warning("ops alert: %s", summary)
        await self._ops(
            lambda seq, channels: component_alert("source", summary, labels, seq, channels)
        )

    async def _delivery_ops_alert(
        self, failing: str, summary: str, labels: Mapping[str, str]
    ) -> None:
        """A channel failed for good: tell the other ops channels (never the failing one)."""
        await self._ops(
            lambda seq, channels: component_alert("delivery", summary, labels, seq, channels),
            exclude=failing,
        )

    async def _ops(self, make: Callable[[int, list[str]], AlertEvent], exclude: str = "") -> None:
        """Number an ops alert and put it in the outbox for the ops channels."""
        channels = [
            c for c in self.cfg.settings.ops_channels if c in self.notifiers and c != exclude
        ]
        if not channels or self.ops_store is None:
            return
        with contextlib.suppress(*REDIS_DOWN):
            await self.ops_store.add_ops_alert(lambda seq: make(seq, channels))

    def _source_fatal(self, source: Source, error: FatalSourceError) -> None:
        """A source that cannot work (bad credentials) stops the daemon with a clear reason."""
        log.error("source %s cannot run: %s", source.name, error)
        self.fatal_reasons.append(f"source {source.name}: {error}")
        self.failed.set()

    async def _heartbeat(self) -> None:
        with contextlib.suppress(*REDIS_DOWN, asyncio.CancelledError):  # cancelled: at stop
            await self._beat()

    async def _beat(self) -> None:
        assert self.ops_store is not None and self.evaluator is not None
        st = self.evaluator.stats
        sent = self.delivery.sent if self.delivery else {}
        activity = (
            f"ticks={st.ticks} headlines={st.headlines} alerts={st.alerts} "
            f"sent={sum(sent.values())} dead={self.delivery.dead if self.delivery else 0}"
        )
        summary = f"{activity} uptime={time.monotonic() - self.started_at:.0f}s"
        await self.ops_store.heartbeat(summary, ttl_ms=HEARTBEAT_S * 1000 + 1000)
        if activity != self._last_activity:  # quiet while idle; Redis has the live summary
            self._last_activity = activity
            log.info("heartbeat: %s", summary)

    async def stop(self) -> None:
        """Stop sources and the evaluator, let the delivery under way finish, then close.

        At once no channel begins another send; the sends under way (on the wire) get
        `STOP_GRACE_S` in all to be answered and recorded, so none is repeated after a restart
        and none is acknowledged unsent. What was not sent stays queued for the next start."""
        self._stopping = True
        if self.delivery is not None:
            self.delivery.stop_taking()  # before anything below waits (sources may take time)
        self._stop_watch.set()
        if self.http is not None:
            await self.http.stop()
            self.http = None
        for src in self.sources:  # before the scheduler: a feed's job ends cleanly, not cancelled
            with contextlib.suppress(Exception):
                await src.aclose()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        delivering = [t for t in self._tasks if t.get_name().startswith("deliver ")]
        for task in self._tasks:
            if task not in delivering:
                task.cancel()
        if self.delivery is not None:
            with contextlib.suppress(*REDIS_DOWN):
                await self.delivery.finish(STOP_GRACE_S)
        for task in delivering:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for n in self.notifiers.values():
            with contextlib.suppress(Exception):
                await n.aclose()
        if self.source_redis is not None:
            with contextlib.suppress(*REDIS_DOWN):
                await self.source_redis.aclose()
            self.source_redis = None
        self.ops_store = None
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None
        log.info("tickwatch stopped")

    async def run_forever(self, stop: asyncio.Event, *, tune_gc: bool = False) -> int:
        """Run until `stop` is set (SIGINT/SIGTERM) or a stage dies; returns the exit code.

        `tune_gc` (the `tickwatch run` process, which runs one daemon for its lifetime): see
        `tune_gc`."""
        self._stop_requested = stop
        try:
            await self.start()
        except BaseException:
            await self.stop()  # whatever started before the failure (embedded Redis, tasks)
            raise
        if tune_gc:
            tune_gc_for_the_hot_path()
        try:
            stop_wait = asyncio.create_task(stop.wait())
            fail_wait = asyncio.create_task(self.failed.wait())
            await asyncio.wait({stop_wait, fail_wait}, return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            fail_wait.cancel()
        finally:
            await self.stop()
        if self.fatal_reasons:
            return 3  # could not run as configured (e.g. a wrong API key): like a failed start
        return 1 if self.failed.is_set() else 0
