"""Symbol groups (`groups:` in alerts.yaml) → symbols, without needing a loaded `Config`.

Kept here, pure, so compiling rules depends on the groups mapping alone and the engine never
imports `daemon.config` (and through it every notifier and source plugin).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["expand"]


def expand(groups: Mapping[str, Sequence[str]], ref: str | Sequence[str] | None) -> list[str]:
    """Symbols named by a symbol, a group, or a list of either, in order, de-duplicated."""
    refs: Sequence[str] = () if ref is None else [ref] if isinstance(ref, str) else ref
    out: list[str] = []
    seen: set[str] = set()
    for r in refs:
        for sym in groups.get(r, (r,)):
            if sym not in seen:
                seen.add(sym)
                out.append(sym)
    return out
