"""What alerts.yaml says about delivery: the `delivery:` options and the stage's settings.

Apart from `delivery.py` so that parsing a config never imports the router, the workers and the
store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from daemon.durations import Duration
from daemon.events import EarningsEvent
from daemon.notify.base import ChannelConfig
from daemon.notify.inhibit import InhibitRule
from daemon.notify.route_tree import RouteConfig
from daemon.rules import Escalate

__all__ = ["GIVE_UP_AFTER", "DeliveryOptions", "DeliverySettings"]

#: How long a message may keep failing (from when it was queued) before it is dead-lettered.
GIVE_UP_AFTER = timedelta(hours=1)


class DeliveryOptions(BaseModel):
    """`delivery:` in alerts.yaml: how long delivery keeps trying."""

    model_config = ConfigDict(extra="forbid")

    give_up_after: Duration = Field(
        default=GIVE_UP_AFTER,
        description="A message still failing this long after it was queued goes to the dead "
        "letters (with an ops alert); until then it is retried, waiting out any Retry-After "
        "in full and backing off up to 60s otherwise. Permanent errors dead-letter at once",
    )


@dataclass(frozen=True)
class DeliverySettings:
    """What the config says about delivery (parsed in `daemon.config`)."""

    route: RouteConfig | None
    inhibit_rules: list[InhibitRule]
    max_alert_age_ms: int
    channels: Mapping[str, ChannelConfig]
    #: Only replays feed the daemon: alert ages count against the newest event time.
    data_clock: bool = False
    #: `delivery: {give_up_after: ...}`: a message failing this long after it was queued is
    #: dead-lettered (permanent errors at once).
    give_up_after: timedelta = GIVE_UP_AFTER
    #: Rule name → its `escalate:` (rules that escalate only).
    escalations: Mapping[str, Escalate] = field(default_factory=dict)
    #: The config's earnings calendar (routes' `earnings: within`); the router merges in what
    #: the calendar sources wrote to Redis.
    earnings: Sequence[EarningsEvent] = ()
