"""Each stage's public names (`__all__`, listed in its `__init__.pyi`) are the only way in.

Outside a stage, `daemon/` imports it as `from daemon.store import Keys`, never from the
module inside (`daemon.store.keys`), and only names the stage lists: moving a module inside a
stage then touches that stage alone. The names are imported on first use (lazy_loader), so
importing a stage costs nothing; the checks of that run in a fresh interpreter.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGES = ("sources", "store", "rules", "notify")


def stage_of(path: Path) -> str | None:
    parts = path.relative_to(REPO / "daemon").parts
    return parts[0] if len(parts) > 1 and parts[0] in STAGES else None


def cross_stage_imports() -> list[tuple[str, int, str, str]]:
    """(module, line, imported module, name) for every import of another stage in daemon/."""
    found = []
    for path in sorted((REPO / "daemon").rglob("*.py")):
        own = stage_of(path)
        rel = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [(a.name, "") for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [(node.module, a.name) for a in node.names]
            else:
                continue
            for module, name in names:
                parts = module.split(".")
                other = len(parts) >= 2 and parts[0] == "daemon" and parts[1] not in (own,)
                if other and parts[1] in STAGES:
                    found.append((rel, node.lineno, module, name))
    return found


def test_other_stages_are_imported_by_their_package_and_public_names() -> None:
    imports = cross_stage_imports()
    assert len(imports) > 100  # the walk finds what we think it finds
    through_module = [f"{m}:{line} imports {mod}" for m, line, mod, _ in imports
                      if mod.count(".") != 1]  # fmt: skip
    assert through_module == [], "import the stage's package instead:\n" + "\n".join(through_module)
    private = []
    for module, line, mod, name in imports:
        public = importlib.import_module(mod).__all__
        if name not in public:
            private.append(f"{module}:{line}: {name} is not in {mod}.__all__")
    assert private == [], "\n".join(private)


@pytest.mark.parametrize("stage", STAGES)
def test_every_public_name_resolves_to_its_module(stage: str) -> None:
    package = importlib.import_module(f"daemon.{stage}")
    stub = ast.parse((REPO / "daemon" / stage / "__init__.pyi").read_text())
    listed = {}
    for node in stub.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                assert alias.asname == alias.name, f"write `{alias.name} as {alias.name}`"
                listed[alias.name] = node.module  # None: `from . import module`
    assert sorted(package.__all__) == sorted(listed)
    for name, module in listed.items():
        if module is None:
            expected = importlib.import_module(f"daemon.{stage}.{name}")
        else:
            expected = getattr(importlib.import_module(f"daemon.{stage}.{module}"), name)
        assert getattr(package, name) is expected
    assert set(package.__all__) <= set(dir(package))


def test_importing_a_stage_imports_none_of_its_modules() -> None:
    code = (
        "import sys\nimport daemon.sources, daemon.store, daemon.rules, daemon.notify\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    loaded = {m for m in out.stdout.split() if m.count(".") >= 2 and m.startswith("daemon.")}
    assert {"daemon.store", "daemon.notify"} <= set(out.stdout.split())
    assert loaded == set()
    assert not {"redis", "websockets", "slack_sdk"} & {m.split(".")[0] for m in out.stdout.split()}


def test_the_shapes_between_stages_import_no_stage() -> None:
    """events.py and alerts.py are what the stages pass on: they depend on none of them."""
    for shape in ("events.py", "alerts.py"):
        tree = ast.parse((REPO / "daemon" / shape).read_text())
        daemon_imports = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("daemon")
        }
        assert daemon_imports <= {"daemon.events", "daemon.alerts"}, (shape, daemon_imports)
