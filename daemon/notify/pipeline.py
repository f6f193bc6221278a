"""The delivery pipeline, in order: the one place that says what happens to an alert after it fires.

Like Alertmanager's notification pipeline, each stage is small, pure and tested on its own;
this module only puts them in order. For each alert transition read from the outbox:

    1. age          a transition older than `max_alert_age` (catch-up after downtime) is recorded,
                    not sent; one summary notice per channel says what was skipped
    2. route        the route tree picks the channels (`routing.targets`); a resolve goes only to
                    the channels its firing went to
    3. inhibit      a firing alert mutes lesser ones with the same labels (`inhibit.Inhibitor`)
    4. time window  a channel's quiet hours let only critical alerts through (`quiet.QuietHours`)
    5. silence      an active silence matching the labels holds it (`silences.Silence`)
    6. group        sent now on its own, or batched into its group (`grouping.Group`)

and then, per channel, in that channel's own delivery worker (`worker.ChannelWorker`), so a slow
or failing channel never delays another:

    7. dedup        an idempotency marker per notification and channel: redelivery sends once
    8. cap          the channel's daily cap
    9. send         with retry, backoff and jitter, honouring Retry-After (`Notifier.deliver`)
   10. record       marker done, thread receipt kept; after N failures: dead letter + ops alert

`decide` runs stages 1-6 for one transition and says, per channel, what became of it. The
market at that moment (`market_context.MarketNow`: the session, an early close, earnings nearby)
is passed in, so stages 2-5 can match on it; the caller computes it once per transition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from daemon.alerts import AlertEvent
from daemon.notify.base import ChannelConfig
from daemon.notify.inhibit import Inhibitor
from daemon.notify.market_context import MarketNow
from daemon.notify.route_tree import Route, Target, routing_labels, targets
from daemon.notify.silences import Silence

__all__ = ["STAGES", "Decision", "Outcome", "decide"]

STAGES = ("age", "route", "inhibit", "time window", "silence", "group",
          "dedup", "cap", "send", "record")  # fmt: skip

Outcome = Literal["send", "group", "stale", "inhibited", "quiet", "silenced", "not_told"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What became of one transition on one channel, and why (for logs and `routes test`)."""

    channel: str
    outcome: Outcome
    why: str
    target: Target | None = None

    @property
    def delivers(self) -> bool:
        return self.outcome in ("send", "group")


def decide(
    alert: AlertEvent,
    *,
    root: Route,
    now_ms: int,
    max_age_ms: int,
    inhibitor: Inhibitor,
    firing: Mapping[str, Mapping[str, str]],
    silences: Sequence[Silence],
    channels: Mapping[str, ChannelConfig],
    told_channels: Sequence[str] | None = None,
    born_ms: int | None = None,
    market: MarketNow | None = None,
) -> list[Decision]:
    """Stages 1-6 for one alert transition.

    `firing` is every alert firing now (key → routing labels), for inhibition; `told_channels`
    is where this alert's firing went, for a resolve (None for a firing). `born_ms` is the
    moment its age counts from (default: its event time). `market` is the market at `now_ms`
    (None: unknown, so no `session` label and no `earnings:` route matches).
    """
    labels = routing_labels(alert, market)
    found = targets(root, alert, market)
    if alert.state == "resolved":  # the resolve goes where the firing went, and only there
        told = list(told_channels or ())
        by_channel = {t.channel: t for t in found}
        found = [by_channel.get(ch, Target(ch, root)) for ch in told]
    age = now_ms - (alert.ts_ms if born_ms is None else born_ms)
    if age > max_age_ms:
        why = f"{age / 60_000:.0f} min old (max_alert_age {max_age_ms / 60_000:g} min)"
        return [Decision(t.channel, "stale", why, t) for t in found]
    out = []
    muted_by = inhibitor.muted_by(alert.key, labels, firing) if alert.state == "firing" else None
    active = [s for s in silences if s.matches(labels, now_ms)]
    for t in found:
        cfg = channels.get(t.channel)
        if muted_by is not None:
            out.append(Decision(t.channel, "inhibited", f"muted by {muted_by}", t))
        elif (
            cfg is not None
            and cfg.quiet_hours is not None
            and alert.severity != "critical"
            and cfg.quiet_hours.quiet(now_ms, market.session if market is not None else None)
        ):
            out.append(Decision(t.channel, "quiet", "quiet hours (only critical goes out)", t))
        elif active:
            s = active[0]
            why = f"silence {s.id} by {s.author}: {s.reason}"
            out.append(Decision(t.channel, "silenced", why, t))
        elif t.route.opts.grouped:
            out.append(Decision(t.channel, "group", f"grouped on route {t.route.path}", t))
        else:
            out.append(Decision(t.channel, "send", f"route {t.route.path}", t))
    return out
