"""YAML that remembers where each value came from, with `${VAR}` expansion.

PyYAML's composed node tree carries line numbers; the plain `safe_load` result does not. We build
the Python objects ourselves from the node tree so that every error, ours or pydantic's, can be
reported as `file:line: path: message`. Building from nodes also lets us cap the expansion of
aliases (the "billion laughs" file) and refuse oversized files before parsing them.

Whatever bytes a file holds, `load_yaml` returns problems and never raises: a file that is not
UTF-8 text (binary, UTF-16), holds control characters, uses tags beyond plain YAML (`!!python/...`,
`!!binary`, `!custom`), complex keys (`? [a, b]`), self-referencing aliases, or vanishes between
being listed and being read, is one located problem saying what to do about it. Only plain data
is ever constructed: mappings, lists, text, numbers, booleans, null and dates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from daemon.textfile import MAX_FILE_BYTES, decode_utf8, read_bytes

__all__ = ["Located", "Problem", "YamlSource", "expand_env", "load_yaml"]

MAX_NODES = 200_000
#: Characters of text the built data may hold, counting each alias expansion again: an alias
#: repeats a value for free in the file but not in what is validated and logged.
MAX_CHARS = 8 * MAX_FILE_BYTES
#: Nesting of mappings and lists (rule files need under ten levels).
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]
_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

#: What YAML (and so PyYAML's reader) refuses in a stream: C0/C1 controls but tab, LF, CR and NEL,
#: and the non-characters U+FFFE/U+FFFF (surrogates cannot survive strict UTF-8 decoding).
_NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Characters escaped when a problem is printed: a key written `"\e[2J"` must not drive the
#: terminal of whoever runs `tickwatch check`, nor break the one-problem-per-line output.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_RESOLVER = yaml.resolver.Resolver()
_KIND = {"int": "a number", "float": "a number", "bool": "true or false", "timestamp": "a date"}


def _escape(text: str) -> str:
    return _UNPRINTABLE.sub(lambda m: ascii(m.group(0))[1:-1], text)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config or rule file, located precisely enough to fix."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        return _escape(text)


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


class _Unbuildable(Exception):
    """The node tree cannot become plain data (a cycle, or nesting past MAX_DEPTH)."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


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
    raw, why = read_bytes(path)
    if raw is None:
        return YamlSource(name, None), [Problem(name, why[0], "", why[1])]
    text, problem = _decode(raw, name)
    if problem is not None:
        return YamlSource(name, None), [problem]
    assert text is not None
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        what = e.problem or str(e)
        if "another document" in what:  # `---` then more
            what = "a file holds one YAML document; remove this `---` or split the file"
        return YamlSource(name, None), [Problem(name, line, "", f"YAML syntax error: {what}")]
    except RecursionError:  # the pure-Python composer, on very deep nesting
        return YamlSource(name, None), [
            Problem(name, 0, "", f"nested more than {MAX_DEPTH} levels deep; flatten it")
        ]
    except (yaml.YAMLError, ValueError) as e:  # the reader's own checks, should ours miss one
        return YamlSource(name, None), [Problem(name, 0, "", f"cannot parse as YAML: {e}")]
    src = YamlSource(name, None)
    if node is None:
        src.data = {}
        return src, []
    builder = _Builder(src, env)
    try:
        src.data = builder.build(node, (), 0)
    except _TooBig as e:
        return YamlSource(name, None), [Problem(name, 0, "", f"refused: the file expands to {e}")]
    except _Unbuildable as e:
        return YamlSource(name, None), [e.problem]
    if builder.fatal:  # tags, complex keys, bad scalars: the data is not what the file says
        return YamlSource(name, None), builder.problems
    if src.data is None:  # a document that is only `~` or `null`: as empty as an empty file
        src.data = {}
    return src, builder.problems


def _decode(raw: bytes, name: str) -> tuple[str | None, Problem | None]:
    """UTF-8 text that YAML accepts, or a problem that says where it is not."""
    text, why = decode_utf8(raw)
    if text is None:
        line, msg = why
        return None, Problem(name, line, "", msg)
    bad = _NOT_YAML.search(text)
    if bad is not None:
        pos = bad.start()
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        more = len(_NOT_YAML.findall(text)) - 1
        also = f" (and {more} more)" if more else ""
        kind = "control character" if ord(bad.group(0)) < 0xA0 else "non-character"
        return None, Problem(
            name,
            line,
            "",
            f"contains a {kind} U+{ord(bad.group(0)):04X} at line {line} column {column}{also}: "
            "delete it (YAML text allows tabs and line breaks only)",
        )
    return text, None


_STR = _CORE + "str"


