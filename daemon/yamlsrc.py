"""YAML that remembers where each value came from, with `${VAR}` expansion.

PyYAML's composed node tree carries line numbers; the plain `safe_load` result does not. We build
the Python objects ourselves from the node tree so that every error, ours or pydantic's, can be
reported as `file:line: path: message`. Building from nodes also lets us cap the expansion of
aliases (the "billion laughs" file) and refuse oversized files before parsing them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Located", "Problem", "YamlSource", "expand_env", "load_yaml"]

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000

Path_ = tuple[str | int, ...]
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config or rule file, located precisely enough to fix."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


@dataclass(slots=True)
class YamlSource:
    """Parsed data plus the line of every path in it."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    #: Environment variables each value was expanded from, so messages can name them.
    env_vars: dict[Path_, list[str]] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """Line of the deepest part of `path` that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line:
                return line
        return 1

    def problem(self, path: Path_, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class _TooBig(Exception):
    pass


class Located(Exception):
    """A YAML-level failure (syntax, size) already carrying its location."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def expand_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. Returns (text, missing)."""
    missing: list[str] = []

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                missing.append(name)
                return ""
            return default
        return value

    return _ENV.sub(sub, text), missing


#: libyaml's C parser when PyYAML was built with it: the same nodes and line marks, ~4x faster,
#: which is what keeps a hot reload of thousands of rules short.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(
    path: Path, display: str | None = None, env: Mapping[str, str] | None = None
) -> tuple[YamlSource, list[Problem]]:
    """Parse one YAML file into a `YamlSource`; problems are returned, never raised."""
    env = os.environ if env is None else env
    name = display or str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        return YamlSource(name, None), [Problem(name, 0, "", f"cannot read file: {e.strerror}")]
    if size > MAX_FILE_BYTES:
        return YamlSource(name, None), [
            Problem(
                name,
                0,
                "",
                f"file is {size / 1e6:.1f} MB; the limit is {MAX_FILE_BYTES // 2**20} MB "
                "(split it into several rule files)",
            )
        ]
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        what = e.problem or str(e)
        return YamlSource(name, None), [Problem(name, line, "", f"YAML syntax error: {what}")]
    src = YamlSource(name, None)
    problems: list[Problem] = []
    if node is None:
        src.data = {}
        return src, problems
    counter = [0]
    try:
        src.data = _build(node, (), src, env, problems, counter)
    except _TooBig:
        return YamlSource(name, None), [
            Problem(name, 0, "", f"refused: the file expands to more than {MAX_NODES} values "
                    "(YAML aliases nested too deeply?)")
        ]  # fmt: skip
    return src, problems


def _build(
    node: yaml.Node,
    path: Path_,
    src: YamlSource,
    env: Mapping[str, str],
    problems: list[Problem],
    counter: list[int],
) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise _TooBig
    src.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(src.problem(path, "YAML merge keys (<<) are not supported"))
                continue
            # keys are names, always text: YAML 1.1 would read `on:` or `yes:` as a boolean
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else _scalar(key_node)
            kpath = (*path, str(key))
            if key in out:
                problems.append(
                    Problem(src.file, key_node.start_mark.line + 1, _fmt(kpath), "duplicate key")
                )
            src.lines[kpath] = key_node.start_mark.line + 1
            out[str(key)] = _build(value_node, kpath, src, env, problems, counter)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(child, (*path, i), src, env, problems, counter)
            for i, child in enumerate(node.value)
        ]
    value = _scalar(node)
    if isinstance(value, str) and "$" in value:
        expanded, missing = expand_env(value, env)
        names = [m.group(1) for m in _ENV.finditer(value) if m.group(1)]
        if names:
            src.env_vars[path] = names
        for var in missing:
            problems.append(
                src.problem(
                    path,
                    f"environment variable {var} is not set; "
                    f"export it or write ${{{var}:-default}}",
                )
            )
        return expanded
    return value


def _fmt(path: Path_) -> str:
    return format_path(path)


_constructor = yaml.SafeLoader("")


def _scalar(node: yaml.Node) -> Any:
    """Resolve a scalar with PyYAML's own safe rules (ints, floats, bools, dates, null)."""
    return _constructor.construct_object(node, deep=True)
