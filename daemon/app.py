"""The daemon's wiring and lifecycle: Redis, sources, evaluator, delivery, jobs; stops cleanly.

Everything long-running is an asyncio task or an APScheduler job (`schedule.py`) on one event
loop. `Daemon` owns their lifetimes; the stages themselves know nothing about each other except
the Redis streams between them (sources → ticks/news → evaluator → outbox → router → one worker
per channel). Beside it: applying a reload (`live_reload.py`) and its alerts about itself to the
ops channels (`ops_alerts.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import Any, TextIO

from daemon import __version__
from daemon.config import Config, mask_url
from daemon.live_reload import LiveReload
from daemon.notify import (
    STOP_GRACE_S,
    ConsoleConfig,
    ConsoleNotifier,
    Delivery,
    Notifier,
    RetryPolicy,
    notifier_class,
)
from daemon.ops_alerts import OpsAlerts
from daemon.primary import Primary
from daemon.reload import ReloadResult, watch_files
from daemon.rules import Evaluator
from daemon.schedule import Jobs
from daemon.sources import (
    EarningsCalendarSource,
    EdgeFilter,
    FatalSourceError,
    FeedArbiter,
    Source,
    SourceContext,
    source_class,
)
from daemon.store import (
    REDIS_DOWN,
    Client,
    EmbeddedRedis,
    EmbeddedSupervisor,
    Keys,
    OpsStore,
    OptOutRecords,
    Reconnect,
    StateStore,
    StreamStore,
    connect,
    dedicated,
    run_resilient,
    server_version,
)
from daemon.web.health import health
from daemon.web.server import HttpServer
from daemon.web.slack_socket import SlackSocket

__all__ = ["Daemon", "StartupError"]

log = logging.getLogger("tickwatch")

MIN_REDIS = (6, 2)
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
        #: The primary lease: one instance on a Redis runs everything (`daemon.primary`).
        self.primary: Primary | None = None
        #: Socket Mode links for the desk's Slack buttons (channels with an app_token).
        self.slack_socket: SlackSocket | None = None
        #: The APScheduler jobs (sources, heartbeat), built at start.
        self.jobs: Jobs | None = None
        self.sources: list[Source] = []
        self.notifiers: dict[str, Notifier] = {}
        self.evaluator: Evaluator | None = None
        self.delivery: Delivery | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.failed = asyncio.Event()
        self.started_at = 0.0
        self.edge: EdgeFilter | None = None
        self._stop_watch = asyncio.Event()
        #: Applies reloads and calendar updates; their results are kept in `reloads`.
        self.live = LiveReload(self)
        self.reloads: list[ReloadResult] = []
        #: The daemon's own alerts about Redis, sources and channels, to the ops channels.
        self.ops_alerts = OpsAlerts(self)
        self.fatal_reasons: list[str] = []
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
                on_back=lambda summary, cause: self.ops_alerts.redis(summary, {"cause": cause}),
                on_give_up=self._redis_gave_up,
            )
            self._spawn(supervisor.run(), "embedded redis")
        if s.http.enabled:
            self.http = HttpServer(self, *s.http.address)
            try:
                await self.http.start()
            except OSError as e:
                self.http = None
                if s.http.explicit:
                    raise StartupError(
                        f"cannot serve /healthz and /metrics on {s.http.listen}: "
                        f"{e.strerror or e}; pick another http.listen in alerts.yaml, or off"
                    ) from e
                log.warning(
                    "http: cannot serve on %s (%s): running without /healthz, /metrics and the "
                    "desk's webhooks; set http.listen in alerts.yaml to another port, or off",
                    s.http.shown, e.strerror or e,
                )  # fmt: skip
        self.primary = Primary(self.redis, self.keys, self.instance, self._stop_pending)
        if not await self.primary.become():
            return  # asked to stop while standing by
        self._spawn(self.primary.keep(), "primary lease")
        maxlen = s.redis.stream_maxlen
        self.live.offline_earnings = list(self.cfg.earnings)
        await self.live.with_provider_calendar(self.cfg)
        plan = self.cfg.compile()
        self.notifiers = self._build_notifiers()
        self.slack_socket = SlackSocket(
            lambda: self.cfg.settings.channels,
            lambda: self.notifiers,
            lambda: self.redis,
            self.keys,
        )
        await self.slack_socket.start()  # connects in the background; a refusal is logged
        ev = s.evaluator
        self.evaluator = Evaluator(
            StreamStore(self.redis, self.keys, maxlen),
            StateStore(self.redis, self.keys, maxlen),
            plan,
            consumer="evaluator-1",  # one at a time (the primary): a takeover resumes its reads
            batch=ev.batch,
            warmup_ms=int(ev.warmup.total_seconds() * 1000),
        )
        self.delivery = Delivery(
            self.redis,
            self.keys,
            self.cfg.delivery,
            self.notifiers,
            # one primary at a time, under the same consumer names: a takeover resumes what the
            # one before had read (its sends in flight go again, as after a restart)
            instance="1",
            policy=self.retry,
            ops=self.ops_alerts.delivery,
            maxlen=maxlen,
        )
        # the primary's commits run under its lease: a paused old primary writes nothing
        self.evaluator.state.lease = self.primary.lease
        self.delivery.router.outbox.lease = self.primary.lease
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
            ops=self.ops_alerts.source,
            on_fatal=self._source_fatal,
            arbiter=FeedArbiter(),
            reconnect=self.reconnect,
        )
        self.sources = [source_class(sc.type)(sc, ctx) for sc in s.sources if sc.enabled]
        for src in self.sources:
            if isinstance(src, EarningsCalendarSource):
                src.on_update = self.live.calendar_changed
        self.jobs = Jobs(
            self.sources, self.ops_store, self.evaluator, self.delivery, started_at=self.started_at,
            deadman=s.deadman, health=lambda: health(self),
        )  # fmt: skip
        self.jobs.start(self._spawn)
        if self.watch:
            self._spawn(watch_files(self.cfg, self.live.files_changed, self._stop_watch), "watcher")
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
            if hasattr(notifier, "opted_out"):  # a channel that texts phones (SMS): STOPs held
                notifier.opted_out = self._opted_out
            reason = notifier.disabled_reason(cfg.env_vars_of_channel(name))
            if reason:
                log.warning("channel %s (%s) is off: %s", name, ch.type, reason)
                continue
            out[name] = notifier
        return out

    async def _opted_out(self) -> dict[str, str]:
        """The phones that replied STOP, for the SMS channels (none while Redis is away)."""
        if self.redis is None:
            return {}
        return await OptOutRecords(self.redis, self.keys).all()

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @property
    def standby(self) -> bool:
        """Waiting for the primary lease (another instance is the primary)."""
        return self.primary is not None and self.primary.standby

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s stopped: %r", task.get_name(), exc, exc_info=exc)
            self.failed.set()

    # --- hot reload -------------------------------------------------------------------------
    async def reload(self, reason: str = "SIGHUP") -> ReloadResult:
        """Re-read the config; apply it if valid, else keep everything and say why."""
        return await self.live.reload(reason)

    def _source_fatal(self, source: Source, error: FatalSourceError) -> None:
        """A source that cannot work (bad credentials) stops the daemon with a clear reason."""
        log.error("source %s cannot run: %s", source.name, error)
        self.fatal_reasons.append(f"source {source.name}: {error}")
        self.failed.set()

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
        if self.slack_socket is not None:
            await self.slack_socket.stop()
            self.slack_socket = None
        for src in self.sources:  # before the scheduler: a feed's job ends cleanly, not cancelled
            with contextlib.suppress(Exception):
                await src.aclose()
        if self.jobs is not None:
            self.jobs.shutdown()
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
        if self.primary is not None and self.redis is not None:
            await self.primary.hand_over()
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
