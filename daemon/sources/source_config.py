"""`SourceConfig`: the fields every source's block in alerts.yaml shares.

Apart from `base.py` so that parsing a config never imports what running a source needs
(APScheduler, the store, redis).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SourceConfig"]


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    enabled: bool = True
