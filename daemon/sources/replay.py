"""Replay recorded ticks or 1-minute bars, and headlines, as if they were arriving live.

The file is read once with pandas (CSV, CSV.gz or Parquet) into one time-ordered timeline of
ticks and headlines. Playback can run as fast as Redis takes it (`speed: max`) or at a multiple
of real time, with long gaps (nights, weekends) capped at `max_gap` of wall time. The position is
saved with every batch, so a restarted daemon resumes where it stopped instead of replaying
(and re-alerting on) what it already sent; `loop: true` starts over with time shifted forward.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from daemon.durations import Duration
from daemon.events import Headline, Tick
from daemon.sources.base import Source, SourceConfig
from daemon.sources.tables import headlines_from_frame, read_table, ticks_from_frame

__all__ = ["ReplayConfig", "ReplaySource", "Timeline", "load_timeline"]

log = logging.getLogger("tickwatch.sources.replay")
DAY_MS = 86_400_000


class ReplayConfig(SourceConfig):
    type: Literal["replay"]
    ticks: Path | None = Field(None, description="CSV/CSV.gz/Parquet of ticks or 1-minute bars")
    news: Path | None = Field(None, description="CSV/Parquet of headlines")
    speed: float | Literal["max"] = Field("max", description="'max', or a multiple of real time")
    max_gap: Duration = Field(default=timedelta(seconds=1), description="Longest wall-time wait")
    loop: bool = False
    batch: int = Field(500, ge=1, le=10_000)
    start: datetime | None = Field(
        None,
        description="Ticks before this time only warm the rules (prices, windows, YTD "
        "anchors) and never alert; headlines before it are skipped",
    )

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("start needs a zone, e.g. 2026-02-02T09:30:00-05:00")
        return v

    @field_validator("speed")
    @classmethod
    def _speed(cls, v: float | str) -> float | str:
        if isinstance(v, float | int) and v <= 0:
            raise ValueError("speed must be 'max' or a positive multiple of real time, e.g. 60")
        return v


@dataclass
class Timeline:
    """Ticks and headlines in one time order."""

    ts_ms: np.ndarray
    #: Aligned with `ts_ms`; None marks a row that could not be parsed (refused at the edge).
    events: list[Tick | Headline | None]
    bad_rows: int
    fingerprint: str

    def __len__(self) -> int:
        return len(self.ts_ms)


def load_timeline(ticks: Path | None, news: Path | None, source: str) -> Timeline:
    """Read the files and merge ticks and headlines into one stable, time-ordered timeline."""
    digest = hashlib.sha256()
    tick_ts, tick_objs = np.empty(0, np.int64), list[Tick | None]()
    news_ts, news_objs = np.empty(0, np.int64), list[Headline]()
    if ticks is not None:
        digest.update(ticks.read_bytes())
        tick_ts, tick_objs = ticks_from_frame(read_table(ticks), source)
    if news is not None:
        digest.update(news.read_bytes())
        news_ts, news_objs = headlines_from_frame(read_table(news), source)
    all_ts = np.concatenate([tick_ts, news_ts])
    events: list[Tick | Headline | None] = [*tick_objs, *news_objs]
    order = np.argsort(all_ts, kind="stable")
    return Timeline(
        all_ts[order],
        [events[i] for i in order.tolist()],
        sum(t is None for t in tick_objs),
        digest.hexdigest()[:16],
    )


class ReplaySource(Source):
    kind = "replay"
    config_model = ReplayConfig
    config: ReplayConfig

    async def run(self) -> None:
        cfg = self.config
        base = self.ctx.base_dir
        tl = await asyncio.to_thread(
            load_timeline,
            base / cfg.ticks if cfg.ticks else None,
            base / cfg.news if cfg.news else None,
            self.name,
        )
        saved = await self.ctx.store.cursor(self.name)
        pos, loop_n = 0, 0
        if saved.get("fingerprint") == tl.fingerprint:
            pos, loop_n = int(saved.get("pos", 0)), int(saved.get("loop", 0))
            if pos:
                log.info("replay %s resumes at event %d of %d", self.name, pos, len(tl))
        else:
            log.info(
                "replay %s: %d events (%d ticks, %d headlines) from %s",
                self.name,
                len(tl),
                sum(isinstance(e, Tick) for e in tl.events),
                sum(isinstance(e, Headline) for e in tl.events),
                cfg.ticks,
            )
        now_ms = time.time() * 1000
        valid = tl.ts_ms[(tl.ts_ms >= 0) & (tl.ts_ms <= now_ms)]
        span = (
            int(math.ceil((valid.max() - valid.min()) / DAY_MS) + 1) * DAY_MS if len(valid) else 0
        )
        while True:
            await self._play(tl, pos, loop_n, loop_n * span)
            if not cfg.loop or span == 0:
                break
            loop_n, pos = loop_n + 1, 0
            self.ctx.edge.reset_clock()
        log.info(
            "replay %s finished: %d events accepted, refused: %s. The daemon keeps running "
            "(Ctrl-C or SIGTERM to stop).",
            self.name,
            self.accepted,
            ", ".join(f"{n} {r}" for r, n in sorted(self.rejected.items())) or "none",
        )

    async def _play(self, tl: Timeline, start: int, loop_n: int, shift_ms: int) -> None:
        cfg = self.config
        speed = None if cfg.speed == "max" else float(cfg.speed)
        max_gap = cfg.max_gap.total_seconds()
        ticks: list[Tick] = []
        news: list[Headline] = []
        bad = 0
        ts_list = tl.ts_ms.tolist()
        start_ms = int(cfg.start.timestamp() * 1000) if cfg.start is not None else None
        due = time.monotonic()
        prev_ts = ts_list[start] if start < len(ts_list) else 0

        async def flush(pos: int) -> None:
            nonlocal ticks, news, bad
            cursor = {"pos": str(pos), "loop": str(loop_n), "fingerprint": tl.fingerprint}
            await self.emit(ticks, news, cursor=cursor,
                            pre_rejected={"bad_timestamp": bad} if bad else None)  # fmt: skip
            ticks, news, bad = [], [], 0

        for i in range(start, len(ts_list)):
            if speed is not None and ts_list[i] >= 0:
                due += min(max(ts_list[i] - prev_ts, 0) / 1000 / speed, max_gap)
                prev_ts = ts_list[i]
                wait = due - time.monotonic()
                if wait > 0.002:
                    await flush(i)
                    await asyncio.sleep(wait)
            ev = tl.events[i]
            past = start_ms is not None and 0 <= ts_list[i] < start_ms and not loop_n
            if isinstance(ev, Tick):
                if past:
                    ev = replace(ev, history=True)  # warms, never judged
                ticks.append(_shift_tick(ev, shift_ms) if shift_ms else ev)
            elif isinstance(ev, Headline):
                if not past:
                    news.append(_shift_news(ev, shift_ms, loop_n) if shift_ms else ev)
            else:
                bad += 1
            if len(ticks) + len(news) + bad >= cfg.batch:
                await flush(i + 1)
        await flush(len(ts_list))


def _shift_tick(t: Tick, shift_ms: int) -> Tick:
    return replace(t, ts_ms=t.ts_ms + shift_ms)


def _shift_news(h: Headline, shift_ms: int, loop_n: int) -> Headline:
    return Headline(
        f"{h.id}~{loop_n}",
        h.ts_ms + shift_ms,
        h.title,
        h.summary,
        h.symbols,
        h.source,
        h.url,
        h.sentiment,
        h.ticker_sentiment,
    )
