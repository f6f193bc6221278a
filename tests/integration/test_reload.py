"""Hot reload against a running daemon: valid edits apply live, invalid ones change nothing."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from daemon.app import Daemon
from daemon.config import load_config
from daemon.events import Tick
from daemon.reload import diff_rules
from daemon.rules.lifecycle import AlertState
from daemon.store.keys import Keys
from daemon.store.streams import StreamStore
from tests.helpers import wait_until

ALERTS = """\
redis: {{url: "{url}", prefix: {prefix}}}
channels:
  console: {{type: console}}
ops_channels: [console]
include: [rules/*.yaml]
"""
RULE = """\
  - name: {name}
    when: {{threshold: {{symbols: NVDA, above: {level}}}}}
    channels: [console]
"""
T0 = 1_775_000_000_000
MIN = 60_000


def write_rules(root: Path, *rules: tuple[str, float]) -> None:
    text = "rules:\n" + "".join(RULE.format(name=n, level=lvl) for n, lvl in rules)
    (root / "rules" / "nvda.yaml").write_text(text)


@pytest.fixture
def tree(tmp_path: Path, redis_url: str, keys: Keys) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(ALERTS.format(url=redis_url, prefix=keys.prefix))
    write_rules(tmp_path, ("nvda-100", 100))
    return tmp_path / "alerts.yaml"


def lines(console: io.StringIO, needle: str) -> list[str]:
    return [x for x in console.getvalue().splitlines() if needle in x]


def test_diff_rules_sorts_added_changed_removed_unchanged(tree: Path) -> None:
    old = load_config(tree, env={})
    write_rules(tree.parent, ("nvda-100", 101), ("nvda-150", 150))
    new = load_config(tree, env={})
    d = diff_rules(old, new)
    assert (d.added, d.changed, d.removed, d.unchanged) == (["nvda-150"], ["nvda-100"], [], [])
    d2 = diff_rules(new, load_config(tree, env={}))
    assert d2.unchanged == ["nvda-100", "nvda-150"] and not (d2.added or d2.changed)


async def test_edits_apply_live_and_bad_edits_change_nothing(
    tree: Path, redis: Redis, keys: Keys
) -> None:
    console = io.StringIO()
    daemon = Daemon(load_config(tree, env={}), console=console)
    store = StreamStore(redis, keys)
    await daemon.start()
    try:
        assert daemon.evaluator is not None
        await store.write([Tick("NVDA", T0, 101.0)])
        await wait_until(lambda: len(lines(console, "nvda-100")) == 1, 20, "nvda-100 to fire")

        # a valid edit: a new rule; the unchanged one keeps its firing state
        edited_at = time.monotonic()
        write_rules(tree.parent, ("nvda-100", 100), ("nvda-150", 150))
        await wait_until(lambda: any(r.ok for r in daemon.reloads), 20, "the reload")
        await daemon.evaluator.plan_applied.wait()
        applied_in = time.monotonic() - edited_at
        print(f"\nvalid edit applied {applied_in:.2f}s after the file was written")
        assert daemon.reloads[-1].added == ["nvda-150"]
        assert daemon.reloads[-1].unchanged == ["nvda-100"]
        await store.write([Tick("NVDA", T0 + MIN, 160.0)])
        await wait_until(lambda: len(lines(console, "nvda-150")) == 1, 20, "nvda-150 to fire")
        assert len(lines(console, "nvda-100")) == 1  # still firing: not fired again

        # an invalid edit: refused, the old rules keep working, one ops alert
        (tree.parent / "rules" / "nvda.yaml").write_text(
            "rules:\n  - name: nvda-100\n    when: {threshold: {symbols: NVDA, abov: 1}}\n"
            "    channels: [console]\n"
        )
        await wait_until(lambda: any(not r.ok for r in daemon.reloads), 20, "a refused reload")
        refused = next(r for r in daemon.reloads if not r.ok)
        assert any("rules/nvda.yaml:3:" in p and "'abov'" in p for p in refused.problems), refused
        await wait_until(lambda: lines(console, "tickwatch-config-reload") != [], 20, "ops alert")
        ops = lines(console, "tickwatch-config-reload")
        assert len(ops) == 1 and "nvda.yaml:3" in ops[0]
        await store.write([Tick("NVDA", T0 + 2 * MIN, 90.0)])  # the old rules still evaluate
        await wait_until(
            lambda: any("RESOLVED" in x for x in lines(console, "nvda-100")), 20, "a resolve"
        )
        # the same broken state saved again: logged, but no second ops alert
        n_reloads = len(daemon.reloads)
        await daemon.reload("SIGHUP")
        assert len(daemon.reloads) == n_reloads + 1 and not daemon.reloads[-1].ok
        assert len(lines(console, "tickwatch-config-reload")) == 1

        # fixed and removed a rule: its stored state is reset, all but its numbering
        write_rules(tree.parent, ("nvda-150", 150))
        result = await daemon.reload("SIGHUP")
        assert result.ok and result.removed == ["nvda-100"]
        await daemon.evaluator.plan_applied.wait()
        stored = AlertState.from_json(await redis.hget(keys.alert_state, "nvda-100{symbol=NVDA}"))
        assert stored == AlertState(seq=1)
        assert await redis.hget(keys.alert_state, "nvda-150{symbol=NVDA}") is not None

        # a rule removed while its alert fires: the desk is told it resolved (and why), and
        # delivery stops counting it as firing (it would mute lesser alerts through inhibit_rules)
        await store.write([Tick("NVDA", T0 + 3 * MIN, 160.0)])
        key = "nvda-150{symbol=NVDA}"
        await wait_until(lambda: len(lines(console, "nvda-150")) == 3, 20, "nvda-150 fires again")
        assert await redis.hexists(keys.firing, key)
        write_rules(tree.parent, ("nvda-200", 200))
        assert (await daemon.reload("SIGHUP")).removed == ["nvda-150"]
        await daemon.evaluator.plan_applied.wait()
        await wait_until(lambda: len(lines(console, "nvda-150")) == 4, 20, "nvda-150 resolves")
        last = lines(console, "nvda-150")[-1]
        assert "RESOLVED" in last and "rule was removed by a reload" in last, last
        assert not await redis.hexists(keys.firing, key)

        # an edited rule that fires: resolved as "changed", then fires under its new definition
        await store.write([Tick("NVDA", T0 + 4 * MIN, 210.0)])
        await wait_until(lambda: len(lines(console, "nvda-200")) == 1, 20, "nvda-200 fires")
        write_rules(tree.parent, ("nvda-200", 205))
        assert (await daemon.reload("SIGHUP")).changed == ["nvda-200"]
        await daemon.evaluator.plan_applied.wait()
        await wait_until(lambda: len(lines(console, "nvda-200")) == 2, 20, "nvda-200 resolves")
        assert "rule was changed by a reload" in lines(console, "nvda-200")[-1]
        await store.write([Tick("NVDA", T0 + 5 * MIN, 211.0)])
        await wait_until(lambda: len(lines(console, "nvda-200")) == 3, 20, "fires again")
        assert "FIRING" in lines(console, "nvda-200")[-1]
    finally:
        await daemon.stop()
