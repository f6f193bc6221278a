"""Hostile and broken rule files against a running daemon: each is refused with a clear reason,
and the daemon keeps evaluating the rules it had."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import load_config
from daemon.events import Tick
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.helpers import wait_until

GOOD = "rules:\n  - name: nvda-100\n    when: {threshold: {symbols: NVDA, above: 100}}\n" \
       "    channels: [console]\n"  # fmt: skip


def laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\nrules: []\n"


BAD = {
    "malformed YAML": ("rules:\n  - name: x\n    when: {threshold: [\n", "YAML syntax error"),
    "billion laughs": (laughs(), "refused: the file expands to more than"),
    "unknown function": (
        'rules:\n  - name: x\n    when: {expr: "zcore(price(NVDA), 20d) < -2"}\n'
        "    channels: [console]\n",
        "unknown function 'zcore'",
    ),
    "attribute escape": (
        'rules:\n  - name: x\n    when: {expr: "price(NVDA).__class__ < 1"}\n'
        "    channels: [console]\n",
        "column",
    ),
    "import attempt": (
        "rules:\n  - name: x\n    when: {expr: \"__import__('os').system('true') < 1\"}\n"
        "    channels: [console]\n",
        "rules/r.yaml:3",
    ),
    "huge exponent": (
        'rules:\n  - name: x\n    when: {expr: "price(NVDA) ** 99999999 < 1"}\n'
        "    channels: [console]\n",
        "rules/r.yaml:3",
    ),
    "runaway expression": (
        'rules:\n  - name: x\n    when: {expr: "' + "(" * 200 + "1" + ")" * 200 + ' < 2"}\n'
        "    channels: [console]\n",
        "rules/r.yaml:3",
    ),
    "10 MB file": ("# " + "x" * (10 * 2**20) + "\nrules: []\n", "the limit is 2 MB"),
    "template attribute": (
        GOOD.replace("channels:", "message: '{value.__class__}'\n    channels:"),
        "not allowed",
    ),
}


@pytest.fixture
def tree(tmp_path: Path, redis_url: str, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(GOOD)
    (tmp_path / "alerts.yaml").write_text(
        f'redis: {{url: "{redis_url}", prefix: {keys.prefix}}}\n'
        "channels: {console: {type: console}}\nops_channels: [console]\ninclude: [rules/*.yaml]\n"
    )
    return tmp_path


async def test_each_bad_file_is_refused_and_the_old_rules_keep_running(
    tree: Path, redis: Redis, keys: Keys
) -> None:
    console = io.StringIO()
    daemon = Daemon(load_config(tree / "alerts.yaml", env={}), console=console, watch=False)
    await daemon.start()
    try:
        for what, (text, reason) in BAD.items():
            (tree / "rules" / "r.yaml").write_text(text)
            t0 = time.monotonic()
            result = await daemon.reload(what)
            took = time.monotonic() - t0
            assert not result.ok, what
            assert any(reason in p for p in result.problems), (what, result.problems)
            assert took < 10, f"{what}: refusing took {took:.1f}s"
        # every refusal kept the original rule in force: it still fires
        await StreamStore(redis, keys).write([Tick("NVDA", 1_775_000_000_000, 101.0)])
        await wait_until(lambda: "nvda-100{symbol=NVDA}" in console.getvalue(), 20, "old rule")
        assert [lr.rule.name for lr in daemon.cfg.rules] == ["nvda-100"]
    finally:
        await daemon.stop()
