"""Importing the rules engine must not import network libraries (issue 11).

The engine is embedded by `tickwatch test`, the benches and the property tests; paying ~1 s for
aiohttp, redis, websockets and the notifier SDKs on every import is what this guards against.
Each check runs a fresh interpreter: this test process has long since imported everything.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Top-level packages the engine must never pull in.
NETWORK = (
    "aiohttp",
    "redis",
    "websockets",
    "slack_sdk",
    "twilio",
    "apscheduler",
    "httpx",
    "requests",
)

ENGINE = [
    "daemon.rules.evaluate",
    "daemon.rules.compile",
    "daemon.rules.lifecycle",
    "daemon.rules.schema",
    "daemon.rules.groups",
]


def engine_modules() -> list[str]:
    """The engine's modules; `daemon.rules.driver` once it exists."""
    optional = ["daemon.rules.driver"]
    return ENGINE + [m for m in optional if importlib.util.find_spec(m) is not None]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )


def is_network(module: str) -> bool:
    return module.split(".", 1)[0] in NETWORK


def test_the_engine_loads_no_network_library() -> None:
    code = (
        f"import sys\nfor m in {engine_modules()!r}: __import__(m)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = run("-c", code)
    assert out.returncode == 0, out.stderr
    loaded = sorted({m for m in out.stdout.split() if is_network(m)})
    assert not loaded, f"importing the engine loaded {loaded}"
    assert "daemon.config" not in out.stdout.split()  # the way they used to come in


def test_importtime_shows_no_network_library() -> None:
    code = "; ".join(f"import {m}" for m in engine_modules())
    out = run("-X", "importtime", "-c", code)
    assert out.returncode == 0, out.stderr
    # "import time:  self [us] |  cumulative | imported package", nesting shown by indentation
    names = [
        line.rsplit("|", 1)[1].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]
    assert "daemon.rules.evaluate" in names  # the output is what we think it is
    assert not [n for n in names if is_network(n)]


def test_plugin_registries_import_no_plugin() -> None:
    """The registries name their built-ins, and import them only when asked."""
    code = (
        "import sys\nimport daemon.notify.registry, daemon.sources.registry\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = run("-c", code)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    plugins = {
        "daemon.notify.slack", "daemon.notify.sms", "daemon.notify.webhook",
        "daemon.notify.apprise", "daemon.sources.alpaca", "daemon.sources.polygon",
        "daemon.sources.finnhub", "daemon.sources.replay", "daemon.sources.earnings",
    }  # fmt: skip
    assert not plugins & loaded
    assert not [m for m in loaded if is_network(m)]
