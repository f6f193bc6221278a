"""A rule's version: a short hash of what it says, not of how its YAML is written.

`rule_version(rule)` is the first 8 hex characters of the SHA-256 of the validated rule dumped to
JSON without its defaults (`model_dump(mode="json", by_alias=True, exclude_defaults=True)`, keys
sorted, no whitespace). The model is what the
engine runs, so comments, key order, indentation, YAML quoting and spellings the schema
normalizes (`for: 5m` and `for: 300s`, `above: 8` and `above: 8.0`, a default written out or
left out) give the same version, while any edit the engine would see (a threshold, a window, a
channel, the message) gives another. Alerts carry it (`AlertEvent.rule_version`), so a trader can
tell which edit of a rule fired.

A new optional field added to the schema changes no rule's version: defaults are left out of the
dump, so only a rule that sets the field gets a new one.
Pure: hashlib and json only, cheap enough to run for every rule on each load or reload.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from daemon.rules.schema import Rule

__all__ = ["VERSION_LENGTH", "rule_version"]

#: Hex characters kept: 32 bits, ample for telling apart the edits of one rule.
VERSION_LENGTH: Final = 8


def rule_version(rule: Rule) -> str:
    """`3f2a9c1e`: 8 hex characters of the SHA-256 of the rule's normalized content."""
    data = rule.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:VERSION_LENGTH]