class _Builder:
    """Plain Python data from a node tree: only the YAML core types, every alias counted."""

    def __init__(self, src: YamlSource, env: Mapping[str, str]):
        self.src = src
        self.env = env
        self.problems: list[Problem] = []
        #: a problem that makes the built data differ from the file (the data is not returned)
        self.fatal = False
        self.nodes = 0
        self.chars = 0
        self._open: set[int] = set()  # ids of the collections being built: an alias cycle
        # one constructor per file: it caches by node, and loads may run in several threads
        self._constructor = SafeConstructor()

    def _fail(self, node: yaml.Node, path: Path_, message: str) -> None:
        self.fatal = True
        self.problems.append(Problem(self.src.file, _line(node), _fmt(path), message))

    def _tag_ok(self, node: yaml.Node, path: Path_) -> bool:
        if isinstance(node, yaml.ScalarNode):
            ok = node.tag in _SCALAR_TAGS
        elif isinstance(node, yaml.SequenceNode):
            ok = node.tag == _CORE + "seq"
        else:
            ok = node.tag == _CORE + "map"
        if not ok:
            tag = node.tag.replace(_CORE, "!!")
            self._fail(
                node,
                path,
                f"YAML tag {tag} is not supported: tickwatch reads plain YAML (mappings, "
                "lists, text, numbers, true/false, dates); remove the tag",
            )
        return ok

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(f"more than {MAX_NODES} values (YAML aliases nested too deeply?)")
        src = self.src
        src.lines.setdefault(path, _line(node))
        if not self._tag_ok(node, path):
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if depth >= MAX_DEPTH:  # named by the top-level entry: deep aliases make the rest noise
            raise _Unbuildable(
                src.problem(path[:1], f"nested more than {MAX_DEPTH} levels deep; flatten it")
            )
        if id(node) in self._open:
            raise _Unbuildable(
                src.problem(
                    path,
                    "an alias (*name) refers to a value that contains it, which "
                    "would never end: copy the value instead",
                )
            )
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)
                ]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path, depth)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _CORE + "merge":
                self.problems.append(
                    self.src.problem(path, "YAML merge keys (<<) are not supported")
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                self._fail(key_node, path, f"a key must be a plain name, not a {kind} "
                           "(`? [a, b]: ...` is a complex key): write it as text")  # fmt: skip
                continue
            if not self._tag_ok(key_node, path):
                continue
            # keys are names, always text: YAML 1.1 would read `on:` or `yes:` as a boolean
            key = str(key_node.value)
            self._count(key)
            kpath = (*path, key)
            if key in out:
                self.problems.append(
                    Problem(self.src.file, _line(key_node), _fmt(kpath), "duplicate key")
                )
            self.src.lines[kpath] = _line(key_node)
            out[key] = self.build(value_node, kpath, depth + 1)
        return out

    def _count(self, text: str) -> None:
        self.chars += len(text)
        if self.chars > MAX_CHARS:
            raise _TooBig(f"more than {MAX_CHARS // 2**20} MB of text "
                          "(a long value repeated through YAML aliases?)")  # fmt: skip

    def _scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        self._count(node.value)
        if node.tag == _STR:  # most scalars: what the constructor would return, 10x cheaper
            value = node.value
            return self._expand(value, path) if "$" in value else value
        try:
            value = self._constructor.construct_object(node, deep=True)
        except Exception as e:  # !!int abc, 2020-13-45, an int of 5000 digits, ...
            kind = node.tag.removeprefix(_CORE)
            if "digits" in str(e):
                reason = f" ({sum(c.isdigit() for c in node.value)} digits is too many)"
            elif kind == "timestamp" and str(e):
                reason = f" ({str(e).splitlines()[0]})"  # "month must be in 1..12"
            else:
                reason = ""
            implicit = (
                not node.style  # plain: None in PyYAML, "" in libyaml
                and _implicit_tag(node.value) == node.tag
            )
            hint = "; quote it if it is text" if implicit else "; remove the tag"
            what = _KIND.get(kind, kind)
            self._fail(node, path, f"{_short(node.value)} is not {what}{reason}{hint}")
            return None
        if isinstance(value, str) and "$" in value:
            return self._expand(value, path)
        return value

    def _expand(self, value: str, path: Path_) -> str:
        expanded, missing = expand_env(value, self.env)
        self._count(expanded)
        names = [m.group(1) for m in _ENV.finditer(value) if m.group(1)]
        if names:
            self.src.env_vars[path] = names
        for var in missing:
            self.problems.append(
                self.src.problem(
                    path,
                    f"environment variable {var} is not set; "
                    f"export it or write ${{{var}:-default}}",
                )
            )
        return expanded


def _implicit_tag(value: str) -> str:
    """The tag YAML gives `value` written plain (untagged, unquoted)."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    return tag


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _fmt(path: Path_) -> str:
    return format_path(path)
