"""A reload parses only the rule files that changed; the rest reuse what was parsed."""

from __future__ import annotations

from pathlib import Path

from daemon.config import ConfigError, load_config

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


def setup(tmp_path: Path, channels: str = "{console: {type: console}}") -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "alerts.yaml").write_text(f"channels: {channels}\ninclude: [rules/*.yaml]\n")
    return tmp_path / "alerts.yaml"


def test_an_edit_of_one_rule_revalidates_that_rule_only(tmp_path: Path) -> None:
    """In a file of many rules, rules that read as they did keep their validated object (and
    with it their version and passed cross-check); the edited one, and a new one, are built."""
    path = setup(tmp_path)
    f = tmp_path / "rules" / "a.yaml"
    write(f, ("a1", 100), ("a2", 110), ("a3", 120))
    cfg = load_config(path, env={})
    before = {lr.rule.name: lr.rule for lr in cfg.rules}
    # a2 edited, a4 added, a1 and a3 swapped: reuse goes by name and content, not position
    write(f, ("a3", 120), ("a2", 111), ("a1", 100), ("a4", 130))
    new = cfg.reload()
    after = {lr.rule.name: lr.rule for lr in new.rules}
    assert [lr.rule.name for lr in new.rules] == ["a3", "a2", "a1", "a4"]
    assert after["a1"] is before["a1"] and after["a3"] is before["a3"]
    assert after["a2"] is not before["a2"] and after["a2"].when.threshold.level == 111
    # line numbers come from the file as it is now
    lines = {lr.rule.name: lr.line for lr in new.rules}
    assert lines["a3"] < lines["a2"] < lines["a1"] < lines["a4"]
    plan = new.compile()
    fresh = load_config(path, env={}).compile()
    assert {i.rule: i.version for i in plan.instances} == {
        i.rule: i.version for i in fresh.instances
    }
    was = {i.rule: i.version for i in cfg.compile().instances}
    now = {i.rule: i.version for i in plan.instances}
    assert now["a1"] == was["a1"] and now["a3"] == was["a3"] and now["a2"] != was["a2"]


def test_a_reused_rule_is_checked_again_when_the_settings_it_refers_to_change(
    tmp_path: Path,
) -> None:
    """The cross-check of a rule that did not change is skipped only while the channels and
    groups it was checked against are the same: removing a channel a cached rule uses is
    still refused, with the rule's file and line."""
    path = setup(tmp_path, "{console: {type: console}, desk: {type: console}}")
    f = tmp_path / "rules" / "a.yaml"
    f.write_text(
        "rules:\n"
        "  - name: uses-desk\n    when: {threshold: {symbols: NVDA, above: 1}}\n"
        "    channels: [desk]\n"
    )
    cfg = load_config(path, env={})
    path.write_text("channels: {console: {type: console}}\ninclude: [rules/*.yaml]\n")
    try:
        cfg.reload()
    except ConfigError as e:
        text = str(e)
    else:
        raise AssertionError("a rule naming a removed channel was accepted")
    assert "rules/a.yaml:4" in text.replace(str(tmp_path) + "/", "") and "'desk'" in text
    # and an unchanged file whose rule is still valid passes again without being re-checked
    path.write_text(
        "channels: {console: {type: console}, desk: {type: console}}\ninclude: [rules/*.yaml]\n"
    )
    again = cfg.reload()
    assert [lr.rule.name for lr in again.rules] == ["uses-desk"]
