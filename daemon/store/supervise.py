"""Keeping the embedded Redis up: restart it when it exits under the daemon, within limits.

Its own module because it owns one decision, when to bring the daemon's own server back and
when to give up, apart from the daemon's wiring. The stages retry on their own
(`run_resilient`) and resume from their consumer groups; this brings the server back on the
same port and data, wakes them (`Reconnect`), and says so once. Exits too frequent (more than
`limit` within `window_s`) give up (the daemon stops with exit 3): something is wrong with the
machine or the data, and a restart loop won't fix it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from daemon.store.embedded import EmbeddedRedis, describe_exit
from daemon.store.retry import Reconnect

__all__ = ["EmbeddedSupervisor"]

log = logging.getLogger("tickwatch")


class EmbeddedSupervisor:
    def __init__(
        self,
        server: EmbeddedRedis,
        reconnect: Reconnect,
        *,
        limit: int,
        window_s: float,
        stopping: Callable[[], bool],
        on_back: Callable[[str, str], Awaitable[None]],
        on_give_up: Callable[[str], None],
    ):
        self.server = server
        self.reconnect = reconnect
        self.limit = limit
        self.window_s = window_s
        self.stopping = stopping
        self.on_back = on_back  # (ops summary, cause)
        self.on_give_up = on_give_up  # (reason)
        self._exits: list[float] = []  # monotonic times, within the window

    async def run(self) -> None:
        server = self.server
        where = f"127.0.0.1:{server.port}, data in {server.data_dir}"
        window = self.window_s
        while True:
            cause = describe_exit(await server.wait_exit())
            if self.stopping():
                return
            self.reconnect.restarting = True
            down_at = time.monotonic()
            while True:  # restart attempts, until one works or there were too many
                now = time.monotonic()
                self._exits = [t for t in self._exits if now - t < window]
                self._exits.append(now)
                n = len(self._exits)
                if n > self.limit:
                    self.on_give_up(
                        f"the embedded Redis exited {n} times within {window / 60:g} min (the "
                        f"last time it {cause}); not restarting it again: see "
                        f"{server.data_dir / 'redis.log'}"
                    )
                    return
                delay = 0.0 if n == 1 else min(0.5 * 2 ** (n - 2), 8.0)
                log.error(
                    "embedded Redis %s; restarting it on %s (restart %d of at most %d in "
                    "%g min)%s",
                    cause, where, n, self.limit, window / 60,
                    f" in {delay:.1f}s" if delay else "",
                )  # fmt: skip
                await asyncio.sleep(delay)
                if self.stopping():
                    return
                try:
                    await asyncio.to_thread(server.start)
                    break
                except (OSError, RuntimeError, TimeoutError) as e:
                    cause = f"could not be restarted ({e})"
            took = time.monotonic() - down_at
            log.info("embedded Redis is back after %.2fs; the stages resume", took)
            self.reconnect.back()
            await self.on_back(
                f"the embedded Redis {cause}; tickwatch restarted it on the same data after "
                f"{took:.2f}s ({n} restart(s) in {window / 60:g} min); every stage resumes "
                "where it was",
                cause,
            )
