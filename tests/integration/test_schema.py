"""The published JSON Schemas: current with the models, and accepting what the daemon accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from daemon.json_schemas import SCHEMAS, render


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema_is_current(repo: Path, name: str) -> None:
    committed = (repo / "schema" / name).read_text()
    assert committed == render(name), "schema is stale: run `tickwatch schema` and commit it"


@pytest.mark.parametrize("rule_file", ["rules/rotation.yaml", "rules/headlines.yaml"])
def test_shipped_rule_files_validate_and_point_at_the_schema(repo: Path, rule_file: str) -> None:
    text = (repo / rule_file).read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/rules.schema.json")
    schema = json.loads((repo / "schema" / "rules.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(text), schema)


def test_schema_rejects_what_the_daemon_rejects(repo: Path) -> None:
    schema = json.loads((repo / "schema" / "rules.schema.json").read_text())
    bad = {"rules": [{"name": "x", "when": {"threshold": {"symbols": "NVDA", "above": 1}},
                      "channels": ["console"], "thresold": 3}]}  # fmt: skip
    with pytest.raises(jsonschema.ValidationError, match="thresold"):
        jsonschema.validate(bad, schema)
    bad_duration = {"rules": [{"name": "x", "when": {"threshold": {"symbols": "NVDA", "above": 1}},
                               "channels": ["console"], "for": "5 minutes"}]}  # fmt: skip
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_duration, schema)


def test_schema_command_writes_both_files(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "daemon", "schema", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SCHEMAS)


def test_the_condition_catalogue_is_valid_and_covers_every_kind(repo: Path, tmp_path: Path) -> None:
    """rules/examples/catalogue.yaml is what newcomers copy from: it must load and compile."""
    from daemon.config import load_config
    from daemon.rules.compile import compile_rules
    from daemon.rules.schema import CONDITION_KINDS

    (tmp_path / "alerts.yaml").write_text(
        (repo / "alerts.yaml").read_text().replace("rules/*.yaml", f"{repo}/rules/examples/*.yaml")
        .replace("data/earnings.csv", f"{repo}/data/earnings.csv")
    )  # fmt: skip
    cfg = load_config(tmp_path / "alerts.yaml", env={})
    plan = compile_rules(
        (lr.rule for lr in cfg.rules), groups=cfg.settings.groups, earnings=cfg.earnings
    )
    assert len(cfg.rules) >= 20 and plan.instances and plan.reminder_rules
    kinds = {w.kind for lr in cfg.rules for w in lr.rule.when.walk()}
    assert set(CONDITION_KINDS) - {"any", "not"} <= kinds
    schema = json.loads((repo / "schema" / "rules.schema.json").read_text())
    data = yaml.safe_load((repo / "rules/examples/catalogue.yaml").read_text())
    # an editor sees dates and times as the text written; PyYAML makes them objects
    jsonschema.validate(json.loads(json.dumps(data, default=str)), schema)
