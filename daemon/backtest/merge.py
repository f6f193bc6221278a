"""The merge of history files, a run at a time, into one stream of events in time order."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from daemon.events import Headline, Tick

__all__ = ["Event", "Head", "Run", "merge"]

#: Ticks built and yielded at a time (see `merge`): fewer than the allocations that start a
#: young collection (700), so the ones the consumer is done with are gone by then.
_PIECE = 256

Event = Tick | Headline


@dataclass(eq=False)
class Run:
    """One chunk's events of one file, in time order: what the merge takes slices of.

    Its entries are the chunk's usable rows in time order, `ts` and `rows` one per entry.
    A headline run holds its `headlines`; a tick run the `ticks`' fields (`make_ticks`) of
    the entries the edge did not refuse (`why`: the refused, named when the merge reaches
    them), its ticks built only as they are taken. Entries before `history` only warm."""

    fi: int
    order: int  # 0 ticks, 1 headlines: at the same instant ticks come first
    ts: np.ndarray  # each entry's time, non-decreasing
    rows: np.ndarray  # each entry's row in the file (from 0), to name it
    headlines: list[Headline] = field(default_factory=list)
    ticks: dict[str, list[Any]] = field(default_factory=dict)
    history: int = 0
    #: Entries refused by the edge (in order), with the reason's text.
    why: list[tuple[int, str]] = field(default_factory=list)


@dataclass(eq=False)
class Head:
    """A file in the merge: its current run, how far into it, and the runs after it."""

    run: Run
    pos: int
    runs: Iterator[Run]

    def key(self) -> tuple[int, int, int]:
        return int(self.run.ts[self.pos]), self.run.order, self.run.fi


def merge(
    files: Sequence[Iterator[Run]], take: Callable[[Run, int, int], Sequence[Event]]
) -> Iterator[Event]:
    """The events of `files` (each file's runs, in time order) in the order (time, ticks
    before headlines, file); `take(run, a, b)` gives entries `a:b` of a run as events.

    The files are merged a run at a time, not an event at a time: `heapq.merge` needs a
    sortable tuple per event and pays a heap step per event, even for one file. Here the
    file whose next event comes first gives every event up to the next one of any other
    file, found by bisecting its run's times; one file (the usual case) is its runs one
    after another. A file's next run is read when the merge is through the one before, as
    with an event-at-a-time merge, so refusals are named in the same order.

    Entries are taken `_PIECE` at a time: a chunk's 100,000 ticks alive at once outlive the
    garbage collector's young generations, and the full collections that then follow cost
    more than building them."""
    heads: list[Head] = []
    for runs in files:
        run = next(runs, None)
        if run is not None:
            heads.append(Head(run, 0, runs))
    while heads:
        first = min(heads, key=Head.key)
        run = first.run
        stop = len(run.ts)
        if len(heads) > 1:  # up to the next event of another file
            ts, order, fi = min(h.key() for h in heads if h is not first)
            # ties go to the lower (order, file)
            side: Literal["left", "right"] = (
                "right" if (run.order, run.fi) < (order, fi) else "left"
            )
            stop = int(np.searchsorted(run.ts, ts, side))
        stop = min(stop, first.pos + _PIECE)
        yield from take(run, first.pos, stop)
        if stop < len(run.ts):
            first.pos = stop
        elif (nxt := next(first.runs, None)) is not None:
            first.run, first.pos = nxt, 0
        else:
            heads.remove(first)
