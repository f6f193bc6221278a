"""Rule files as last parsed, so a reload parses only what changed.

Kept apart from `daemon.config` (which owns what a config means) because this owns only
when a file must be read again: a cache keyed by file, validated by size, mtime and inode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from daemon.rules.schema import RuleFile
from daemon.rules.version import rule_version
from daemon.yamlsrc import YamlSource

__all__ = ["RuleFileCache"]


@dataclass
class RuleFileCache:
    """Rule files as last parsed, by file: reused while the file's size, mtime and inode are
    unchanged (as Python's bytecode cache does), so a reload of 1,000 rules after an edit of one
    file parses and validates that file only. `versions` holds each cached rule's version
    (`rule_version`), by the rule object's id: the cache keeps the objects alive, so an id
    always means the same rule."""

    files: dict[str, tuple[tuple[int, int, int], YamlSource, RuleFile]] = field(
        default_factory=dict
    )
    versions: dict[int, str] = field(default_factory=dict)

    @staticmethod
    def stamp(path: Path) -> tuple[int, int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino)

    def get(self, display: str, path: Path) -> tuple[YamlSource, RuleFile] | None:
        hit = self.files.get(display)
        stamp = self.stamp(path)
        if hit is None or stamp is None or hit[0] != stamp:
            return None
        return hit[1], hit[2]

    def put(self, display: str, stamp: tuple[int, int, int] | None, src: YamlSource,
            rf: RuleFile) -> None:  # fmt: skip
        old = self.files.pop(display, None)
        if old is not None:
            for rule in old[2].rules:
                self.versions.pop(id(rule), None)
        if stamp is not None:
            self.files[display] = (stamp, src, rf)
            for rule in rf.rules:
                self.versions[id(rule)] = rule_version(rule)

    def keep_only(self, displays: set[str]) -> None:
        for display in set(self.files) - displays:
            for rule in self.files.pop(display)[2].rules:
                self.versions.pop(id(rule), None)
