"""Rule files as last parsed, so a reload parses only what changed.

Kept apart from `daemon.config` (which owns what a config means) because this owns only
when a file must be read again: a cache keyed by file, validated by size, mtime and inode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from daemon.rules import RuleFile, rule_version
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
    #: Ids of cached rules whose cross-check found nothing, and the settings it was against
    #: (groups, channel types): a reload checks only rules that are new, or all if those changed.
    passed: set[int] = field(default_factory=set)
    passed_settings: object = None

    def passed_under(self, settings: object) -> set[int]:
        """The rules known to pass the cross-check against `settings` (to be added to)."""
        if settings != self.passed_settings:
            self.passed_settings = settings
            self.passed = set()
        return self.passed

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

    def reusable(self, display: str, data: object) -> object:
        """`data` (a rule file just parsed) with each rule that reads exactly as it did when
        the file was last parsed replaced by that rule's validated object.

        An edit of one rule in a file of 400 then validates, versions and cross-checks one
        rule, not 400: comparing plain dicts costs microseconds, validating a rule tens.
        """
        old = self.files.get(display)
        if old is None or not isinstance(data, dict):
            return data
        raw_rules, old_raw = data.get("rules"), old[1].data
        if not isinstance(raw_rules, list) or not isinstance(old_raw, dict):
            return data
        before = old_raw.get("rules")
        if not isinstance(before, list) or len(before) != len(old[2].rules):
            return data
        by_name = {
            raw.get("name"): (raw, rule)
            for raw, rule in zip(before, old[2].rules, strict=True)
            if isinstance(raw, dict)
        }
        out = []
        for raw in raw_rules:
            hit = by_name.get(raw.get("name")) if isinstance(raw, dict) else None
            out.append(hit[1] if hit is not None and hit[0] == raw else raw)
        return {**data, "rules": out}

    def put(self, display: str, stamp: tuple[int, int, int] | None, src: YamlSource,
            rf: RuleFile) -> None:  # fmt: skip
        old = self.files.pop(display, None)
        # a rule `reusable` handed back keeps its version and its passed cross-check
        reused = {id(r) for r in rf.rules} if stamp is not None else set()
        if old is not None:
            for rule in old[2].rules:
                if id(rule) not in reused:
                    self.versions.pop(id(rule), None)
                    self.passed.discard(id(rule))
        if stamp is not None:
            self.files[display] = (stamp, src, rf)
            versions = self.versions
            for rule in rf.rules:
                if id(rule) not in versions:
                    versions[id(rule)] = rule_version(rule)

    def keep_only(self, displays: set[str]) -> None:
        for display in set(self.files) - displays:
            for rule in self.files.pop(display)[2].rules:
                self.versions.pop(id(rule), None)
                self.passed.discard(id(rule))
