"""The progress bar of a history fetch: what `fetch_history` calls, and a rich one for the CLI."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress


class ProgressLike(Protocol):
    """What `fetch_history` calls on its progress bar: a `rich.progress.Progress` fits."""

    def add_task(self, description: str, *, total: float | None = ...) -> Any: ...

    def advance(self, task_id: Any, advance: float = ...) -> None: ...

    def update(
        self,
        task_id: Any,
        *,
        total: float | None = ...,
        completed: float | None = ...,
        description: str | None = ...,
    ) -> None: ...


@contextlib.contextmanager
def console_progress(console: Console) -> Iterator[Progress]:
    """A rich progress bar on `console` for `fetch_history(progress=...)`; stays on screen."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("symbol-months"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    with progress:
        yield progress
