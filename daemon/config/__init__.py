"""Load and validate alerts.yaml and the rule files it includes: the one place config is parsed.

`load_config` returns a `Config` or raises `ConfigError` carrying *every* problem found, each as
`file:line: path: message` with a hint on how to fix it. Secrets come from `${VAR}` expansion
only, live in `SecretStr` fields, and `Config.dump()` redacts them.

The package's modules: `models` (the settings and `Config`), `load` (reading the files),
`checks` (rules against settings), `errors` (`ConfigError`, pydantic's errors reworded).
"""

from __future__ import annotations

from daemon.config.errors import ConfigError, translate
from daemon.config.load import INTERNAL_ERROR, load_config
from daemon.config.models import (
    Config,
    LoadedRule,
    RedisSettings,
    Settings,
    mask_url,
    rule_symbols,
)

__all__ = [
    "INTERNAL_ERROR",
    "Config",
    "ConfigError",
    "LoadedRule",
    "RedisSettings",
    "Settings",
    "load_config",
    "mask_url",
    "rule_symbols",
    "translate",
]
