"""A reload parses only the rule files that changed; the rest reuse what was parsed."""

from __future__ import annotations

from pathlib import Path

from daemon.config import load_config

RULE = (
    "  - name: {name}\n    when: {{threshold: {{symbols: NVDA, above: {level}}}}}\n"
    "    channels: [console]\n"
)


def write(p: Path, *rules: tuple[str, int]) -> None:
    p.write_text("rules:\n" + "".join(RULE.format(name=n, level=lv) for n, lv in rules))


def test_a_reload_reuses_unchanged_files_and_reparses_the_edited_one(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "alerts.yaml").write_text(
        "channels: {console: {type: console}}\ninclude: [rules/*.yaml]\n"
    )
    write(tmp_path / "rules" / "a.yaml", ("a1", 100), ("a2", 110))
    write(tmp_path / "rules" / "b.yaml", ("b1", 120))
    cfg = load_config(tmp_path / "alerts.yaml", env={})
    before = {lr.rule.name: lr.rule for lr in cfg.rules}
    write(tmp_path / "rules" / "b.yaml", ("b1", 121))  # edit b only
    new = cfg.reload()
    after = {lr.rule.name: lr.rule for lr in new.rules}
    assert after["a1"] is before["a1"] and after["a2"] is before["a2"]  # not parsed again
    assert after["b1"] is not before["b1"] and after["b1"].when.threshold.level == 121
    plan = new.compile()  # versions come from the cache, and match a fresh computation
    fresh = load_config(tmp_path / "alerts.yaml", env={}).compile()
    assert [i.version for i in plan.instances] == [i.version for i in fresh.instances]
    # a removed file is forgotten, and its rules with it
    (tmp_path / "rules" / "a.yaml").unlink()
    newer = new.reload()
    assert [lr.rule.name for lr in newer.rules] == ["b1"]
    assert len(newer.file_cache.files) == 1
