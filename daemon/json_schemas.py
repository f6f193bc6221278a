"""JSON Schemas for alerts.yaml and rule files, so editors complete and check them as you type.

Generated from the same pydantic models that validate the files, so the schema can never
disagree with the daemon. Shipped files point at them with a `yaml-language-server` comment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daemon.config.models import full_settings_model
from daemon.rules import RuleFile

__all__ = ["SCHEMAS", "render", "write_schemas"]

SCHEMAS: dict[str, tuple[type[Any], str]] = {
    "rules.schema.json": (RuleFile, "tickwatch rule file (rules/*.yaml)"),
    "alerts.schema.json": (full_settings_model(), "tickwatch daemon config (alerts.yaml)"),
}


def render(name: str) -> str:
    model, title = SCHEMAS[name]
    schema = model.model_json_schema(by_alias=True)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        **{k: v for k, v in schema.items() if k != "title"},
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SCHEMAS:
        path = out_dir / name
        path.write_text(render(name))
        written.append(path)
    return written
