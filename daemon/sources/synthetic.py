"""A seeded random walk with scripted events: live-looking data with no provider account.

Each APScheduler interval tick moves every symbol one log-normal step; scripted events (a
price jump, a headline) fire once when their `after` offset from start has passed. Same seed,
same path: demos and soak tests are reproducible.
"""

from __future__ import annotations

import math
import random
import time
from datetime import timedelta
from typing import Literal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import BaseModel, ConfigDict, Field

from daemon.durations import Duration
from daemon.events import Headline, Tick
from daemon.sources.base import Source, SourceConfig, SourceContext

__all__ = ["SyntheticConfig", "SyntheticSource"]


class ScriptedEvent(BaseModel):
    """At `after` from start: move `symbol` by `move` percent, and/or publish a headline."""

    model_config = ConfigDict(extra="forbid")

    after: Duration
    symbol: str | None = None
    move: float | None = Field(None, description="Percent jump applied to `symbol`")
    headline: str | None = None
    symbols: list[str] = Field(default_factory=list, description="Tickers the headline tags")
    sentiment: float | None = Field(None, ge=-1, le=1)


class SyntheticConfig(SourceConfig):
    type: Literal["synthetic"]
    prices: dict[str, float] = Field(description="Symbol → starting price")
    interval: Duration = Field(default=timedelta(seconds=1))
    volatility: float = Field(0.0005, ge=0, le=0.2, description="Stdev of one step's log return")
    seed: int = 7
    events: list[ScriptedEvent] = Field(default_factory=list)


class SyntheticSource(Source):
    kind = "synthetic"
    config_model = SyntheticConfig
    config: SyntheticConfig

    def __init__(self, config: SyntheticConfig, ctx: SourceContext) -> None:
        super().__init__(config, ctx)
        self.rng = random.Random(config.seed)
        self.prices = dict(config.prices)
        self.started_ms: int | None = None
        self.pending = sorted(config.events, key=lambda e: e.after)
        self.seq = 0

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            self.step,
            "interval",
            seconds=self.config.interval.total_seconds(),
            id=f"source:{self.name}",
            name=f"source {self.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def run(self) -> None:
        await self.step()

    async def step(self, now_ms: int | None = None) -> None:
        """One step of every walk plus any scripted events now due."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if self.started_ms is None:
            self.started_ms = now_ms
        elapsed = timedelta(milliseconds=now_ms - self.started_ms)
        vol = self.config.volatility
        news: list[Headline] = []
        while self.pending and self.pending[0].after <= elapsed:
            ev = self.pending.pop(0)
            if ev.symbol and ev.move is not None and ev.symbol in self.prices:
                self.prices[ev.symbol] *= 1 + ev.move / 100
            if ev.headline:
                self.seq += 1
                news.append(
                    Headline(
                        id=f"{self.name}-{self.config.seed}-{self.seq}",
                        ts_ms=now_ms,
                        title=ev.headline,
                        symbols=tuple(ev.symbols or ([ev.symbol] if ev.symbol else [])),
                        source=self.name,
                        sentiment=ev.sentiment,
                    )
                )
        ticks = []
        for sym, price in self.prices.items():
            price *= math.exp(self.rng.gauss(0.0, vol))
            self.prices[sym] = price
            ticks.append(Tick(sym, now_ms, round(price, 4), kind="trade", source=self.name))
        await self.emit(ticks, news)
