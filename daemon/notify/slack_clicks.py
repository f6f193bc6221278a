"""Acting on a click on the desk's Slack buttons, however it arrived (HTTP or Socket Mode).

The channel's allow-list decides whether the click counts; the desk (`desk.Desk`) does what it
asks, exactly as the CLI would; then the message is updated in place to say who did what and
until when, and the thread gets a reply. A click that does not count changes nothing and is
logged with who made it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping

from daemon.events import NEW_YORK
from daemon.notify.base import ChannelConfig, Notifier
from daemon.notify.desk import Desk, NoSuchAlert
from daemon.notify.failure import DeliveryError
from daemon.notify.slack import SlackConfig, SlackNotifier
from daemon.notify.slack_actions import Click

__all__ = ["act_on_click", "answer_click"]

log = logging.getLogger("tickwatch.notify")


def _ny(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, NEW_YORK).strftime("%H:%M ET")


async def act_on_click(
    click: Click,
    desk: Desk,
    channels: Mapping[str, ChannelConfig],
    notifiers: Mapping[str, Notifier],
) -> str | None:
    """Do what `click` asks; returns the note put on the message, or None when it did not
    count (unknown channel, a user outside `allow_users`). NoSuchAlert when the alert is no
    longer firing."""
    cfg = channels.get(click.channel)
    if not isinstance(cfg, SlackConfig):
        log.warning("slack: a click names channel %r, which is not a Slack channel here; "
                    "ignored", click.channel)  # fmt: skip
        return None
    if not cfg.allows(click.user_id, click.user_name):
        log.warning("slack: %s (%s) is not in %s's allow_users: the %s on %s changed nothing",
                    click.user_name, click.user_id, click.channel, click.kind,
                    click.alert_key)  # fmt: skip
        return None
    who, mention = click.user_name, f"<@{click.user_id}>" if click.user_id else click.user_name
    if click.kind == "ack":
        a = await desk.ack(click.alert_key, by=who, via="slack")
        note = f"Acknowledged by {mention} at {_ny(a.at_ms)}"
        reply = f"{mention} acknowledged this alert: its escalation stops."
    elif click.kind == "snooze":
        s = await desk.snooze(click.alert_key, for_ms=click.snooze_minutes * 60_000, by=who,
                              via="slack")  # fmt: skip
        note = f"Snoozed by {mention} until {_ny(s.ends_ms)}"
        reply = f"{mention} snoozed this alert until {_ny(s.ends_ms)} (silence {s.id})."
    else:
        firing = {f.key: f.labels for f in await desk.firing()}
        symbol = firing.get(click.alert_key, {}).get("symbol")
        if not symbol:
            raise NoSuchAlert(f"{click.alert_key} is not firing, or names no symbol")
        s = await desk.silence_day(symbol, by=who, via="slack")
        note = f"{symbol} silenced for the day by {mention} (until {_ny(s.ends_ms)})"
        reply = f"{mention} silenced every {symbol} alert until {_ny(s.ends_ms)} (silence {s.id})."
    log.info("slack: %s: %s", click.alert_key, note)
    notifier = notifiers.get(click.channel)
    if isinstance(notifier, SlackNotifier):
        try:
            await notifier.answer(click, note, reply)
        except DeliveryError as e:
            log.warning("slack: %s was done, but the message could not be updated: %s", note, e)
    return note


async def answer_click(
    click: Click,
    desk: Desk,
    channels: Mapping[str, ChannelConfig],
    notifiers: Mapping[str, Notifier],
) -> str | None:
    """`act_on_click` for a way in (HTTP or Socket Mode), which answers Slack the same either
    way: a click on an alert no longer firing is logged, not raised."""
    try:
        return await act_on_click(click, desk, channels, notifiers)
    except NoSuchAlert as e:
        log.info("slack: %s clicked %s on %s: %s", click.user_name, click.kind,
                 click.alert_key, e)  # fmt: skip
        return None
